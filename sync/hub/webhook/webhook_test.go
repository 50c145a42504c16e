package webhook_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lockerd/lockerd/sync/hub/egress"
	"github.com/lockerd/lockerd/sync/hub/webhook"
	"github.com/lockerd/lockerd/sync/hub/webhook/webhooktest"
)

func TestSignatureVerification(t *testing.T) {
	body := []byte(`{"id":"nb-1-s1-7","type":"order.loaded"}`)
	now := time.Unix(1_795_000_000, 0)
	sig := webhook.Sign("secret-0123456789", now, body)
	for _, tc := range []struct {
		name, secret, header string
		body                 []byte
		at                   time.Time
		ok                   bool
	}{
		{"good", "secret-0123456789", sig, body, now.Add(time.Minute), true},
		{"another secret", "secret-0123456788", sig, body, now, false},
		{"body changed", "secret-0123456789", sig, append(body, ' '), now, false},
		{"replayed late", "secret-0123456789", sig, body, now.Add(10 * time.Minute), false},
		{"no signature", "secret-0123456789", "t=1795000000", body, now, false},
		{"garbage", "secret-0123456789", "v1=zz,t=x", body, now, false},
	} {
		if err := webhook.Verify(tc.secret, tc.header, tc.body, tc.at, 5*time.Minute); (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

// Any header and body: no panic, and a header that verifies one body
// verifies no other.
func FuzzVerify(f *testing.F) {
	now := time.Unix(1_795_000_000, 0)
	f.Add(webhook.Sign("secret-0123456789", now, []byte("{}")), []byte("{}"))
	f.Add("t=1795000000,v1=00ff", []byte("{}"))
	f.Add("", []byte(nil))
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		if webhook.Verify("secret-0123456789", header, body, now, time.Minute) != nil {
			return
		}
		if webhook.Verify("secret-0123456789", header, append(slices.Clone(body), 'x'), now, time.Minute) == nil {
			t.Fatalf("one signature verifies two bodies: %q", header)
		}
	})
}

// A fake lease: this replica always holds it.
type held struct{}

func (held) Claim(time.Duration) (bool, error) { return true, nil }
func (held) Release() error                    { return nil }

func TestMemStore(t *testing.T) { webhooktest.TestStore(t, webhooktest.NewMem()) }

// The service on an in-memory store: a queued event is delivered signed
// to the subscriptions that take its type, retried with back-off after a
// 500, given up at once on 410 Gone and redelivered by hand; a removed
// subscription's pending deliveries are cancelled; what the egress
// policy refuses is never subscribed.
func TestService(t *testing.T) {
	const secret = "s3cret-s3cret-s3cret"
	var mu sync.Mutex
	status, got := 204, []string{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := webhook.Verify(secret, r.Header.Get(webhook.HeaderSignature), body, time.Now(), time.Minute); err != nil {
			t.Errorf("signature: %v", err)
		}
		mu.Lock()
		defer mu.Unlock()
		got = append(got, r.Header.Get(webhook.HeaderEventID))
		w.WriteHeader(status)
	}))
	defer srv.Close()
	setStatus := func(n int) { mu.Lock(); status = n; mu.Unlock() }
	received := func() []string { mu.Lock(); defer mu.Unlock(); return slices.Clone(got) }
	store := webhooktest.NewMem()
	s := webhook.New(webhook.Config{Store: store, Lease: held{}, Timeout: time.Second,
		Egress: egress.Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}})
	if _, err := s.Add(webhook.NewWebhook{URL: "http://169.254.169.254/", Events: webhook.HookTypes, Secret: secret}); !errors.Is(err, egress.ErrRefused) {
		t.Fatalf("a metadata address subscribed: %v", err)
	}
	w, err := s.Add(webhook.NewWebhook{URL: srv.URL + "/hooks", Events: []string{webhook.HookAlarm}, Secret: secret})
	if err != nil || w.Secret != "" {
		t.Fatalf("add: %+v %v", w, err)
	}
	queue := func(typ, id string) {
		t.Helper()
		if err := store.Update(func(tx webhook.Tx) error { return s.Queue(tx, typ, id, "", map[string]any{"n": id}) }); err != nil {
			t.Fatal(err)
		}
	}
	queue(webhook.HookAlarm, "a1")
	queue(webhook.HookItemReturned, "r1") // not subscribed: not queued
	now := time.Now()
	s.Work(context.Background(), now)
	if r := received(); !slices.Equal(r, []string{"a1"}) {
		t.Fatalf("delivered: %v", r)
	}
	// A 500: retried after its back-off, not before.
	setStatus(500)
	queue(webhook.HookAlarm, "a2")
	s.Work(context.Background(), now)
	s.Work(context.Background(), now.Add(100*time.Millisecond))
	if r := received(); len(r) != 2 {
		t.Fatalf("retried before its back-off: %v", r)
	}
	setStatus(204)
	s.Work(context.Background(), now.Add(2*time.Second))
	if r := received(); !slices.Equal(r, []string{"a1", "a2", "a2"}) {
		t.Fatalf("after the back-off: %v", r)
	}
	// 410 Gone: dead at once, listed, redelivered by hand.
	setStatus(410)
	queue(webhook.HookAlarm, "a3")
	s.Work(context.Background(), now.Add(3*time.Second))
	dead, _ := s.Failed()
	if len(dead) != 1 || dead[0].EventID != "a3" {
		t.Fatalf("dead: %+v", dead)
	}
	setStatus(204)
	if _, err := s.Redeliver(dead[0].ID); err != nil {
		t.Fatal(err)
	}
	s.Work(context.Background(), now.Add(4*time.Second))
	if r := received(); r[len(r)-1] != "a3" {
		t.Fatalf("redelivered: %v", r)
	}
	// Removed: its pending deliveries are cancelled.
	setStatus(500)
	queue(webhook.HookAlarm, "a4")
	if err := s.Remove(w.ID); err != nil {
		t.Fatal(err)
	}
	n := len(received())
	s.Work(context.Background(), now.Add(time.Hour))
	if len(received()) != n {
		t.Fatal("delivered to a removed subscription")
	}
}

// failingStore is a store whose updates fail while fail is set (a
// database that went away mid-round).
type failingStore struct {
	*webhooktest.Mem
	fail atomic.Bool
}

func (f *failingStore) Update(fn func(webhook.Tx) error) error {
	if f.fail.Load() {
		return errors.New("the database went away")
	}
	return f.Mem.Update(fn)
}

// A delivery whose outcome cannot be recorded stops the round: the ones
// after it are not POSTed with nothing to record them (each would be
// sent again); the next round sends the unrecorded one again, then the
// rest, once.
func TestRoundStopsWhenNotRecorded(t *testing.T) {
	const secret = "s3cret-s3cret-s3cret"
	store := &failingStore{Mem: webhooktest.NewMem()}
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get(webhook.HeaderEventID))
		mu.Unlock()
		store.fail.Store(true) // gone after the receiver had it
	}))
	defer srv.Close()
	s := webhook.New(webhook.Config{Store: store, Lease: held{}, Timeout: time.Second,
		Egress: egress.Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}})
	if _, err := s.Add(webhook.NewWebhook{URL: srv.URL, Events: []string{webhook.HookAlarm}, Secret: secret}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a1", "a2", "a3"} {
		if err := store.Update(func(tx webhook.Tx) error { return s.Queue(tx, webhook.HookAlarm, id, "", nil) }); err != nil {
			t.Fatal(err)
		}
	}
	s.Work(context.Background(), time.Now())
	mu.Lock()
	first := slices.Clone(got)
	mu.Unlock()
	if !slices.Equal(first, []string{"a1"}) {
		t.Fatalf("POSTed with the store failing: %v, want a1 alone", first)
	}
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get(webhook.HeaderEventID))
		mu.Unlock()
	})
	store.fail.Store(false)
	s.Work(context.Background(), time.Now())
	s.Work(context.Background(), time.Now())
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(got, []string{"a1", "a1", "a2", "a3"}) {
		t.Fatalf("deliveries %v, want a1 (unrecorded), then a1, a2, a3 once", got)
	}
}
