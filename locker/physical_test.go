package locker_test

import (
	"strings"
	"testing"
	"time"

	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/locker/lockertest"
)

var on = true

// A door that reads open before its pulse (forced, or its sensor stuck)
// cannot confirm anything: the pulse's own result decides. A failed pulse
// is never a completed pickup; the reader is told the door did not open.
func TestDoorReadingOpenBeforeItsPulse(t *testing.T) {
	for _, tt := range []struct {
		name     string
		lockFail bool
		want     locker.Outcome
	}{
		{"lock fails", true, locker.OutcomeJammed},
		{"lock works", false, locker.OutcomeOpened},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := lockertest.NewCabinet(t, lockertest.Settings())
			o, code := newOrder(t, c, "S1")
			if err := c.HW.StickSensor("S1", &on); err != nil {
				t.Fatal(err)
			}
			c.WaitEvent(t, locker.EvDoorForced, map[string]any{"compartment": "S1"})
			c.HW.FailLock("S1", tt.lockFail)
			res := scan(t, c, "front", code)
			if res.Outcome != tt.want {
				t.Fatalf("pickup = %+v, want %s", res, tt.want)
			}
			got := order(t, c, o.ID)
			if tt.lockFail {
				if got.State != locker.OrderReady {
					t.Fatalf("order %s after a failed pulse on a door reading open", got.State)
				}
				e := c.WaitEvent(t, locker.EvDoorJammed, map[string]any{"compartment": "S1"})
				if le, _ := e.Fields()["lock_error"].(string); !strings.Contains(le, "read open before its pulse") {
					t.Fatalf("door.jammed %v", string(e.Data))
				}
				for _, e := range c.Events(t) {
					if e.Type == locker.EvPickupCompleted {
						t.Fatalf("pickup.completed recorded for a door that never moved: %v", string(e.Data))
					}
				}
			} else if got.State != locker.OrderPickedUp {
				t.Fatalf("order %s after a working pulse", got.State)
			}
		})
	}
}

// Loading never picks a compartment whose door reads open.
func TestLoadRefusesADoorReadingOpen(t *testing.T) {
	set, badge := staffSettings()
	c := lockertest.NewCabinet(t, set)
	if err := c.L.ApplyOrder(locker.Order{ID: "ORD-1", Rev: 1, State: locker.OrderAssigned, Size: locker.SizeS, Assigned: "S1",
		CodeHash: lockertest.Key.Hash("LOAD1234"), ExpiresAt: c.Clock.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"S1", "S2"} {
		c.HW.StickSensor(id, &on)
		c.WaitEvent(t, locker.EvDoorForced, map[string]any{"compartment": id})
	}
	scan(t, c, "front", badge)
	res := scan(t, c, "front", "ORD-1")
	if res.Outcome != locker.OutcomeLoading || len(res.Compartments) != 1 || res.Compartments[0] == "S1" || res.Compartments[0] == "S2" {
		t.Fatalf("load = %+v, want a compartment whose door reads closed", res)
	}
}

// A door that opens after the confirm window (a latch that sticks, a
// board that acts late) completes the pickup it was pulsed for: the
// reader holds the books. No forced-door alarm, no jam kept.
func TestLateOpeningCompletesThePickup(t *testing.T) {
	c := lockertest.NewCabinet(t, lockertest.Settings())
	o, code := newOrder(t, c, "S1")
	c.HW.SlowDoor("S1", 3*c.Set.Policy.DoorOpenConfirm)
	if res := scan(t, c, "front", code); res.Outcome != locker.OutcomeJammed {
		t.Fatalf("pickup = %+v, want jammed (the door was not open in time)", res)
	}
	e := c.WaitEvent(t, locker.EvPickupCompleted, map[string]any{"order_id": o.ID, "late": true, "via": "scan"})
	t.Logf("late pickup: %v", string(e.Data))
	if got := order(t, c, o.ID); got.State != locker.OrderPickedUp {
		t.Fatalf("order %s after the door opened late", got.State)
	}
	c.WaitEvent(t, locker.EvDoorOpened, map[string]any{"compartment": "S1", "commanded": true, "late": true})
	closeDoor(t, c, "S1")
	cp := compartment(t, c, "S1")
	if cp.State != locker.CompFree || cp.Jams != 0 {
		t.Fatalf("compartment after the late pickup: %+v", cp)
	}
	for _, e := range c.Events(t) {
		if e.Type == locker.EvDoorForced {
			t.Fatalf("a late opening raised door.forced: %v", string(e.Data))
		}
	}
}

// A lock whose driver reports a failure (a reply lost or too late) while
// the door opens is an opening, not a jam: the sensor decides.
func TestLockReplyLostButDoorOpened(t *testing.T) {
	c := lockertest.NewCabinet(t, lockertest.Settings())
	o, code := newOrder(t, c, "S1")
	c.HW.LoseLockReply("S1", true)
	if res := scan(t, c, "front", code); res.Outcome != locker.OutcomeOpened {
		t.Fatalf("pickup = %+v, want opened", res)
	}
	if got := order(t, c, o.ID); got.State != locker.OrderPickedUp {
		t.Fatalf("order %s", got.State)
	}
	if cp := compartment(t, c, "S1"); cp.Jams != 0 {
		t.Fatalf("a jam was counted: %+v", cp)
	}
}
