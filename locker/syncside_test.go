package locker_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/locker/lockertest"
)

// The outbox as the link sees it: SyncState's head, tail and depth; an
// ack removes events up to its seq and no further, and one beyond the
// head is clamped to it.
func TestSyncStateAndAcks(t *testing.T) {
	c := lockertest.NewCabinet(t, lockertest.Settings())
	for range 3 {
		newOrder(t, c, "")
	}
	st, err := c.L.SyncState()
	if err != nil {
		t.Fatal(err)
	}
	if st.OutboxHead < 4 || st.OutboxTail != 1 || st.Depth != int(st.OutboxHead) || st.StoreID == "" || st.StoreID != c.L.StoreID() {
		t.Fatalf("sync state %+v", st)
	}
	n, err := c.L.AckEvents(2)
	if err != nil || n != 2 {
		t.Fatalf("ack 2: removed %d, %v", n, err)
	}
	if n, _ := c.L.AckEvents(2); n != 0 {
		t.Fatalf("the same ack again removed %d", n)
	}
	st2, _ := c.L.SyncState()
	if st2.AckedSeq != 2 || st2.OutboxTail != 3 || st2.Depth != st.Depth-2 {
		t.Fatalf("after ack 2: %+v", st2)
	}
	if n, _ := c.L.AckEvents(st.OutboxHead + 1000); n != st.Depth-2 {
		t.Fatalf("ack beyond the head removed %d", n)
	}
	st3, _ := c.L.SyncState()
	if st3.AckedSeq != st.OutboxHead || st3.Depth != 0 || st3.OutboxTail != st.OutboxHead+1 {
		t.Fatalf("after an ack beyond the head: %+v", st3)
	}
}

// cmd.open at the core: a compartment holding a ready order is that
// order's pickup (via remote, after maintenance.open names the order);
// any other is a maintenance open; an unknown one is an error.
func TestRemoteOpen(t *testing.T) {
	c := lockertest.NewCabinet(t, lockertest.Settings())
	o, _ := newOrder(t, c, "S1")
	res, err := c.L.RemoteOpen(context.Background(), "S1", "reader called")
	if err != nil || res.Outcome != locker.OutcomeOpened || res.OrderID != o.ID {
		t.Fatalf("remote open of a ready order: %+v %v", res, err)
	}
	c.WaitEvent(t, locker.EvMaintenanceOpen, map[string]any{"compartment": "S1", "order_id": o.ID, "remote": true})
	c.WaitEvent(t, locker.EvPickupCompleted, map[string]any{"order_id": o.ID, "via": locker.ViaRemote})
	closeDoor(t, c, "S1")
	res, err = c.L.RemoteOpen(context.Background(), "M1", "")
	if err != nil || res.Outcome != locker.OutcomeMaintOpen {
		t.Fatalf("remote open of an empty compartment: %+v %v", res, err)
	}
	c.WaitEvent(t, locker.EvMaintenanceOpen, map[string]any{"compartment": "M1", "reason": "remote", "remote": true})
	if _, err := c.L.RemoteOpen(context.Background(), "Z9", "x"); err == nil {
		t.Fatal("remote open of an unknown compartment")
	}
}

// Telemetry counts free and used compartments by size; an identity
// conflict and device states are recorded as their events.
func TestTelemetryAndDeviceEvents(t *testing.T) {
	c := lockertest.NewCabinet(t, lockertest.Settings())
	newOrder(t, c, "S1")
	tel, err := c.L.Telemetry()
	if err != nil {
		t.Fatal(err)
	}
	if tel.Free[locker.SizeS] != 1 || tel.Used[locker.SizeS] != 1 || tel.Free[locker.SizeM] != 1 {
		t.Fatalf("telemetry %+v", tel)
	}
	c.L.RecordIdentityConflict(locker.IdentityConflict{OtherInstance: "i2", OtherStore: "s2", BirthsSeen: 3})
	e := c.WaitEvent(t, locker.EvIdentityConflict, map[string]any{"other_instance": "i2", "births_seen": 3})
	p, err := e.Payload()
	if ic, ok := p.(*locker.IdentityConflict); err != nil || !ok || ic.OtherStore != "s2" {
		t.Fatalf("payload %#v %v", p, err)
	}
	c.L.RecordScannerState("front", false, "unplugged")
	c.L.RecordScannerState("front", true, "")
	c.L.RecordHardwareFault(locker.HardwareFault{Device: "lock board 1", Detail: "no reply"})
	c.WaitEvent(t, locker.EvScannerDisconnected, map[string]any{"scanner": "front", "detail": "unplugged"})
	c.WaitEvent(t, locker.EvScannerConnected, map[string]any{"scanner": "front"})
	c.WaitEvent(t, locker.EvHardwareFault, map[string]any{"device": "lock board 1", "detail": "no reply"})
	if !c.L.ScannerStates()["front"] || c.L.HardwareStates()["lock board 1"] {
		t.Fatalf("states: scanners %v hardware %v", c.L.ScannerStates(), c.L.HardwareStates())
	}
	c.L.RecordHardwareFault(locker.HardwareFault{Device: "lock board 1", OK: true})
	c.WaitEvent(t, locker.EvHardwareRecovered, map[string]any{"device": "lock board 1"})
	if !c.L.HardwareStates()["lock board 1"] {
		t.Fatal("hardware not back up")
	}
}

// A panic in the locker's work becomes a fault: unhealthy, and no door
// opens until a restart.
func TestFaultStopsTheDoors(t *testing.T) {
	c := lockertest.NewCabinet(t, lockertest.Settings())
	_, code := newOrder(t, c, "S1")
	c.L.Tick()
	if err := c.L.Healthy(time.Minute); err != nil {
		t.Fatalf("a fresh locker is unhealthy: %v", err)
	}
	notices, stop := c.L.SubscribeNotices()
	defer stop()
	func() {
		defer c.L.Recover("a test")
		panic("boom")
	}()
	if n := <-notices; n.Type != locker.NoticeStoreHealth {
		t.Fatalf("notice %+v", n)
	}
	if err := c.L.Healthy(time.Minute); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("healthy after a panic: %v", err)
	}
	if res := scan(t, c, "front", code); res.Outcome == locker.OutcomeOpened {
		t.Fatalf("a door opened on a faulted locker: %+v", res)
	}
}

// The space check: under MinFree store.low_space is recorded once per
// episode; under the floor no door opens; both clear when space returns.
func TestLowSpace(t *testing.T) {
	c := lockertest.NewCabinet(t, lockertest.Settings())
	// The headroom is read by the locker's own goroutines as well as the
	// test's, so it is an atomic.
	var room atomic.Int64
	room.Store(10 << 20)
	c.L.SetSpaceLimits(locker.SpaceLimits{Headroom: func() (int64, error) { return room.Load(), nil }, MinFree: 1 << 20, Floor: 256 << 10})
	_, code := newOrder(t, c, "S1")
	room.Store(512 << 10)
	c.L.Tick()
	c.L.Tick()
	c.WaitEvent(t, locker.EvStoreLowSpace, map[string]any{"headroom_bytes": 512 << 10})
	n := 0
	for _, e := range c.Events(t) {
		if e.Type == locker.EvStoreLowSpace {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d store.low_space events in one episode", n)
	}
	room.Store(100 << 10)
	if res := scan(t, c, "front", code); res.Outcome != locker.OutcomeError {
		t.Fatalf("a pickup under the floor: %+v", res)
	}
	room.Store(10 << 20)
	c.L.Tick()
	if res := scan(t, c, "front", code); res.Outcome != locker.OutcomeOpened {
		t.Fatalf("a pickup with room again: %+v", res)
	}
	room.Store(-1)
	c.L.SetSpaceLimits(locker.SpaceLimits{Headroom: func() (int64, error) { return 0, errors.New("statfs failed") }, MinFree: 1 << 20, Floor: 256 << 10})
	_, code2 := newOrder(t, c, "M1")
	if res := scan(t, c, "front", code2); res.Outcome == locker.OutcomeOpened {
		t.Fatalf("a pickup while the headroom cannot be read: %+v", res)
	}
}

// The reads the API and the kiosk use: live status, pages of orders,
// devices, the order a code belongs to, an event's payload.
func TestStatusReads(t *testing.T) {
	c := lockertest.NewCabinet(t, lockertest.Settings())
	o1, code := newOrder(t, c, "S1")
	newOrder(t, c, "S2")
	st, err := c.L.LiveStatus()
	if err != nil || len(st.Compartments) != 4 || st.Orders != nil {
		t.Fatalf("live status %+v %v", st, err)
	}
	page, err := c.L.OrdersPage("", 1)
	if err != nil || len(page) != 1 {
		t.Fatalf("page %v %v", page, err)
	}
	rest, _ := c.L.OrdersPage(page[0].ID, 10)
	if len(rest) != 1 || rest[0].ID == page[0].ID {
		t.Fatalf("next page %v", rest)
	}
	if len(c.L.Devices()) == 0 || c.L.Boot() == 0 {
		t.Fatalf("devices %v boot %d", c.L.Devices(), c.L.Boot())
	}
	found, err := c.L.FindOrderByCode(strings.ToLower(code))
	if err != nil || found.ID != o1.ID {
		t.Fatalf("order by code: %+v %v", found, err)
	}
	if _, err := c.L.FindOrderByCode("NOSUCH99"); err == nil {
		t.Fatal("an unknown code found an order")
	}
	h, err := c.L.HashCode(code)
	if err != nil || h != found.CodeHash {
		t.Fatalf("hash %s %v, order's %s", h, err, found.CodeHash)
	}
	for _, e := range c.Events(t) {
		if _, err := e.Payload(); err != nil {
			t.Fatalf("event %d: %v", e.Seq, err)
		}
	}
	if _, err := (locker.Event{Type: "no.such"}).Payload(); err == nil {
		t.Fatal("an unknown event type decoded")
	}
}

// Orders from the central library: each malformed one is rejected with
// why, the rest applied; a ready order unknown here is restored as loaded
// only into a free compartment; a code another order holds is refused and
// frees what the order was given.
func TestApplyOrdersFromCentral(t *testing.T) {
	c := lockertest.NewCabinet(t, lockertest.Settings())
	exp := c.Clock.Now().Add(time.Hour)
	good := func(id string, rev uint64) locker.Order {
		return locker.Order{ID: id, Rev: rev, State: locker.OrderAssigned, Size: locker.SizeS,
			CodeHash: lockertest.Key.Hash("CODE" + id), ExpiresAt: exp}
	}
	bad := []func(*locker.Order){
		func(o *locker.Order) { o.ID = "" },
		func(o *locker.Order) { o.Rev = 0 },
		func(o *locker.Order) { o.Size = "XXL" },
		func(o *locker.Order) { o.CodeHash = "short" },
		func(o *locker.Order) { o.State = locker.OrderPickedUp },
		func(o *locker.Order) { o.ExpiresAt = time.Time{} },
	}
	var batch []locker.Order
	for i, f := range bad {
		o := good("BAD"+string(rune('A'+i)), 1)
		f(&o)
		batch = append(batch, o)
	}
	batch = append(batch, good("OK1", 2))
	res, err := c.L.ApplyOrders(batch)
	if err != nil || len(res.Rejected) != len(bad) || res.AppliedCount != 1 || res.Rev != 2 {
		t.Fatalf("batch: %+v %v", res, err)
	}
	ready := good("READY1", 3)
	ready.State, ready.Assigned = locker.OrderReady, "S1"
	taken := good("READY2", 4)
	taken.State, taken.Assigned = locker.OrderReady, "S1"
	if res, err := c.L.ApplyOrders([]locker.Order{ready, taken}); err != nil || len(res.Conflicts) != 1 || res.Conflicts[0].OrderID != "READY2" {
		t.Fatalf("restored as loaded: %+v %v", res, err)
	}
	if o := order(t, c, "READY1"); o.State != locker.OrderReady || !o.Loaded {
		t.Fatalf("READY1 %+v", o)
	}
	if o := order(t, c, "READY2"); o.State != locker.OrderAssigned {
		t.Fatalf("READY2 %+v", o)
	}
	// The central may give a reader's orders one code: taken as sent.
	dup := good("DUP1", 5)
	dup.CodeHash, dup.Assigned = ready.CodeHash, "M1"
	if res, err := c.L.ApplyOrders([]locker.Order{dup}); err != nil || len(res.Applied) != 1 {
		t.Fatalf("a code another order holds: %+v %v", res, err)
	}
	if comp := compartment(t, c, "M1"); comp.State != locker.CompReserved {
		t.Fatalf("M1 after the order sharing a code: %+v", comp)
	}
	badPatron := good("BADPATRON", 6)
	badPatron.PatronHash = "card-1234"
	if res, err := c.L.ApplyOrders([]locker.Order{badPatron}); err != nil || len(res.Rejected) != 1 || !strings.Contains(res.Rejected[0].Reason, "patron_hash") {
		t.Fatalf("a patron hash that is not one: %+v %v", res, err)
	}
}
