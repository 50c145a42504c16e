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
