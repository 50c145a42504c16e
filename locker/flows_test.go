package locker_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/lockerd/lockerd/drivers/sim"
	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/locker/lockertest"
)

var ctx = context.Background()

func newOrder(t *testing.T, c *lockertest.Cabinet, comp string) (locker.Order, string) {
	t.Helper()
	o, code, err := c.L.CreateOrder(locker.NewOrder{Compartment: comp, Size: locker.SizeS, TTL: time.Hour,
		Items: []locker.Item{{Barcode: "9787020002207", Title: "Dream of the Red Chamber"}}})
	if err != nil {
		t.Fatal(err)
	}
	return o, code
}

func scan(t *testing.T, c *lockertest.Cabinet, dev, text string) locker.ScanResult {
	t.Helper()
	res, err := c.L.Scan(ctx, dev, text)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func order(t *testing.T, c *lockertest.Cabinet, id string) locker.Order {
	t.Helper()
	var o locker.Order
	if err := c.Store.View(func(tx locker.Tx) error {
		var err error
		o, err = tx.Order(id)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return o
}

func compartment(t *testing.T, c *lockertest.Cabinet, id string) locker.Compartment {
	t.Helper()
	var cp locker.Compartment
	if err := c.Store.View(func(tx locker.Tx) error {
		var err error
		cp, err = tx.Compartment(id)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return cp
}

// closeDoor closes a door in the sim and waits for the core to see it.
func closeDoor(t *testing.T, c *lockertest.Cabinet, id string) {
	t.Helper()
	if err := c.HW.CloseDoor(id); err != nil {
		t.Fatal(err)
	}
	c.WaitEvent(t, locker.EvDoorClosed, map[string]any{"compartment": id})
}

func TestPickupOpensDoorAndCompletes(t *testing.T) {
	c := lockertest.NewCabinet(t, lockertest.Settings())
	o, code := newOrder(t, c, "S2")
	res := scan(t, c, "front", "]Q1"+code+"\r\n")
	if res.Outcome != locker.OutcomeOpened || len(res.Compartments) != 1 || res.Compartments[0] != "S2" {
		t.Fatalf("scan = %+v", res)
	}
	c.WaitEvent(t, locker.EvPickupCompleted, map[string]any{"order_id": o.ID, "compartments": []string{"S2"}, "via": "scan"})
	c.WaitEvent(t, locker.EvDoorOpened, map[string]any{"compartment": "S2", "commanded": true})
	if got := order(t, c, o.ID).State; got != locker.OrderPickedUp {
		t.Fatalf("order state %s", got)
	}
	closeDoor(t, c, "S2")
	if cp := compartment(t, c, "S2"); cp.State != locker.CompFree || cp.OrderID != "" {
		t.Fatalf("compartment after pickup: %+v", cp)
	}
	// Forgot a book: the same code reopens within the grace period...
	c.Clock.Advance(time.Minute)
	if res := scan(t, c, "keypad", code); res.Outcome != locker.OutcomeOpened {
		t.Fatalf("reopen within grace: %+v", res)
	}
	closeDoor(t, c, "S2")
	// ...and never after it.
	c.Clock.Advance(2 * time.Minute)
	if res := scan(t, c, "front", code); res.Outcome != locker.OutcomeDenied || res.Reason != locker.DenyNotReady {
		t.Fatalf("after grace: %+v", res)
	}
	// The plaintext code is nowhere in the store file.
	raw, err := os.ReadFile(c.Store.Path())
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(code)) {
		t.Fatal("plaintext pickup code found in the store file")
	}
}

func TestWrongCodesLockOutTheScanner(t *testing.T) {
	c := lockertest.NewCabinet(t, lockertest.Settings())
	_, code := newOrder(t, c, "")
	for i := 0; i < 5; i++ {
		if res := scan(t, c, "front", "ZZZZ0"+string(rune('0'+i))); res.Outcome != locker.OutcomeDenied || res.Reason != locker.DenyUnknown {
			t.Fatalf("wrong code %d: %+v", i, res)
		}
	}
	c.WaitEvent(t, locker.EvLockoutStarted, map[string]any{"scanner": "front"})
	res := scan(t, c, "front", code)
	if res.Outcome != locker.OutcomeDenied || res.Reason != locker.DenyLockedOut {
		t.Fatalf("right code during lockout: %+v", res)
	}
	// Another input device is not locked out.
	if res := scan(t, c, "keypad", code); res.Outcome != locker.OutcomeOpened {
		t.Fatalf("keypad during front's lockout: %+v", res)
	}
	// Garbage counts as a failure too, and nothing echoes it.
	c.Clock.Advance(31 * time.Second)
	for _, e := range c.Events(t) {
		for _, v := range e.Fields() {
			if s, ok := v.(string); ok && (s == code || s == "ZZZZ00") {
				t.Fatalf("event %s carries a scanned code", e.Type)
			}
		}
	}
}

func TestExpiredOrderIsRefused(t *testing.T) {
	c := lockertest.NewCabinet(t, lockertest.Settings())
	o1, code1 := newOrder(t, c, "S1")
	o2, code2 := newOrder(t, c, "S2")
	c.Clock.Advance(2 * time.Hour)
	// Expired at scan time.
	if res := scan(t, c, "front", code1); res.Outcome != locker.OutcomeDenied || res.Reason != locker.DenyExpired {
		t.Fatalf("scan after expiry: %+v", res)
	}
	c.WaitEvent(t, locker.EvOrderExpired, map[string]any{"order_id": o1.ID})
	// Expired by the periodic tick.
	c.L.Tick()
	c.WaitEvent(t, locker.EvOrderExpired, map[string]any{"order_id": o2.ID})
	if res := scan(t, c, "front", code2); res.Reason != locker.DenyExpired {
		t.Fatalf("scan of ticked-expired order: %+v", res)
	}
	if got := order(t, c, o2.ID).State; got != locker.OrderExpired {
		t.Fatalf("state %s", got)
	}
}

func staffSettings() (locker.Settings, string) {
	set := lockertest.Settings()
	badge := "STAFF0042"
	set.StaffBadges = []string{lockertest.Key.Hash(badge)}
	return set, badge
}

func TestStaffLoadAndRetrieve(t *testing.T) {
	set, badge := staffSettings()
	c := lockertest.NewCabinet(t, set)
	hash := lockertest.Key.Hash("LOADME12")
	if err := c.L.ApplyOrder(locker.Order{ID: "ORD-1", Rev: 1, State: locker.OrderAssigned, Size: locker.SizeM,
		Items: []locker.Item{{Barcode: "31234567"}}, CodeHash: hash, ExpiresAt: c.Clock.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	// A stale rev is refused.
	if err := c.L.ApplyOrder(locker.Order{ID: "ORD-1", Rev: 1, State: locker.OrderAssigned, Size: locker.SizeM, CodeHash: hash}); err == nil {
		t.Fatal("stale rev applied")
	}
	// Not ready before loading.
	if res := scan(t, c, "front", "LOADME12"); res.Reason != locker.DenyNotReady {
		t.Fatalf("code of unloaded order: %+v", res)
	}
	if res := scan(t, c, "front", badge); res.Outcome != locker.OutcomeStaffOn {
		t.Fatalf("badge: %+v", res)
	}
	res := scan(t, c, "front", "31234567") // item barcode
	if res.Outcome != locker.OutcomeLoading || res.Compartments[0] != "M1" {
		t.Fatalf("load scan: %+v (want smallest free fitting M: M1)", res)
	}
	closeDoor(t, c, "M1")
	c.WaitEvent(t, locker.EvOrderLoaded, map[string]any{"order_id": "ORD-1", "compartment": "M1"})
	if o := order(t, c, "ORD-1"); o.State != locker.OrderReady || o.Compartments[0] != "M1" {
		t.Fatalf("order after load: %+v", o)
	}
	if res := scan(t, c, "front", badge); res.Outcome != locker.OutcomeStaffOff {
		t.Fatalf("badge again: %+v", res)
	}

	// Two orders expire; RETRIEVE opens their compartments one after the other.
	_, _ = newOrder(t, c, "S1")
	c.Clock.Advance(2 * time.Hour)
	c.L.Tick()
	scan(t, c, "front", badge)
	res = scan(t, c, "front", "retrieve")
	if res.Outcome != locker.OutcomeRetrieving {
		t.Fatalf("RETRIEVE: %+v", res)
	}
	first := res.Compartments[0]
	second := map[string]string{"M1": "S1", "S1": "M1"}[first]
	closeDoor(t, c, first)
	c.WaitEvent(t, locker.EvOrderRetrieved, map[string]any{"compartment": first})
	c.WaitEvent(t, locker.EvDoorOpened, map[string]any{"compartment": second, "commanded": true})
	closeDoor(t, c, second)
	c.WaitEvent(t, locker.EvOrderRetrieved, map[string]any{"compartment": second})
	for _, id := range []string{"M1", "S1"} {
		if cp := compartment(t, c, id); cp.State != locker.CompFree {
			t.Fatalf("%s after retrieval: %+v", id, cp)
		}
	}
	if o := order(t, c, "ORD-1"); o.State != locker.OrderRetrieved {
		t.Fatalf("order after retrieval: %s", o.State)
	}
}

func TestJamTwiceTakesCompartmentOutOfService(t *testing.T) {
	c := lockertest.NewCabinet(t, lockertest.Settings())
	o, code := newOrder(t, c, "S1")
	c.HW.Jam("S1", true)
	for i := 1; i <= 2; i++ {
		res := scan(t, c, "front", code)
		if res.Outcome != locker.OutcomeJammed {
			t.Fatalf("jam %d: %+v", i, res)
		}
		c.WaitEvent(t, locker.EvDoorJammed, map[string]any{"compartment": "S1", "jams": i})
		if got := order(t, c, o.ID).State; got != locker.OrderReady {
			t.Fatalf("order after jam: %s", got)
		}
	}
	if n := len(c.HW.Pulses()); n != 2 {
		t.Fatalf("lock pulsed %d times for two scans, want exactly 2 (never re-pulsed automatically)", n)
	}
	c.WaitEvent(t, locker.EvCompartmentService, map[string]any{"compartment": "S1", "in_service": false})
	if cp := compartment(t, c, "S1"); !cp.OutOfService || cp.State != locker.CompLoaded {
		t.Fatalf("compartment: %+v", cp)
	}
	// Out of service: the code is refused without pulsing.
	if res := scan(t, c, "front", code); res.Outcome != locker.OutcomeDenied {
		t.Fatalf("scan on out-of-service compartment: %+v", res)
	}
	if n := len(c.HW.Pulses()); n != 2 {
		t.Fatalf("out-of-service lock pulsed")
	}
	// A technician fixes it.
	c.HW.Jam("S1", false)
	if err := c.L.SetService("S1", true, "fixed"); err != nil {
		t.Fatal(err)
	}
	if res := scan(t, c, "front", code); res.Outcome != locker.OutcomeOpened {
		t.Fatalf("after repair: %+v", res)
	}
}

// A lock whose driver cannot pulse (a lock board that does not answer) is
// a hardware fault, not a jam of the door: the pickup is refused as
// jammed, the order stays ready, and however often it happens the
// compartment stays in service and works once the board is back.
func TestLockDriverFaultIsNotAJam(t *testing.T) {
	c := lockertest.NewCabinet(t, lockertest.Settings())
	o, code := newOrder(t, c, "S1")
	c.HW.FailLock("S1", true)
	for range 3 {
		if res := scan(t, c, "front", code); res.Outcome != locker.OutcomeJammed {
			t.Fatalf("pickup with a dead lock driver: %+v", res)
		}
	}
	e := c.WaitEvent(t, locker.EvDoorJammed, map[string]any{"compartment": "S1", "jams": 0})
	if msg, _ := e.Fields()["lock_error"].(string); msg == "" {
		t.Fatalf("door.jammed without the lock error: %+v", e)
	}
	if cp := compartment(t, c, "S1"); cp.OutOfService || cp.State != locker.CompLoaded || cp.Jams != 0 {
		t.Fatalf("compartment after lock faults: %+v", cp)
	}
	if got := order(t, c, o.ID).State; got != locker.OrderReady {
		t.Fatalf("order: %s", got)
	}
	c.HW.FailLock("S1", false)
	if res := scan(t, c, "front", code); res.Outcome != locker.OutcomeOpened {
		t.Fatalf("after the board is back: %+v", res)
	}
}

func TestDoorWatch(t *testing.T) {
	c := lockertest.NewCabinet(t, lockertest.Settings())
	c.HW.Open("L1") // nobody commanded it
	c.WaitEvent(t, locker.EvDoorForced, map[string]any{"compartment": "L1"})
	c.WaitEvent(t, locker.EvDoorOpened, map[string]any{"compartment": "L1", "commanded": false})
	c.Clock.Advance(61 * time.Second)
	c.L.Tick()
	c.WaitEvent(t, locker.EvDoorLeftOpen, map[string]any{"compartment": "L1"})
	closeDoor(t, c, "L1")
	c.WaitEvent(t, locker.EvDoorClosed, map[string]any{"compartment": "L1", "commanded": false})
	// A maintenance open is commanded, recorded first.
	res, err := c.L.MaintenanceOpen(ctx, "M1", "replace reed switch")
	if err != nil || res.Outcome != locker.OutcomeMaintOpen {
		t.Fatalf("maintenance open: %+v %v", res, err)
	}
	c.WaitEvent(t, locker.EvMaintenanceOpen, map[string]any{"compartment": "M1", "reason": "replace reed switch"})
	c.WaitEvent(t, locker.EvDoorOpened, map[string]any{"compartment": "M1", "commanded": true})
}

func TestReturns(t *testing.T) {
	c := lockertest.NewCabinet(t, lockertest.Settings())
	if res := scan(t, c, "returns", "]C09787020002207\r"); res.Outcome != locker.OutcomeReturned {
		t.Fatalf("good barcode: %+v", res)
	}
	c.WaitEvent(t, locker.EvItemReturned, map[string]any{"barcode": "9787020002207", "scanner": "returns"})
	if res := scan(t, c, "returns", "K7Q2M9"); res.Outcome != locker.OutcomeRefused || res.Reason != locker.RefusePattern {
		t.Fatalf("pickup code at return slot: %+v", res)
	}
	e := c.WaitEvent(t, locker.EvReturnRefused, map[string]any{"reason": "pattern"})
	if _, has := e.Fields()["barcode"]; has {
		t.Fatal("refused text recorded")
	}
	c.HW.SetBinFull(true)
	c.WaitEvent(t, locker.EvReturnBinFull, nil)
	if res := scan(t, c, "returns", "12345678"); res.Outcome != locker.OutcomeRefused || res.Reason != locker.RefuseBinFull {
		t.Fatalf("bin full: %+v", res)
	}
	pulses := len(c.HW.Pulses())
	if pulses != 1 {
		t.Fatalf("return flap pulsed %d times, want 1", pulses)
	}
}

func TestSafetyLevelsAndPulseLimit(t *testing.T) {
	set := lockertest.Settings()
	set.LockPulse = 100 * time.Millisecond
	c := lockertest.NewCabinet(t, set)
	for _, cp := range set.Compartments {
		if !c.HW.LevelHigh(cp.Lock) {
			t.Fatalf("lock %s not at its locked (high, active-low) level after start", cp.Lock)
		}
	}
	var wg sync.WaitGroup
	for _, cp := range set.Compartments {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.L.MaintenanceOpen(ctx, cp.ID, "pulse limit test"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got := c.HW.MaxEnergised(); got > set.MaxConcurrentPulses || got < 1 {
		t.Fatalf("%d locks energised at once, limit %d", got, set.MaxConcurrentPulses)
	}
	for _, p := range c.HW.Pulses() {
		if p.Duration != set.LockPulse {
			t.Fatalf("pulse of %v", p.Duration)
		}
	}
}

func TestStartUpLocksEverythingAndReportsOpenDoors(t *testing.T) {
	c := lockertest.NewCabinet(t, lockertest.Settings(), func(hw *sim.Hardware) {
		hw.Open("M1")
		hw.SetBinFull(true)
	})
	e := c.WaitEvent(t, locker.EvDaemonStarted, nil)
	if !lockertest.Matches(e.Fields(), map[string]any{"doors_open": []string{"M1"}}) {
		t.Fatalf("daemon.started: %+v", string(e.Data))
	}
	c.WaitEvent(t, locker.EvDoorOpened, map[string]any{"compartment": "M1", "commanded": false, "at_start": true})
	st, err := c.L.Status()
	if err != nil || !st.BinFull {
		t.Fatalf("status: %+v %v", st, err)
	}
	for _, cp := range st.Compartments {
		if cp.DoorOpen != (cp.ID == "M1") {
			t.Fatalf("door state at start: %+v", cp)
		}
	}
	if res := scan(t, c, "returns", "12345678"); res.Reason != locker.RefuseBinFull {
		t.Fatalf("return with bin full at start: %+v", res)
	}
}

func TestStaffSessionTimesOut(t *testing.T) {
	set, badge := staffSettings()
	c := lockertest.NewCabinet(t, set)
	if err := c.L.ApplyOrder(locker.Order{ID: "ORD-9", Rev: 1, State: locker.OrderAssigned, Size: locker.SizeS,
		CodeHash: lockertest.Key.Hash("CODE9999"), ExpiresAt: c.Clock.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	scan(t, c, "front", badge)
	c.Clock.Advance(119 * time.Second)
	if res := scan(t, c, "front", "nothing-here"); res.Outcome != locker.OutcomeNothing {
		t.Fatalf("scan in session: %+v", res) // refreshes the idle timer
	}
	c.Clock.Advance(119 * time.Second)
	c.L.Tick()
	if res := scan(t, c, "front", "ORD-9"); res.Outcome != locker.OutcomeLoading {
		t.Fatalf("session ended too early: %+v", res)
	}
	closeDoor(t, c, "S1")
	c.Clock.Advance(121 * time.Second)
	c.L.Tick()
	// Out of the session, an order id is just a wrong code.
	if res := scan(t, c, "front", "ORD-9"); res.Outcome != locker.OutcomeDenied || res.Reason != locker.DenyUnknown {
		t.Fatalf("after idle timeout: %+v", res)
	}
}

func TestCancel(t *testing.T) {
	set, badge := staffSettings()
	c := lockertest.NewCabinet(t, set)
	exp := c.Clock.Now().Add(time.Hour)
	if err := c.L.ApplyOrder(locker.Order{ID: "A", Rev: 1, State: locker.OrderAssigned, Size: locker.SizeS, Assigned: "S1",
		CodeHash: lockertest.Key.Hash("AAAA1111"), ExpiresAt: exp}); err != nil {
		t.Fatal(err)
	}
	if cp := compartment(t, c, "S1"); cp.State != locker.CompReserved {
		t.Fatalf("pre-assigned compartment: %+v", cp)
	}
	if err := c.L.CancelOrder("A", 2); err != nil {
		t.Fatal(err)
	}
	if cp := compartment(t, c, "S1"); cp.State != locker.CompFree {
		t.Fatalf("reserved compartment after cancel: %+v", cp)
	}
	if err := c.L.CancelOrder("A", 2); err == nil {
		t.Fatal("stale cancel accepted")
	}
	// A loaded order, once cancelled, is refused and retrieved by staff.
	o, code := newOrder(t, c, "S2")
	if err := c.L.CancelOrder(o.ID, 0); err != nil {
		t.Fatal(err)
	}
	if res := scan(t, c, "front", code); res.Reason != locker.DenyCancelled {
		t.Fatalf("cancelled code: %+v", res)
	}
	scan(t, c, "front", badge)
	if res := scan(t, c, "front", "RETRIEVE"); res.Outcome != locker.OutcomeRetrieving || res.Compartments[0] != "S2" {
		t.Fatalf("retrieve: %+v", res)
	}
	closeDoor(t, c, "S2")
	c.WaitEvent(t, locker.EvOrderRetrieved, map[string]any{"order_id": o.ID})
	// A picked-up order cannot be cancelled.
	o2, code2 := newOrder(t, c, "M1")
	scan(t, c, "front", badge) // end staff session
	if res := scan(t, c, "front", code2); res.Outcome != locker.OutcomeOpened {
		t.Fatalf("pickup: %+v", res)
	}
	if err := c.L.CancelOrder(o2.ID, 0); !errors.Is(err, locker.ErrIllegalTransition) {
		t.Fatalf("cancel after pickup: %v", err)
	}
}

// A cancel that overtakes its order (two central replicas publishing, a
// broker failing over) is kept: the order arriving later with a lower rev
// is stale and its code opens nothing; a newer rev revives it, as the
// central library's own change.
func TestCancelBeforeTheOrder(t *testing.T) {
	set, _ := staffSettings()
	c := lockertest.NewCabinet(t, set)
	exp := c.Clock.Now().Add(time.Hour)
	order := func(rev uint64) locker.Order {
		return locker.Order{ID: "EARLY", Rev: rev, State: locker.OrderAssigned, Size: locker.SizeS, Assigned: "S1",
			CodeHash: lockertest.Key.Hash("EARLY123"), ExpiresAt: exp}
	}
	res, err := c.L.CancelOrders([]string{"EARLY"}, 2)
	if err != nil || res.AppliedCount != 1 || len(res.Rejected) != 0 || res.Rev != 2 {
		t.Fatalf("cancel of an order not yet here: %+v %v", res, err)
	}
	if res, err := c.L.CancelOrders([]string{"NEVER"}, 0); err != nil || len(res.Rejected) != 1 {
		t.Fatalf("a cancel without a rev of an unknown order: %+v %v", res, err)
	}
	if err := c.L.ApplyOrder(order(1)); !errors.Is(err, locker.ErrStaleRev) {
		t.Fatalf("the order after its cancel: %v, want stale", err)
	}
	if cp := compartment(t, c, "S1"); cp.State != locker.CompFree {
		t.Fatalf("a cancelled order reserved its compartment: %+v", cp)
	}
	if res := scan(t, c, "front", "EARLY123"); res.Outcome != locker.OutcomeDenied {
		t.Fatalf("the code of a cancelled order: %+v", res)
	}
	if err := c.L.ApplyOrder(order(3)); err != nil {
		t.Fatal(err)
	}
	os, _ := c.L.Orders()
	if len(os) != 1 || os[0].State != locker.OrderAssigned || os[0].Rev != 3 {
		t.Fatalf("revived at rev 3: %+v", os)
	}
}

func TestFeedbackPatterns(t *testing.T) {
	set := lockertest.Settings()
	set.Buzzer, set.StatusLED = "BUZ", "LED"
	c := lockertest.NewCabinet(t, set)
	// ons counts how often an output was switched on since mark.
	ons := func(pin string, from int) (int, int) {
		log := c.HW.Outputs()[pin]
		n := 0
		for _, ch := range log[min(from, len(log)):] {
			if ch.On {
				n++
			}
		}
		return n, len(log)
	}
	waitOff := func(pin string) int {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			log := c.HW.Outputs()[pin]
			if len(log) > 0 && !log[len(log)-1].On {
				return len(log)
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never went off: %v", pin, log)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	tests := []struct {
		name        string
		do          func()
		buzzer, led int
	}{
		{"accepted: one beep, LED on once", func() {
			_, code := newOrder(t, c, "S1")
			scan(t, c, "front", code)
		}, 1, 1},
		{"refused: three beeps, three blinks", func() { scan(t, c, "front", "NOPE1234") }, 3, 3},
		{"door left open: three long beeps, four blinks", func() {
			c.HW.Open("L1")
		}, 3, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, fromB := ons("BUZ", 0)
			_, fromL := ons("LED", 0)
			tt.do()
			c.WaitEvent(t, locker.EvPickupCompleted, nil) // the locker is live
			// Wait for both sequences to end, then count.
			deadline := time.Now().Add(10 * time.Second)
			for {
				b, nb := ons("BUZ", fromB)
				l, nl := ons("LED", fromL)
				if b >= tt.buzzer && l >= tt.led && nb > fromB && nl > fromL {
					waitOff("BUZ")
					waitOff("LED")
					b, _ = ons("BUZ", fromB)
					l, _ = ons("LED", fromL)
					if b != tt.buzzer || l != tt.led {
						t.Fatalf("buzzer on %d times, LED on %d times; want %d and %d", b, l, tt.buzzer, tt.led)
					}
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("buzzer on %d times, LED on %d times; want %d and %d", b, l, tt.buzzer, tt.led)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

func TestExpiryWaitsForATrustworthyClock(t *testing.T) {
	c := lockertest.NewCabinet(t, lockertest.Settings())
	synced := false
	trust := &locker.ClockTrust{Mode: locker.ClockTrustAuto, Synced: func() bool { return synced },
		MinPlausible: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	c.L.SetClockTrust(trust)
	o, code := newOrder(t, c, "S1") // expires an hour after 2026-11-26 10:00

	// The Pi rebooted without an RTC: 1970. Nothing expires, and nothing
	// is refused as expired.
	c.Clock.Set(time.Unix(0, 0).UTC())
	c.L.Tick()
	// A jump far into the future on an unsynchronised clock expires nothing either.
	c.Clock.Set(time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC))
	c.L.Tick()
	if got := order(t, c, o.ID).State; got != locker.OrderReady {
		t.Fatalf("order %s on an untrusted clock", got)
	}
	// The central library says it is 10:30 (local clock still at 2031):
	// its time is used — not expired yet.
	c.L.ObserveCentralTime(time.Date(2026, 11, 26, 10, 30, 0, 0, time.UTC))
	c.L.Tick()
	if got := order(t, c, o.ID).State; got != locker.OrderReady {
		t.Fatalf("order %s at central time 10:30", got)
	}
	// Two hours later by the local clock: 12:30 central time: expired.
	c.Clock.Advance(2 * time.Hour)
	c.L.Tick()
	c.WaitEvent(t, locker.EvOrderExpired, map[string]any{"order_id": o.ID})
	// The clock jumps back: the expired order stays expired.
	c.Clock.Set(time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC))
	synced = true
	if res := scan(t, c, "front", code); res.Reason != locker.DenyExpired {
		t.Fatalf("after a backwards jump: %+v", res)
	}
}

func TestBackwardsJumpGrantsNoReopen(t *testing.T) {
	c := lockertest.NewCabinet(t, lockertest.Settings())
	_, code := newOrder(t, c, "S1")
	if res := scan(t, c, "front", code); res.Outcome != locker.OutcomeOpened {
		t.Fatalf("pickup: %+v", res)
	}
	closeDoor(t, c, "S1")
	c.Clock.Advance(-24 * time.Hour)
	if res := scan(t, c, "front", code); res.Outcome == locker.OutcomeOpened {
		t.Fatal("a clock set back a day reopened the door")
	}
}

// A remote command's exp is judged by trusted time (NTP, or the central
// library's time from earlier signed messages plus the time since), never
// by the raw local clock; with no trusted time, commands are refused.
func TestCommandExpiryByTrustedTime(t *testing.T) {
	central := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC) // the real time when the test starts
	tests := []struct {
		name     string
		local    time.Time // the Pi's clock at that moment
		observed bool      // a signed message told the central time before
		sealed   time.Time // when the command was signed (exp = sealed + 60 s)
		want     error
	}{
		{"1970, nothing heard", time.Unix(0, 0).UTC(), false, central, locker.ErrNoTrustedTime},
		{"1970, held back 3h", time.Unix(0, 0).UTC(), true, central.Add(-3 * time.Hour), locker.ErrCommandExpired},
		{"1970, fresh", time.Unix(0, 0).UTC(), true, central.Add(-10 * time.Second), nil},
		{"ahead by a day, fresh", central.Add(24 * time.Hour), true, central.Add(-10 * time.Second), nil},
		{"ahead by a day, nothing heard", central.Add(24 * time.Hour), false, central, locker.ErrNoTrustedTime},
		{"behind by a day, held back 3h", central.Add(-24 * time.Hour), true, central.Add(-3 * time.Hour), locker.ErrCommandExpired},
		{"behind by a day, fresh", central.Add(-24 * time.Hour), true, central.Add(-10 * time.Second), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := lockertest.NewCabinet(t, lockertest.Settings())
			c.L.SetClockTrust(&locker.ClockTrust{Mode: locker.ClockTrustAuto, Synced: func() bool { return false },
				MinPlausible: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
			c.Clock.Set(tt.local)
			if tt.observed {
				c.L.ObserveCentralTime(central) // an ack.evt, say
				// A held-back message heard later never turns the estimate back.
				c.L.ObserveCentralTime(central.Add(-5 * time.Hour))
			}
			err := c.L.CheckCommandTime(tt.sealed.Add(time.Minute))
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("CheckCommandTime = %v, want %v", err, tt.want)
			}
		})
	}
	// Trusted local clock (NTP, or clock_trust: always): the local clock decides.
	c := lockertest.NewCabinet(t, lockertest.Settings())
	c.L.SetClockTrust(&locker.ClockTrust{Mode: locker.ClockTrustAuto, Synced: func() bool { return true }})
	if err := c.L.CheckCommandTime(c.Clock.Now().Add(-time.Second)); !errors.Is(err, locker.ErrCommandExpired) {
		t.Fatalf("past exp on an NTP clock: %v", err)
	}
	if err := c.L.CheckCommandTime(c.Clock.Now().Add(time.Minute)); err != nil {
		t.Fatalf("future exp on an NTP clock: %v", err)
	}
}
