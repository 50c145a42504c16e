package locker_test

import (
	"context"
	"testing"
	"time"

	"github.com/lockerd/lockerd/drivers/sim"
	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/locker/lockertest"
)

// gatedPulse holds every lock pulse until released: a lock board slow to
// answer while lockerd is told to stop.
type gatedPulse struct {
	*sim.Hardware
	entered chan string
	release chan struct{}
}

func (g *gatedPulse) Pulse(lock string, d time.Duration) error {
	g.entered <- lock
	<-g.release
	return g.Hardware.Pulse(lock, d)
}

// Run returns only after the lock pulses in flight have ended, and no
// pulse starts once it has returned: the daemon then drives every lock to
// its locked level and closes the store, with nothing still driving them.
func TestShutdownJoinsPulses(t *testing.T) {
	gate := &gatedPulse{entered: make(chan string, 1), release: make(chan struct{})}
	c := lockertest.NewCabinetWrapped(t, lockertest.Settings(), func(hw *sim.Hardware) locker.Hardware {
		gate.Hardware = hw
		return gate
	})
	opened := make(chan locker.ScanResult, 1)
	go func() {
		res, _ := c.L.MaintenanceOpen(context.Background(), "S1", "test")
		opened <- res
	}()
	<-gate.entered
	stopped := make(chan struct{})
	go func() { c.Stop(); close(stopped) }()
	select {
	case <-stopped:
		t.Fatal("Run returned while a lock pulse was in flight")
	case <-time.After(100 * time.Millisecond): // a negative: Run must still be waiting
	}
	close(gate.release)
	<-stopped
	<-opened
	if n := len(c.HW.Pulses()); n != 1 {
		t.Fatalf("%d pulses, want 1", n)
	}
	res, _ := c.L.MaintenanceOpen(context.Background(), "S2", "after stop")
	select {
	case lock := <-gate.entered:
		t.Fatalf("lock %s pulsed after Run returned", lock)
	default:
	}
	if res.Outcome == locker.OutcomeMaintOpen || len(c.HW.Pulses()) != 1 {
		t.Fatalf("an open after the stop: %+v, %d pulses", res, len(c.HW.Pulses()))
	}
}
