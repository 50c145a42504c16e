package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lockerd/lockerd/drivers/lockboard/lockboardtest"
	"github.com/lockerd/lockerd/drivers/serialscan/serialtest"
	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/locker/httpapi"
)

// TestLockBoardCabinet runs the lockerd binary on the lockboard backend
// against simulated CU boards on a pseudo-terminal: a pickup opens the
// right door by an unlock frame, a board that falls silent raises a
// fault the central hears of, and the daemon goes on serving.
func TestLockBoardCabinet(t *testing.T) {
	c := newCabinet(t, "0s")
	boards := onLockBoards(t, c)
	serialtest.Plug(t, c.Front)
	serialtest.Plug(t, c.Returns)

	d := start(t, c.Config)
	rep := d.addOrder(httpapi.AddOrderRequest{Compartment: "B01"})
	if res := d.scan("keypad", rep.Code); res.Outcome != locker.OutcomeOpened {
		t.Fatalf("pickup: %+v", res)
	}
	d.waitEvent(locker.EvDoorOpened, map[string]any{"compartment": "B01", "commanded": true})
	if u := boards.Unlocks(); len(u) != 1 || u[0].Board != 1 || u[0].Channel != 4 {
		t.Fatalf("unlock frames %+v, want one for board 1 channel 4", u)
	}
	boards.SetDoor(1, 4, false)
	d.waitEvent(locker.EvDoorClosed, map[string]any{"compartment": "B01"})
	d.waitEvent(locker.EvPickupCompleted, map[string]any{"order_id": rep.Order.ID})

	boards.Mute(2, true)

	d.waitEvent(locker.EvHardwareFault, map[string]any{"device": "lock board 2"})
	if m := d.metrics(); !strings.Contains(m, `lockerd_hardware_up{device="lock board 2"} 0`) {
		t.Errorf("metrics do not show board 2 down:\n%s", m)
	}
	// Board 2 has only the return slot: every compartment still serves.
	if st := d.kioskState(); !st.Serving || len(st.Unknown) != 0 {
		t.Fatalf("kiosk with board 2 silent: %+v", st)
	}
	boards.Mute(2, false)
	d.waitEvent(locker.EvHardwareRecovered, map[string]any{"device": "lock board 2"})

	// Board 1 falls silent: pickups there fail as a lock fault, not as jams,
	// and the compartment stays in service for when the board is back.
	rep2 := d.addOrder(httpapi.AddOrderRequest{Compartment: "A02"})
	boards.Mute(1, true)
	for range 2 {
		if res := d.scan("keypad", rep2.Code); res.Outcome != locker.OutcomeJammed {
			t.Fatalf("pickup with board 1 silent: %+v", res)
		}
	}
	if e := d.waitEvent(locker.EvDoorJammed, map[string]any{"compartment": "A02", "jams": 0.0}); e.Fields()["lock_error"] == nil {
		t.Fatalf("door.jammed without lock_error: %+v", e)
	}
	if cp := d.compartment("A02"); cp.OutOfService {
		t.Fatalf("A02 out of service after a board outage: %+v", cp)
	}
	d.waitEvent(locker.EvHardwareFault, map[string]any{"device": "lock board 1"})
	// Every door is behind board 1: status says unknown, not closed, and
	// the kiosk is out of service rather than refusing every code.
	if cp := d.compartment("A02"); !cp.DoorUnknown {
		t.Fatalf("A02 with its board silent: %+v", cp)
	}
	if st := d.kioskState(); st.Serving || st.Reason != "hardware" || len(st.Unknown) != len(d.status().Compartments) {
		t.Fatalf("kiosk with board 1 silent: %+v", st)
	}
	boards.Mute(1, false)
	d.waitEvent(locker.EvHardwareRecovered, map[string]any{"device": "lock board 1"})
	if cp := d.compartment("A02"); cp.DoorUnknown {
		t.Fatalf("A02 after its board is back: %+v", cp)
	}
	if st := d.kioskState(); !st.Serving || len(st.Unknown) != 0 {
		t.Fatalf("kiosk after board 1 is back: %+v", st)
	}
	if res := d.scan("keypad", rep2.Code); res.Outcome != locker.OutcomeOpened {
		t.Fatalf("pickup after board 1 is back: %+v", res)
	}

	boards.SetItem(2, 1, true)
	d.waitEvent(locker.EvReturnBinFull, map[string]any{"source": "sensor"})
}

// onLockBoards rewires the test cabinet onto two simulated CU boards
// behind a pseudo-terminal adapter: board 1 has the compartments (lock
// and hook channels in the sim's order), board 2 the return slot and its
// item sensor as the bin-full sensor.
func onLockBoards(t *testing.T, c *cabinet) *lockboardtest.Bus {
	t.Helper()
	adapter := filepath.Join(c.Dir, "usb-FTDI_FT232R_RS485-if00-port0")
	raw, err := os.ReadFile(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.NewReplacer(
		"backend: sim", "backend: lockboard\n  lockboard: {port: "+adapter+", protocol: cu, reply_timeout: 300ms, poll: 100ms}",
		"lock: LR, sensor: DR, bin_full_sensor: BIN", "lock: B2/L1, sensor: B2/S1, bin_full_sensor: B2/I1",
		"lock: L", "lock: B1/L", "sensor: D", "sensor: B1/S", "item_sensor: I", "item_sensor: B1/I",
	).Replace(string(raw))
	if err := os.WriteFile(c.Config, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	boards := lockboardtest.NewBus("cu", 1, 2)
	go boards.Serve(serialtest.PlugListening(t, adapter))
	return boards
}
