package notice_test

import (
	"context"
	"crypto/tls"
	"net/netip"
	"testing"
	"time"

	"github.com/lockerd/lockerd/sync/hub/egress"
	"github.com/lockerd/lockerd/sync/hub/notice"
	"github.com/lockerd/lockerd/sync/hub/notice/noticetest"
)

type nopChannel struct{}

func (nopChannel) Send(context.Context, notice.Message) error { return nil }

// BenchmarkSend: notices one sender sends a second, each sealed, queued,
// opened, rendered, sent and recorded: to a channel that does nothing (the
// baseline), over SMTP with STARTTLS to a server on loopback (a connection
// per notice, as sent), and to the HTTP gateway. Compare ns/op with the
// baseline of the same run.
func BenchmarkSend(b *testing.B) {
	r := newRig(b)
	policy := egress.Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
	gw, err := notice.NewHTTP(r.gatewayURL, "gateway-secret-0123456789", policy, time.Second)
	if err != nil {
		b.Fatal(err)
	}
	channels := map[string]notice.Channel{
		"baseline": nopChannel{},
		"email": &notice.Email{Addr: r.smtp.Addr, From: "locker@library.example.org",
			TLSConfig: &tls.Config{ServerName: "127.0.0.1", RootCAs: r.smtp.Roots}},
		"http": gw,
	}
	for _, name := range []string{"baseline", "email", "http"} {
		b.Run(name, func(b *testing.B) {
			ch, contact := notice.ChannelEmail, notice.Contact{Email: "li@example.org"}
			if name == "http" {
				ch, contact = notice.ChannelHTTP, notice.Contact{Phone: "+8613800138000"}
			}
			now := time.Now()
			for range b.N {
				store := noticetest.NewMem() // a queue of one: the store's cost stays out
				svc := notice.New(notice.Config{Store: store, Lease: held{}, Sealer: r.seal, Log: quiet,
					Channels: map[string]notice.Channel{ch: channels[name]}})
				sealed, _ := r.seal.Seal("K7P2M9QX")
				store.Update(func(tx notice.Tx) error {
					return svc.Queue(tx, notice.NewNotice{Order: "O1", Locker: "L", Kind: notice.KindReady, Sealed: sealed,
						Contact: contact, LastDay: now.Add(time.Hour)}, now)
				})
				svc.Work(context.Background(), now)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "notices/s")
		})
	}
}
