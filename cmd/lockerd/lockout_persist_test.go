package main

import (
	"testing"

	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/locker/httpapi"
)

// TestLockoutSurvivesPowerCut: a scanner locked out for wrong codes stays
// locked out after lockerd is SIGKILLed and restarted (a power cycle is
// not a way around the lockout); the keypad, which was not, still serves.
func TestLockoutSurvivesPowerCut(t *testing.T) {
	c := newCabinet(t, "0s", func(c *cabinet) { c.Lockout = "10m" })
	d := start(t, c.Config)
	rep := d.addOrder(httpapi.AddOrderRequest{Size: "S", Compartment: "A01"})
	for i := 0; i < 5; i++ {
		d.scan("front", "WRONG00"+string(rune('A'+i)))
	}
	d.waitEvent(locker.EvLockoutStarted, map[string]any{"scanner": "front"})
	d.kill()

	d = start(t, c.Config)
	if res := d.scan("front", rep.Code); res.Outcome != locker.OutcomeDenied || res.Reason != locker.DenyLockedOut {
		t.Fatalf("after a power cut the locked-out scanner answered %+v", res)
	}
	if res := d.scan("keypad", rep.Code); res.Outcome != locker.OutcomeOpened {
		t.Fatalf("the keypad after the power cut: %+v", res)
	}
}
