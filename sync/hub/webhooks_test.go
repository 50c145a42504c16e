package hub_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockerd/lockerd/locker/lockertest"
	"github.com/lockerd/lockerd/sync/hub"
	"github.com/lockerd/lockerd/sync/hub/hubtest"
	"github.com/lockerd/lockerd/sync/hub/webhook"
	"github.com/lockerd/lockerd/sync/protocol"
)

// receiver is a real HTTP server that the test makes fail, hang, answer
// 500 or 410, go down and come back on the same port.
type receiver struct {
	t      *testing.T
	addr   string
	secret string
	mu     sync.Mutex
	mode   string // ok, 500, 410, hang
	got    []string
	srv    *http.Server
	bad    []string // signatures that did not verify
}

func newReceiver(t *testing.T, secret string) *receiver {
	r := &receiver{t: t, secret: secret, mode: "ok"}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	r.serve(ln)
	t.Cleanup(r.down)
	return r
}

func (r *receiver) serve(ln net.Listener) {
	r.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		mode := r.mode
		r.mu.Unlock()
		switch mode {
		case "500":
			w.WriteHeader(500)
			return
		case "410":
			w.WriteHeader(410)
			return
		case "410-once":
			r.set("ok")
			w.WriteHeader(410)
			return
		case "hang":
			<-req.Context().Done()
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		if err := webhook.Verify(r.secret, req.Header.Get(webhook.HeaderSignature), body, time.Now(), 5*time.Minute); err != nil {
			r.bad = append(r.bad, err.Error())
		}
		var m struct{ ID, Type string }
		json.Unmarshal(body, &m)
		if m.ID != req.Header.Get(webhook.HeaderEventID) || m.Type != req.Header.Get(webhook.HeaderEventType) {
			r.bad = append(r.bad, "headers disagree with the body")
		}
		r.got = append(r.got, m.ID)
	})}
	go r.srv.Serve(ln)
}

func (r *receiver) set(mode string) { r.mu.Lock(); r.mode = mode; r.mu.Unlock() }
func (r *receiver) down()           { r.srv.Close() }
func (r *receiver) up() {
	ln, err := net.Listen("tcp", r.addr)
	if err != nil {
		r.t.Fatal(err)
	}
	r.serve(ln)
}
func (r *receiver) received() []string { r.mu.Lock(); defer r.mu.Unlock(); return slices.Clone(r.got) }

func TestWebhooksAtLeastOnceInOrder(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	open := func(conf ...webhook.NewWebhook) *hub.Hub {
		h, err := hub.New(hub.Config{Store: hubtest.BoltStore(t, filepath.Join(dir, "hub.db")), SigningKey: signerKey, PickupKey: lockertest.Key,
			Lockers: []string{"nb-1"}, Log: log, WebhookTimeout: 300 * time.Millisecond, WebhookDeadline: time.Hour, Webhooks: conf, EgressAllow: loopbackReceivers})
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	// A subscription of the config, to a receiver that is never there.
	h := open(webhook.NewWebhook{Name: "platform", URL: "http://127.0.0.1:1/never", Events: []string{webhook.HookAlarm}, Secret: "0123456789abcdef-config"})
	const secret = "s3cret-s3cret-s3cret"
	rcv := newReceiver(t, secret)
	gone := newReceiver(t, secret)
	w, err := h.AddWebhook(webhook.NewWebhook{URL: "http://" + rcv.addr + "/hooks", Secret: secret,
		Events: []string{webhook.HookOrderLoaded, webhook.HookPickupCompleted, webhook.HookItemReturned, webhook.HookAlarm}})
	if err != nil || w.Secret != "" {
		t.Fatalf("add: %+v %v", w, err)
	}
	removed, err := h.AddWebhook(webhook.NewWebhook{URL: "http://" + gone.addr + "/", Secret: secret, Events: webhook.HookTypes})
	if err != nil {
		t.Fatal(err)
	}
	if ws, _ := h.Webhooks(); len(ws) != 3 {
		t.Fatalf("webhooks: %+v", ws)
	}

	raw, _ := json.Marshal(protocol.Status{V: 1, Type: protocol.TypeStatus, Online: true, Boot: 1, Store: "s1", Instance: "i1", OutboxTail: 1, TS: time.Now().UTC()})
	h.HandleUplink(tp.Status(), raw)
	if _, err := h.CreateOrder(hub.NewOrder{Locker: "nb-1", ID: "O1", Patron: "P1", Items: []protocol.Item{{Barcode: "B1"}}}); err != nil {
		t.Fatal(err)
	}
	seq := uint64(0)
	event := func(typ string, data any) string {
		seq++
		d, _ := json.Marshal(data)
		e := protocol.Event{V: 1, ID: protocol.EventID("nb-1", "s1", seq), Type: typ, Locker: "nb-1", Store: "s1", Boot: 1, Seq: seq, TS: time.Now().UTC(), Data: d}
		raw, _ := json.Marshal(e)
		h.HandleUplink(tp.UpEvt(), raw)
		return e.ID
	}
	loaded := event("order.loaded", protocol.OrderLoaded{OrderID: "O1", Compartment: "A1"})
	picked := event("pickup.completed", protocol.PickupCompleted{OrderID: "O1", Compartments: []string{"A1"}, Via: "code"})
	returned := event("item.returned", protocol.ItemReturned{Barcode: "B1", Scanner: "return"})
	event("door.forced", protocol.DoorChange{Compartment: "A2"})
	event("door.closed", protocol.DoorChange{Compartment: "A2"}) // not subscribed
	if err := h.RemoveWebhook(removed.ID); err != nil {
		t.Fatal(err)
	}

	ctx := context.Background()
	now := time.Now()
	step := func() { now = now.Add(15 * time.Minute); h.WorkWebhooks(ctx, now) }
	for _, mode := range []string{"500", "hang"} {
		rcv.set(mode)
		step()
	}
	rcv.down()
	step()
	// The hub restarts with everything still queued, its config's
	// subscription gone (and with it, its deliveries).
	h.Close()
	h = open()
	defer h.Close()
	rcv.up()
	rcv.set("410-once")
	step() // the first delivery is refused for good: dead; the order's next waits no longer
	step()
	got := rcv.received()
	if slices.Contains(got, loaded) || !slices.Contains(got, picked) || !slices.Contains(got, returned) || !slices.Contains(got, "alarm-1") {
		t.Fatalf("received %v", got)
	}
	failed, err := h.FailedDeliveries()
	if err != nil || len(failed) != 1 || failed[0].EventID != loaded || failed[0].Status != 410 {
		t.Fatalf("dead letters: %+v %v", failed, err)
	}
	if _, err := h.Redeliver(failed[0].ID); err != nil {
		t.Fatal(err)
	}
	step()
	got = rcv.received()
	if !slices.Contains(got, loaded) {
		t.Fatalf("redelivered, not received: %v", got)
	}
	for _, id := range []string{picked, returned, "alarm-1"} {
		if n := count(got, id); n != 1 {
			t.Fatalf("%s received %d times", id, n)
		}
	}
	if len(rcv.bad) > 0 {
		t.Fatalf("signatures: %v", rcv.bad)
	}
	if len(gone.received()) > 0 {
		t.Fatalf("a removed subscription got %v", gone.received())
	}
	ws, _ := h.Webhooks()
	for _, w := range ws {
		if w.ID == "cfg-platform" && w.Removed.IsZero() {
			t.Fatal("dropped from the config, the subscription is still there")
		}
	}
}

// loopbackReceivers lets the tests' receivers on 127.0.0.1 through the
// hub's egress policy, as a library allows its own receiver.
var loopbackReceivers = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}

// Deliveries of one order go in order: a later event of the order waits
// while an earlier one is retried.
func TestWebhooksOrderedPerOrder(t *testing.T) {
	b := newBridge(t, func(c *hub.Config) { c.WebhookTimeout = 300 * time.Millisecond; c.EgressAllow = loopbackReceivers })
	const secret = "s3cret-s3cret-s3cret"
	rcv := newReceiver(t, secret)
	if _, err := b.h.AddWebhook(webhook.NewWebhook{URL: "http://" + rcv.addr + "/", Secret: secret, Events: webhook.HookTypes}); err != nil {
		t.Fatal(err)
	}
	b.order("O1", "P1", "B1")
	b.order("O2", "P2", "B2")
	b.event("order.loaded", false, time.Now().UTC(), protocol.OrderLoaded{OrderID: "O1", Compartment: "A1"})
	b.event("order.loaded", false, time.Now().UTC(), protocol.OrderLoaded{OrderID: "O2", Compartment: "A2"})
	b.event("pickup.completed", false, time.Now().UTC(), protocol.PickupCompleted{OrderID: "O1", Via: "code"})
	now := time.Now()
	rcv.set("500")
	b.h.WorkWebhooks(context.Background(), now)
	if got := rcv.received(); len(got) != 0 {
		t.Fatalf("answered 500, yet received %v", got)
	}
	rcv.set("ok")
	b.h.WorkWebhooks(context.Background(), now.Add(2*time.Second))
	got := rcv.received()
	loaded, picked := protocol.EventID("nb-1", "s1", 1), protocol.EventID("nb-1", "s1", 3)
	if len(got) != 3 || slices.Index(got, loaded) > slices.Index(got, picked) {
		t.Fatalf("O1's pickup before its loaded, or missing: %v", got)
	}
}

func count(list []string, v string) int {
	n := 0
	for _, x := range list {
		if x == v {
			n++
		}
	}
	return n
}

// Webhooks are no way into the hub's own network: loopback, link-local,
// private and unspecified targets are refused when subscribed (and, by
// the egress policy, when dialled: sync/hub/egress); a library's own
// receiver passes when its address is allowed.
func TestWebhookTargetsRefused(t *testing.T) {
	b := newBridge(t, func(c *hub.Config) { c.EgressAllow = []netip.Prefix{netip.MustParsePrefix("10.20.0.0/16")} })
	const secret = "s3cret-s3cret-s3cret"
	for _, u := range []string{"http://169.254.169.254/latest/meta-data/", "http://127.0.0.1:8490/v1/open", "http://[::1]:8490/v1/open",
		"http://localhost:22/", "http://10.0.0.1/", "http://0.0.0.0:8490/", "http://[fe80::1]/", "http://100.100.100.200/latest/meta-data/"} {
		if _, err := b.h.AddWebhook(webhook.NewWebhook{URL: u, Secret: secret, Events: webhook.HookTypes}); err == nil || !strings.Contains(err.Error(), "egress") {
			t.Errorf("webhook to %s: %v, want a refusal", u, err)
		}
	}
	if _, err := b.h.AddWebhook(webhook.NewWebhook{URL: "http://10.20.4.5/hooks", Secret: secret, Events: webhook.HookTypes}); err != nil {
		t.Errorf("the library's allowed receiver: %v", err)
	}
	ws, _ := b.h.Webhooks()
	if len(ws) != 1 {
		t.Fatalf("%d subscriptions, want only the allowed one", len(ws))
	}
}
