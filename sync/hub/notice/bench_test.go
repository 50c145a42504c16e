package notice_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/lockerd/lockerd/sync/hub/notice"
)

type nopChannel struct{}

func (nopChannel) Send(context.Context, notice.Message) error { return nil }

// BenchmarkSend: notices sent a second by one sender, each queued, then
// rendered with its code opened and sent: to a channel that does nothing
// (the baseline: queue, seal, render, record), over SMTP with STARTTLS (a
// connection per notice, as sent), and to the HTTP gateway. Run with
// -benchtime 500x; compare ns/op to the baseline of the same run.
func BenchmarkSend(b *testing.B) {
	for _, ch := range []string{"baseline", notice.ChannelEmail, notice.ChannelHTTP} {
		b.Run(ch, func(b *testing.B) {
			r := newRig(b)
			if ch == "baseline" {
				r.svc = notice.New(notice.Config{Store: r.store, Lease: held{}, Sealer: r.seal,
					Channels: map[string]notice.Channel{notice.ChannelEmail: nopChannel{}}})
				ch = notice.ChannelEmail
			}
			contact := notice.Contact{Email: "li@example.org"}
			if ch == notice.ChannelHTTP {
				contact = notice.Contact{Phone: "+8613800138000"}
			}
			now := time.Now()
			b.ResetTimer()
			for i := range b.N {
				sealed, _ := r.seal.Seal("K7P2M9QX")
				r.queue(b, notice.NewNotice{Order: fmt.Sprintf("O%d", i), Locker: "L", Kind: notice.KindReady,
					Sealed: sealed, Contact: contact, LastDay: now.Add(time.Hour)}, now)
				r.svc.Work(context.Background(), now)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "notices/s")
		})
	}
}
