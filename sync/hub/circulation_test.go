package hub_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockerd/lockerd/locker/lockertest"
	"github.com/lockerd/lockerd/sync/hub"
	"github.com/lockerd/lockerd/sync/hub/alarm"
	"github.com/lockerd/lockerd/sync/hub/api"
	"github.com/lockerd/lockerd/sync/hub/circulation"
	"github.com/lockerd/lockerd/sync/hub/hubbolt"
	"github.com/lockerd/lockerd/sync/hub/hubtest"
	"github.com/lockerd/lockerd/sync/protocol"
	"github.com/lockerd/lockerd/sync/sip2"
	"github.com/lockerd/lockerd/sync/sip2/sip2test"
)

// bridge is a hub (no broker: driven through HandleUplink) with a SIP2
// session to a fake ILS, its queue worked step by step.
type bridge struct {
	t   testing.TB
	h   *hub.Hub
	ils *sip2test.Server
	s   *sip2.Session
	seq uint64
}

func newBridge(t testing.TB, tune func(*hub.Config)) *bridge {
	t.Helper()
	ils := sip2test.Start(t, []sip2test.Patron{{ID: "P1", Name: "Li Wei"}, {ID: "P2", Name: "Zhang Min"}, {ID: "PX", Blocked: true}},
		[]sip2test.Item{{Barcode: "B1", Title: "西游记"}, {Barcode: "B2"}, {Barcode: "B3"}, {Barcode: "HOLD", Alert: "02", Screen: "Hold for North branch"}})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s := sip2.NewSession(sip2.Config{Address: ils.Addr, User: "u", Password: "p", Institution: "FAKE", ErrorDetection: true,
		VerifyChecksums: true, Timeout: time.Second, Heartbeat: time.Hour, Log: log})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	cfg := hub.Config{Store: hubtest.BoltStore(t, filepath.Join(t.TempDir(), "hub.db")), SigningKey: signerKey, PickupKey: lockertest.Key,
		Lockers: []string{"nb-1"}, Log: log, Circulation: circulation.Circulation{ILS: s, MaxAttempts: 3}}
	if tune != nil {
		tune(&cfg)
	}
	h, err := hub.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	b := &bridge{t: t, h: h, ils: ils, s: s}
	b.up()
	raw, _ := json.Marshal(protocol.Status{V: 1, Type: protocol.TypeStatus, Online: true, Boot: 1, Store: "s1", Instance: "i1", OutboxTail: 1, TS: time.Now().UTC()})
	h.HandleUplink(tp.Status(), raw)
	return b
}

var (
	signerKey = ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	tp        = protocol.Topics{Prefix: protocol.DefaultPrefix, Locker: "nb-1"}
	tEvent    = time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC)
)

func (b *bridge) up() {
	b.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !b.s.State().Up; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.t.Fatalf("no ILS session: %+v", b.s.State())
		}
	}
}

// event hands the hub one locker event.
func (b *bridge) event(typ string, hist bool, at time.Time, data any) {
	b.seq++
	raw, _ := json.Marshal(data)
	e, _ := json.Marshal(protocol.Event{V: 1, ID: protocol.EventID("nb-1", "s1", b.seq), Type: typ, Locker: "nb-1", Store: "s1",
		Boot: 1, Seq: b.seq, TS: at, Hist: hist, Data: raw})
	b.h.HandleUplink(tp.UpEvt(), e)
}

func (b *bridge) order(id, patron string, items ...string) {
	b.t.Helper()
	var its []protocol.Item
	for _, it := range items {
		its = append(its, protocol.Item{Barcode: it})
	}
	if _, err := b.h.CreateOrder(hub.NewOrder{Locker: "nb-1", ID: id, Patron: patron, Items: its}); err != nil {
		b.t.Fatal(err)
	}
}

func (b *bridge) work() { b.h.WorkCirculation(context.Background()) }

func (b *bridge) circs(state string) []circulation.CircRec {
	b.t.Helper()
	cs, err := b.h.Circulation(circulation.CircFilter{State: state})
	if err != nil {
		b.t.Fatal(err)
	}
	return cs
}

func TestBridgeRecordsLoansAndReturns(t *testing.T) {
	b := newBridge(t, nil)
	b.order("O1", "P1", "B1", "B2")
	b.order("O2", "PX", "B3")
	b.event("pickup.completed", false, time.Now().UTC(), protocol.PickupCompleted{OrderID: "O1", Via: "code"})
	b.event("pickup.completed", true, tEvent, protocol.PickupCompleted{OrderID: "O2", Via: "code"}) // while offline
	b.event("item.returned", false, time.Now().UTC(), protocol.ItemReturned{Barcode: "B1", Scanner: "return"})
	b.event("item.returned", false, time.Now().UTC(), protocol.ItemReturned{Barcode: "HOLD", Scanner: "return"})
	b.event("item.returned", false, time.Now().UTC(), protocol.ItemReturned{Barcode: "NOPE", Scanner: "return"})
	b.work()

	if got := b.ils.Checkouts("P1", "B1") + b.ils.Checkouts("P1", "B2"); got != 2 {
		t.Fatalf("checkouts of O1: %d", got)
	}
	// B1: its checkout went before its checkin.
	var order []string
	for _, tr := range b.ils.Transactions() {
		if tr.Item == "B1" {
			order = append(order, tr.Code)
		}
		if tr.Code == "09" && tr.Location != "nb-1" {
			t.Fatalf("checkin's current location %q, want the locker's", tr.Location)
		}
	}
	if strings.Join(order, ",") != "11,09" {
		t.Fatalf("B1's transactions in order %v, want checkout then checkin", order)
	}
	done := b.circs(circulation.CircDone)
	if len(done) != 3 {
		t.Fatalf("done: %+v", done)
	}
	orders, _ := b.h.Orders("nb-1")
	if len(orders[0].Loans) != 2 || !orders[0].Loans[0].OK || orders[0].Loans[0].Due == "" {
		t.Fatalf("the ILS's answers are not kept with the order: %+v", orders[0].Loans)
	}
	// Refusals: the blocked patron's checkout, the unknown item's checkin.
	refused := b.circs(circulation.CircRefused)
	if len(refused) != 2 || refused[0].Screen != "Patron blocked" || refused[0].Kind != "checkout" || !refused[0].NoBlock ||
		refused[1].Screen != "" && refused[1].Item != "NOPE" {
		t.Fatalf("refused: %+v", refused)
	}
	// The hold: an exception for the staff to sort the item.
	ex := b.circs(circulation.CircException)
	if len(ex) != 1 || ex[0].Item != "HOLD" || ex[0].AlertType != "02" || ex[0].Screen != "Hold for North branch" {
		t.Fatalf("exceptions: %+v", ex)
	}
	// A refusal is not retried on its own; retried by hand it is sent again.
	b.work()
	if n := len(b.ils.Transactions()); n != 6 {
		t.Fatalf("%d transactions after a second round, want the same 6", n)
	}
	if _, err := b.h.ResolveCirc(ex[0].ID, ""); err == nil {
		t.Fatal("resolved without a note")
	}
	if _, err := b.h.ResolveCirc(ex[0].ID, "on the hold shelf"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.h.RetryCirc(refused[0].ID); err != nil {
		t.Fatal(err)
	}
	b.work()
	if r := b.circs(circulation.CircRefused); len(r) != 2 {
		t.Fatalf("retried, refused again: %+v", r)
	}
	if co := b.ils.Transactions(); co[len(co)-1].Code != "11" || co[len(co)-1].Patron != "PX" || co[len(co)-1].Date != "20261120   Z093000" {
		t.Fatalf("the retried checkout (with the event's time): %+v", co[len(co)-1])
	}
}

// A checkout whose reply was lost is looked up before it is sent again:
// the ILS records it once.
func TestBridgeCheckoutExactlyOnce(t *testing.T) {
	b := newBridge(t, nil)
	b.order("O1", "P1", "B1")
	b.ils.SetFaults(sip2test.Faults{DropAfterAct: true})
	b.event("pickup.completed", false, time.Now().UTC(), protocol.PickupCompleted{OrderID: "O1", Via: "code"})
	b.work()
	if b.ils.Checkouts("P1", "B1") != 1 {
		t.Fatal("the ILS did not act")
	}
	c := b.circs(circulation.CircSending)
	if len(c) != 1 || !c[0].Uncertain || c[0].Attempts != 1 {
		t.Fatalf("after a lost reply: %+v", c)
	}
	b.ils.SetFaults(sip2test.Faults{})
	b.up()
	b.work()
	if n := b.ils.Checkouts("P1", "B1"); n != 1 {
		t.Fatalf("checked out %d times", n)
	}
	done := b.circs(circulation.CircDone)
	if len(done) != 1 || done[0].Due == "" || done[0].Uncertain {
		t.Fatalf("done: %+v", done)
	}
	// Not acted on (dropped before): looked up, not there, sent again.
	b.order("O2", "P2", "B2")
	b.ils.SetFaults(sip2test.Faults{DropBeforeReply: true})
	b.event("pickup.completed", false, time.Now().UTC(), protocol.PickupCompleted{OrderID: "O2", Via: "code"})
	b.work()
	b.ils.SetFaults(sip2test.Faults{})
	b.up()
	b.work()
	if n := b.ils.Checkouts("P2", "B2"); n != 1 || len(b.circs(circulation.CircDone)) != 2 {
		t.Fatalf("checked out %d times", n)
	}
}

// No answer max_attempts times: an exception, and the other items go on.
func TestBridgeGivesUpToAPerson(t *testing.T) {
	b := newBridge(t, nil)
	b.order("O1", "P1", "B1")
	b.ils.SetFaults(sip2test.Faults{DropBeforeReply: true})
	b.event("pickup.completed", false, time.Now().UTC(), protocol.PickupCompleted{OrderID: "O1", Via: "code"})
	for range 3 {
		b.up()
		b.work()
	}
	ex := b.circs(circulation.CircException)
	if len(ex) != 1 || ex[0].Attempts != 3 || !strings.Contains(ex[0].LastError, "after 3 attempts") {
		t.Fatalf("exceptions: %+v", ex)
	}
	b.ils.SetFaults(sip2test.Faults{})
	b.event("item.returned", false, time.Now().UTC(), protocol.ItemReturned{Barcode: "B2", Scanner: "return"})
	b.up()
	b.work()
	if b.ils.Checkins("B2") != 1 {
		t.Fatal("another item waited behind the exception")
	}
	// Retried by hand: looked up first (it never reached the ILS), then sent.
	if _, err := b.h.RetryCirc(ex[0].ID); err != nil {
		t.Fatal(err)
	}
	b.work()
	if b.ils.Checkouts("P1", "B1") != 1 {
		t.Fatal("the retried checkout did not reach the ILS once")
	}
}

// An ILS that is down or offline takes nothing, and nothing counts as an
// attempt; check_patron refuses a blocked patron's order with the ILS's
// words, and queues the check when the ILS cannot be asked.
func TestBridgeWhileTheILSIsDown(t *testing.T) {
	b := newBridge(t, func(c *hub.Config) { c.Circulation.CheckPatron = true })
	if _, err := b.h.CreateOrder(hub.NewOrder{Locker: "nb-1", Patron: "PX", Items: []protocol.Item{{Barcode: "B1"}}}); err == nil || !strings.Contains(err.Error(), "Patron blocked") {
		t.Fatalf("blocked patron's order: %v", err)
	}
	if _, err := b.h.CreateOrder(hub.NewOrder{Locker: "nb-1", Patron: "nobody"}); err == nil || !strings.Contains(err.Error(), "Unknown patron") {
		t.Fatalf("unknown patron's order: %v", err)
	}
	b.order("O1", "P1", "B1")
	b.ils.Down()
	for deadline := time.Now().Add(5 * time.Second); b.s.State().Up; time.Sleep(10 * time.Millisecond) {
		b.s.ItemInformation(context.Background(), "B1") // finds the connection gone
		if time.Now().After(deadline) {
			t.Fatal("session still up")
		}
	}
	b.order("O2", "PX", "B2") // not refused: the ILS cannot be asked
	b.event("pickup.completed", false, tEvent, protocol.PickupCompleted{OrderID: "O1", Via: "code"})
	b.work()
	q := b.circs(circulation.CircQueued)
	if len(q) != 2 || q[0].Kind != circulation.CircPatron || q[1].Attempts != 0 {
		t.Fatalf("queued while down: %+v", q)
	}
	if err := b.ils.Up(); err != nil {
		t.Fatal(err)
	}
	b.up()
	b.work()
	if r := b.circs(circulation.CircRefused); len(r) != 1 || r[0].Kind != circulation.CircPatron || r[0].Order != "O2" {
		t.Fatalf("the queued patron check: %+v", r)
	}
	tr := b.ils.Transactions()
	if len(tr) != 1 || !tr[0].OK || !tr[0].NoBlock || tr[0].Date != "20261120   Z093000" {
		t.Fatalf("the late checkout: %+v", tr)
	}
}

// Two replicas on one store work the queue at once: the lease gives it
// to one, and each loan reaches the ILS once.
func TestBridgeReplicasShareTheQueue(t *testing.T) {
	st, err := hubbolt.Open(filepath.Join(t.TempDir(), "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a := newBridge(t, func(c *hub.Config) { c.Store = sharedStore{st} })
	s2 := sip2.NewSession(sip2.Config{Address: a.ils.Addr, User: "u", Password: "p", Institution: "FAKE", ErrorDetection: true,
		VerifyChecksums: true, Timeout: time.Second, Heartbeat: time.Hour, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s2.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	b, err := hub.New(hub.Config{Store: sharedStore{st}, SigningKey: signerKey, PickupKey: lockertest.Key, Lockers: []string{"nb-1"},
		ClientID: "replica-b", Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Circulation: circulation.Circulation{ILS: s2}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	for !s2.State().Up {
		time.Sleep(10 * time.Millisecond)
	}
	items := []string{"B1", "B2", "B3"}
	a.order("O1", "P1", items...)
	a.event("pickup.completed", false, time.Now().UTC(), protocol.PickupCompleted{OrderID: "O1", Via: "code"})
	var wg sync.WaitGroup
	for _, h := range []*hub.Hub{a.h, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				h.WorkCirculation(context.Background())
			}
		}()
	}
	wg.Wait()
	for _, it := range items {
		if n := a.ils.Checkouts("P1", it); n != 1 {
			t.Fatalf("%s checked out %d times", it, n)
		}
	}
	// The metrics say so (the counters are each replica's own).
	var body strings.Builder
	for _, h := range []*hub.Hub{a.h, b} {
		rec := httptest.NewRecorder()
		api.New(api.ForHub(h)).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		body.WriteString(rec.Body.String())
	}
	for _, want := range []string{"lockerhub_ils_session_up 1", `lockerhub_circulation_queue_depth{state="queued"} 0`,
		"lockerhub_ils_round_trip_seconds_bucket", `lockerhub_circulation_transactions_total{kind="checkout",outcome="done"}`} {
		if !strings.Contains(body.String(), want) {
			t.Fatalf("/metrics lacks %q:\n%s", want, body.String())
		}
	}
}

// With checkin_on_load, a loaded order's items are checked in (some ILSs
// mark the hold as at the locker that way); without it, nothing is sent.
func TestBridgeCheckinOnLoad(t *testing.T) {
	for _, on := range []bool{false, true} {
		t.Run(fmt.Sprint(on), func(t *testing.T) {
			b := newBridge(t, func(c *hub.Config) { c.Circulation.CheckinOnLoad = on })
			b.order("O1", "P1", "B1", "B2")
			b.event("order.loaded", false, tEvent, protocol.OrderLoaded{OrderID: "O1", Compartment: "A1"})
			b.work()
			want := 0
			if on {
				want = 1
			}
			if b.ils.Checkins("B1") != want || b.ils.Checkins("B2") != want {
				t.Fatalf("checkins %d %d, want %d each", b.ils.Checkins("B1"), b.ils.Checkins("B2"), want)
			}
		})
	}
}

// bounce makes the ILS drop the session and take it again: the session
// logs in again and reads a new 98 SC Status.
func (b *bridge) bounce(f sip2test.Faults) {
	b.t.Helper()
	b.ils.SetFaults(f)
	b.ils.Down()
	for deadline := time.Now().Add(5 * time.Second); b.s.State().Up; time.Sleep(10 * time.Millisecond) {
		b.s.ItemInformation(context.Background(), "B1") // finds the connection gone
		if time.Now().After(deadline) {
			b.t.Fatal("session still up")
		}
	}
	if err := b.ils.Up(); err != nil {
		b.t.Fatal(err)
	}
	b.up()
}

// openAlarm is the open alarm of a type, if any.
func (b *bridge) openAlarm(typ string) (alarm.Alarm, bool) {
	b.t.Helper()
	as, err := b.h.Alarms(0)
	if err != nil {
		b.t.Fatal(err)
	}
	for _, a := range as {
		if a.Type == typ && a.State != alarm.Resolved {
			return a, true
		}
	}
	return alarm.Alarm{}, false
}

// An ILS that says "not now" is not silent: while its 98 SC Status
// refuses checkouts and a loan waits, the bridge says which flag (the
// transaction's message, ILSStatus), raises ils.unavailable once that has
// lasted AlarmAfter, and resolves it when loans go again. An ILS that
// cannot be reached at all raises the same alarm, naming that.
func TestBridgeSaysWhyItWaits(t *testing.T) {
	b := newBridge(t, func(c *hub.Config) { c.Circulation.AlarmAfter = time.Minute })
	ctx := context.Background()
	b.bounce(sip2test.Faults{NoCheckout: true})
	b.order("O1", "P1", "B1")
	b.event("pickup.completed", false, tEvent, protocol.PickupCompleted{OrderID: "O1", Via: "code"})
	t0 := time.Now()
	b.h.WorkCirculationAt(ctx, t0)
	q := b.circs(circulation.CircQueued)
	if len(q) != 1 || !strings.Contains(q[0].LastError, "checkout ok N") || !strings.Contains(q[0].LastError, "ignore_status_flags") {
		t.Fatalf("the waiting loan: %+v", q)
	}
	st, err := b.h.ILSStatus()
	if err != nil || !st.Up || !strings.Contains(st.Why, "checkout ok N") || st.Waiting != 1 {
		t.Fatalf("status: %+v %v", st, err)
	}
	if _, open := b.openAlarm(alarm.ILSUnavailable); open {
		t.Fatal("alarm raised at once")
	}
	b.h.WorkCirculationAt(ctx, t0.Add(61*time.Second))
	a, open := b.openAlarm(alarm.ILSUnavailable)
	if !open || !strings.Contains(a.Detail, "checkout ok N") || a.Severity != alarm.Critical {
		t.Fatalf("after a minute: %+v (open %v)", a, open)
	}
	b.h.WorkCirculationAt(ctx, t0.Add(2*time.Minute))
	if a2, _ := b.openAlarm(alarm.ILSUnavailable); a2.Seq != a.Seq || a2.Count != a.Count {
		t.Fatalf("raised again: %+v, then %+v", a, a2)
	}
	// The ILS takes loans again: the loan goes, the alarm resolves.
	b.bounce(sip2test.Faults{})
	b.h.WorkCirculationAt(ctx, t0.Add(3*time.Minute))
	if d := b.circs(circulation.CircDone); len(d) != 1 {
		t.Fatalf("the loan once the ILS takes it: %+v", b.circs(""))
	}
	if a, open := b.openAlarm(alarm.ILSUnavailable); open {
		t.Fatalf("alarm still open: %+v", a)
	}
	if st, _ := b.h.ILSStatus(); st.Why != "" {
		t.Fatalf("status after: %+v", st)
	}

	// Unreachable (as when another program holds the ILS's port): said
	// at once, alarmed after AlarmAfter.
	b.ils.Down()
	for deadline := time.Now().Add(5 * time.Second); b.s.State().Up; time.Sleep(10 * time.Millisecond) {
		b.s.ItemInformation(ctx, "B1")
		if time.Now().After(deadline) {
			t.Fatal("session still up")
		}
	}
	t1 := time.Now()
	b.h.WorkCirculationAt(ctx, t1)
	if st, _ := b.h.ILSStatus(); st.Up || !strings.Contains(st.Why, "unreachable") {
		t.Fatalf("status with the ILS down: %+v", st)
	}
	b.h.WorkCirculationAt(ctx, t1.Add(61*time.Second))
	if a, open := b.openAlarm(alarm.ILSUnavailable); !open || !strings.Contains(a.Detail, "unreachable") {
		t.Fatalf("ILS down a minute: %+v (open %v)", a, open)
	}
}
