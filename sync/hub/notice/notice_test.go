package notice_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockerd/lockerd/sync/hub/egress"
	"github.com/lockerd/lockerd/sync/hub/notice"
	"github.com/lockerd/lockerd/sync/hub/notice/noticetest"
	"github.com/lockerd/lockerd/sync/hub/webhook"
)

func TestMemStore(t *testing.T) { noticetest.TestStore(t, noticetest.NewMem()) }

type held struct{}

func (held) Claim(time.Duration) (bool, error) { return true, nil }
func (held) Release() error                    { return nil }

func sealer(t testing.TB) *notice.Sealer {
	t.Helper()
	k, err := notice.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := hex.DecodeString(k)
	s, err := notice.NewSealer(raw)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A sealed code opens only with its key, and never shows in the sealed
// bytes.
func TestSeal(t *testing.T) {
	s := sealer(t)
	sealed, err := s.Seal("K7P2M9QX")
	if err != nil || bytes.Contains(sealed, []byte("K7P2M9QX")) {
		t.Fatalf("sealed %x %v", sealed, err)
	}
	if code, err := s.Open(sealed); err != nil || code != "K7P2M9QX" {
		t.Fatalf("open: %q %v", code, err)
	}
	other, _ := notice.NewSealer(bytes.Repeat([]byte{9}, 32))
	if _, err := other.Open(sealed); err == nil {
		t.Fatal("opened with another key")
	}
	if _, err := s.Open(append(sealed, make([]byte, 200)...)); err == nil {
		t.Fatal("an oversized sealed code opened")
	}
	if _, err := notice.NewSealer([]byte("short")); err == nil {
		t.Fatal("a short key taken")
	}
}

func TestContactCheck(t *testing.T) {
	for _, tc := range []struct {
		c  notice.Contact
		ok bool
	}{
		{notice.Contact{Email: "li.wei@example.org", Lang: "zh"}, true},
		{notice.Contact{Phone: "+8613800138000", Lang: "en"}, true},
		{notice.Contact{}, true},
		{notice.Contact{Email: "Li Wei <li@example.org>"}, false},
		{notice.Contact{Email: "li@example.org\r\nBcc: x@example.org"}, false},
		{notice.Contact{Email: "not an address"}, false},
		{notice.Contact{Phone: "12"}, false},
		{notice.Contact{Phone: "138-0013-8000"}, false},
		{notice.Contact{Email: "li@example.org", Lang: "fr"}, false},
	} {
		if err := tc.c.Check(); (err == nil) != tc.ok {
			t.Errorf("%+v: %v, want ok %v", tc.c, err, tc.ok)
		}
	}
}

func FuzzContactCheck(f *testing.F) {
	f.Add("li@example.org", "+8613800138000", "zh")
	f.Add("a <b@c>", "x", "en")
	f.Fuzz(func(t *testing.T, email, phone, lang string) {
		c := notice.Contact{Email: email, Phone: phone, Lang: lang}
		if c.Check() == nil && (strings.ContainsAny(email, "\r\n<>") || strings.ContainsAny(phone, "\r\n ")) {
			t.Fatalf("%+v passed", c)
		}
	})
}

type rig struct {
	gatewayURL string
	store      *noticetest.Mem
	svc        *notice.Service
	smtp       *noticetest.SMTP
	seal       *notice.Sealer
	mu         sync.Mutex
	posts      []*http.Request
	body       [][]byte
	code       int
}

func newRig(t testing.TB) *rig {
	r := &rig{store: noticetest.NewMem(), smtp: noticetest.StartSMTP(t), seal: sealer(t), code: 200}
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.posts, r.body = append(r.posts, req), append(r.body, b)
		w.WriteHeader(r.code)
	}))
	t.Cleanup(gw.Close)
	r.gatewayURL = gw.URL + "/sms"
	policy := egress.Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
	h, err := notice.NewHTTP(gw.URL+"/sms", "gateway-secret-0123456789", policy, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	email := &notice.Email{Addr: r.smtp.Addr, From: "locker@library.example.org", TLS: "starttls",
		TLSConfig: &tls.Config{ServerName: "127.0.0.1", RootCAs: r.smtp.Roots}}
	r.svc = notice.New(notice.Config{Store: r.store, Lease: held{}, Sealer: r.seal, Timeout: 500 * time.Millisecond, Log: quiet,
		Channels: map[string]notice.Channel{notice.ChannelEmail: email, notice.ChannelHTTP: h},
		Places: func(id string) notice.Place {
			return notice.Place{Name: notice.Text{"zh": "鼓楼社区服务中心", "en": "Gulou Community Centre"},
				Address: notice.Text{"zh": "中山西路 1 号", "en": "1 Zhongshan Road West"}, Hours: notice.Text{"zh": "8:00–20:00", "en": "8:00–20:00"}}
		},
		Link: func(order, locker string, until time.Time) (string, error) {
			return "https://library.example.org/o/tok-" + order, nil
		}})
	return r
}

func (r *rig) queue(t testing.TB, n notice.NewNotice, now time.Time) {
	t.Helper()
	if err := r.store.Update(func(tx notice.Tx) error { return r.svc.Queue(tx, n, now) }); err != nil {
		t.Fatal(err)
	}
}

func (r *rig) all(t *testing.T) []notice.Notice {
	t.Helper()
	var out []notice.Notice
	r.store.View(func(tx notice.Tx) error { out, _ = tx.Notices(0, 0); return nil })
	return out
}

// A ready notice goes to the reader once by each channel they can be
// reached by: an e-mail over STARTTLS in their language with the code, the
// place, the hours, the last day and the order page's link; a signed POST
// to the gateway with the same. Queued again (the event came twice), it is
// not sent again. Once sent, its sealed code is gone from the store.
func TestReadyNoticeOnceByEachChannel(t *testing.T) {
	r := newRig(t)
	now := time.Date(2026, 12, 5, 9, 0, 0, 0, time.Local)
	sealed, _ := r.seal.Seal("K7P2M9QX")
	n := notice.NewNotice{Order: "ORD-1", Locker: "gulou-1", Kind: notice.KindReady, Sealed: sealed, Compartment: "M3",
		Contact: notice.Contact{Email: "li.wei@example.org", Phone: "+8613800138000", Lang: "en"}, LastDay: now.Add(72 * time.Hour)}
	r.queue(t, n, now)
	r.queue(t, n, now)
	r.svc.Work(context.Background(), now)
	r.svc.Work(context.Background(), now.Add(time.Minute))
	mails := r.smtp.Mails()
	if len(mails) != 1 || mails[0].To[0] != "li.wei@example.org" {
		t.Fatalf("mails %+v", mails)
	}
	body := string(mails[0].Data)
	for _, want := range []string{"K7P2M9QX", "Gulou Community Centre", "1 Zhongshan Road West", "8:00–20:00", "Door: M3",
		"https://library.example.org/o/tok-ORD-1", "Last day: Tue 8 Dec 2026, 09:00", "Message-ID: <notice-", "Subject: Your books are ready in the locker"} {
		if !strings.Contains(body, want) {
			t.Errorf("the e-mail lacks %q:\n%s", want, body)
		}
	}
	r.mu.Lock()
	if len(r.posts) != 1 {
		t.Fatalf("%d gateway posts", len(r.posts))
	}
	req, raw := r.posts[0], r.body[0]
	r.mu.Unlock()
	if err := webhook.Verify("gateway-secret-0123456789", req.Header.Get(webhook.HeaderSignature), raw, time.Now(), time.Minute); err != nil {
		t.Fatalf("gateway signature: %v", err)
	}
	var got map[string]any
	json.Unmarshal(raw, &got)
	if got["code"] != "K7P2M9QX" || got["to"] != "+8613800138000" || req.Header.Get("Idempotency-Key") == "" {
		t.Fatalf("gateway body %s, headers %v", raw, req.Header)
	}
	for _, rec := range r.all(t) {
		if rec.State != notice.StateSent || rec.Sealed != nil || rec.Attempts != 1 {
			t.Fatalf("after sending: %+v", rec)
		}
	}
}

// In Chinese by default.
func TestNoticeInChinese(t *testing.T) {
	r := newRig(t)
	now := time.Now()
	sealed, _ := r.seal.Seal("ABCD2345")
	r.queue(t, notice.NewNotice{Order: "ORD-2", Locker: "gulou-1", Kind: notice.KindReady, Sealed: sealed,
		Contact: notice.Contact{Email: "zhang@example.org"}, LastDay: now.Add(time.Hour)}, now)
	r.svc.Work(context.Background(), now)
	mails := r.smtp.Mails()
	if len(mails) != 1 || !strings.Contains(string(mails[0].Data), "取书码: ABCD2345") || !strings.Contains(string(mails[0].Data), "鼓楼社区服务中心") ||
		!strings.Contains(string(mails[0].Data), "Subject: =?utf-8?b?") {
		t.Fatalf("mails %+v", mails)
	}
}

// What cannot be sent is not queued: no contact, or a ready notice
// without its code.
func TestNotQueued(t *testing.T) {
	r := newRig(t)
	now := time.Now()
	r.queue(t, notice.NewNotice{Order: "O", Locker: "L", Kind: notice.KindReady, Sealed: []byte{1}}, now)
	r.queue(t, notice.NewNotice{Order: "O", Locker: "L", Kind: notice.KindReady, Contact: notice.Contact{Email: "a@example.org"}}, now)
	if n := r.all(t); len(n) != 0 {
		t.Fatalf("queued %+v", n)
	}
	if err := r.store.Update(func(tx notice.Tx) error {
		return r.svc.Queue(tx, notice.NewNotice{Kind: "nonsense", Contact: notice.Contact{Email: "a@example.org"}}, now)
	}); err == nil {
		t.Fatal("a notice of no kind queued")
	}
}

// A server that refuses, then one that hangs: each attempt fails within
// the timeout and is retried after a back-off, not before; once the
// server takes it, it is sent, once. Past its deadline a notice is dead.
func TestRetriesAndDeadline(t *testing.T) {
	r := newRig(t)
	now := time.Now()
	sealed, _ := r.seal.Seal("RETRY234")
	r.queue(t, notice.NewNotice{Order: "ORD-3", Locker: "L", Kind: notice.KindReady, Sealed: sealed,
		Contact: notice.Contact{Email: "a@example.org"}, LastDay: now.Add(48 * time.Hour)}, now)
	r.smtp.Refuse(true)
	r.svc.Work(context.Background(), now)
	n := r.all(t)[0]
	if n.State != notice.StatePending || n.Attempts != 1 || !strings.Contains(n.Error, "550") || !n.NextAt.After(now.Add(20*time.Second)) {
		t.Fatalf("after a refusal: %+v", n)
	}
	r.svc.Work(context.Background(), now.Add(time.Second)) // before its back-off
	if n := r.all(t)[0]; n.Attempts != 1 {
		t.Fatalf("retried before its back-off: %+v", n)
	}
	r.smtp.Refuse(false)
	r.smtp.Hang(true)
	began := time.Now()
	r.svc.Work(context.Background(), now.Add(time.Hour))
	if n := r.all(t)[0]; n.Attempts != 2 || n.State != notice.StatePending || time.Since(began) > 5*time.Second {
		t.Fatalf("a hanging server: %+v after %v", n, time.Since(began))
	}
	r.smtp.Hang(false)
	r.svc.Work(context.Background(), now.Add(2*time.Hour))
	if n := r.all(t)[0]; n.State != notice.StateSent || len(r.smtp.Mails()) != 1 {
		t.Fatalf("after the server came back: %+v, %d mails", n, len(r.smtp.Mails()))
	}
	// Dead at the deadline.
	r.queue(t, notice.NewNotice{Order: "ORD-4", Locker: "L", Kind: notice.KindReady, Sealed: sealed,
		Contact: notice.Contact{Email: "a@example.org"}, LastDay: now.Add(time.Hour)}, now)
	r.svc.Work(context.Background(), now.Add(2*time.Hour))
	all := r.all(t)
	if d := all[len(all)-1]; d.State != notice.StateDead || d.Sealed != nil || !strings.Contains(d.Error, "deadline") {
		t.Fatalf("past its deadline: %+v", d)
	}
}

// A notice found sending (the sender died with it on the wire) is sent
// again, with the same Message-ID.
func TestSendingAfterACrashGoesAgain(t *testing.T) {
	r := newRig(t)
	now := time.Now()
	sealed, _ := r.seal.Seal("CRASH234")
	r.queue(t, notice.NewNotice{Order: "ORD-5", Locker: "L", Kind: notice.KindReady, Sealed: sealed,
		Contact: notice.Contact{Email: "a@example.org"}, LastDay: now.Add(time.Hour)}, now)
	r.store.Update(func(tx notice.Tx) error {
		n, _, _ := tx.Notice(1)
		n.State = notice.StateSending
		return tx.PutNotice(n)
	})
	r.svc.Work(context.Background(), now)
	if m := r.smtp.Mails(); len(m) != 1 || !strings.Contains(string(m[0].Data), "Message-ID: <notice-1@library.example.org>") {
		t.Fatalf("mails %+v", m)
	}
}

// Whatever the store hands back as a sealed code, Open refuses it or
// opens it, never more.
func FuzzSealedOpen(f *testing.F) {
	s, _ := notice.NewSealer(bytes.Repeat([]byte{7}, 32))
	good, _ := s.Seal("ABCD2345")
	f.Add(good)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, sealed []byte) {
		if code, err := s.Open(sealed); err == nil && (code == "" || len(code) > 64) {
			t.Fatalf("opened %q", code)
		}
	})
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))
