package sim

import (
	"testing"
	"time"

	"github.com/lockerd/lockerd/locker"
)

func newSim(t *testing.T, autoClose time.Duration) *Hardware {
	t.Helper()
	h, err := New(Config{Doors: []Door{{ID: "A", Lock: "LA", Sensor: "DA"}, {ID: "B", Lock: "LB", Sensor: "DB"}},
		BinFullSensor: "BIN", OpenDelay: time.Millisecond, AutoClose: autoClose, RelayActiveLow: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func next(t *testing.T, h *Hardware) locker.InputChange {
	t.Helper()
	select {
	case c := <-h.Inputs():
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no input change")
	}
	return locker.InputChange{}
}

func TestPulseOpensAndAutoCloses(t *testing.T) {
	h := newSim(t, 20*time.Millisecond)
	if !h.LevelHigh("LA") {
		t.Fatal("active-low lock not high (locked) after New")
	}
	done := make(chan struct{})
	h.OnPulse(func(lock string, _ time.Time) {
		if h.LevelHigh(lock) {
			t.Error("energised active-low output is high")
		}
		close(done)
	})
	if err := h.Pulse("LA", time.Millisecond); err != nil { // clamped up to the minimum
		t.Fatal(err)
	}
	<-done
	if !h.LevelHigh("LA") {
		t.Fatal("lock not back at locked level after the pulse")
	}
	if p := h.Pulses(); len(p) != 1 || p[0].Duration != locker.MinLockPulse {
		t.Fatalf("pulses %+v: want one clamped to %v", p, locker.MinLockPulse)
	}
	if c := next(t, h); c.Pin != "DA" || !c.Active {
		t.Fatalf("want DA open, got %+v", c)
	}
	if c := next(t, h); c.Pin != "DA" || c.Active {
		t.Fatalf("want DA closed by auto-close, got %+v", c)
	}
}

func TestFaults(t *testing.T) {
	h := newSim(t, 0)
	h.Jam("A", true)
	h.Pulse("LA", locker.MinLockPulse)
	if open, _ := h.Read("DA"); open {
		t.Fatal("jammed door opened")
	}
	h.Open("B") // forced
	if c := next(t, h); c.Pin != "DB" || !c.Active {
		t.Fatalf("forced open: %+v", c)
	}
	closed := false
	h.StickSensor("B", &closed) // sensor now lies: reads closed while open
	if c := next(t, h); c.Pin != "DB" || c.Active {
		t.Fatalf("stuck sensor: %+v", c)
	}
	h.CloseDoor("B")
	h.StickSensor("B", nil)
	if open, _ := h.Read("DB"); open {
		t.Fatal("unstuck sensor of closed door reads open")
	}
	h.SetBinFull(true)
	if c := next(t, h); c.Pin != "BIN" || !c.Active {
		t.Fatalf("bin full: %+v", c)
	}
	if _, err := h.Read("nope"); err == nil {
		t.Fatal("unknown pin read")
	}
	if err := h.Pulse("nope", time.Second); err == nil {
		t.Fatal("unknown lock pulsed")
	}
}

func TestControllerOffline(t *testing.T) {
	h := newSim(t, 0)
	if err := h.SetOffline(true); err != nil {
		t.Fatal(err)
	}
	if f := <-h.Faults(); f.OK || f.Device != ControllerDevice || f.Detail == "" {
		t.Fatalf("fault %+v", f)
	}
	for _, pin := range []string{"DA", "DB", "BIN"} {
		if _, err := h.Read(pin); err == nil {
			t.Errorf("Read(%s) with the controller offline: no error", pin)
		}
	}
	if _, err := h.Read("nope"); err == nil {
		t.Error("Read of an unknown pin: no error")
	}
	if err := h.Pulse("LA", 100*time.Millisecond); err == nil {
		t.Fatal("pulse with the controller offline: no error")
	}
	if len(h.Pulses()) != 0 || !h.LevelHigh("LA") {
		t.Fatal("an offline controller energised a lock")
	}
	// The door is forced open meanwhile: nothing is reported until the
	// controller is back, then every reading is.
	if err := h.Open("B"); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-h.Inputs():
		t.Fatalf("input change while offline: %+v", c)
	default:
	}
	if err := h.SetOffline(false); err != nil {
		t.Fatal(err)
	}
	if f := <-h.Faults(); !f.OK || f.Device != ControllerDevice {
		t.Fatalf("recovery %+v", f)
	}
	want := []locker.InputChange{{Pin: "BIN"}, {Pin: "DA"}, {Pin: "DB", Active: true}}
	for _, w := range want {
		if c := next(t, h); c.Pin != w.Pin || c.Active != w.Active {
			t.Fatalf("after coming back: %+v, want %+v", c, w)
		}
	}
	if v, err := h.Read("DB"); err != nil || !v {
		t.Fatalf("Read(DB) = %v, %v after coming back", v, err)
	}
}
