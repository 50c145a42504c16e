package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/lockerd/lockerd/drivers/serialscan/serialtest"
	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/locker/boltstore"
	"github.com/lockerd/lockerd/locker/httpapi"
)

// step runs one part of a long scenario that shares one daemon.
func step(t *testing.T, name string, f func()) {
	t.Helper()
	t.Logf("step: %s", name)
	f()
}

// TestEndToEnd drives the real lockerd binary on sim hardware, with codes
// typed on a pseudo-terminal scanner, through every physical flow.
func TestEndToEnd(t *testing.T) {
	c := newCabinet(t, "0s", func(c *cabinet) { c.Lockout = "3s" }) // doors stay open until the test closes them
	front := serialtest.Plug(t, c.Front)
	returns := serialtest.Plug(t, c.Returns)
	d := start(t, c.Config)
	d.waitEvent(locker.EvScannerConnected, map[string]any{"scanner": "front"})
	d.waitEvent(locker.EvScannerConnected, map[string]any{"scanner": "returns"})

	step(t, "pickup by scan", func() {
		rep := d.addOrder(httpapi.AddOrderRequest{Compartment: "A01", Items: []locker.Item{{Barcode: "9787020002207"}}})
		front.Write([]byte("]Q1" + strings.ToLower(rep.Code) + "\r\n"))
		d.waitEvent(locker.EvPickupCompleted, map[string]any{"order_id": rep.Order.ID, "compartments": []string{"A01"}, "via": "scan"})
		d.waitEvent(locker.EvDoorOpened, map[string]any{"compartment": "A01", "commanded": true})
		if cp := d.compartment("A01"); !cp.DoorOpen {
			t.Fatalf("A01 after pickup: %+v", cp)
		}
		d.sim("close", "A01")
		d.waitEvent(locker.EvDoorClosed, map[string]any{"compartment": "A01", "commanded": true})
		if !strings.Contains(d.logs(), rep.Order.ID) || strings.Contains(d.logs(), rep.Code) {
			t.Fatal("log must name the order and never the code")
		}
	})

	step(t, "five wrong codes lock the scanner out", func() {
		rep := d.addOrder(httpapi.AddOrderRequest{Compartment: "A02"})
		for _, wrong := range []string{"WRONG1", "WRONG2", "WRONG3", "AB", "WRONG5"} {
			front.Write([]byte(wrong + "\r"))
		}
		d.waitEvent(locker.EvLockoutStarted, map[string]any{"scanner": "front"})
		front.Write([]byte(rep.Code + "\r"))
		d.waitEvent(locker.EvPickupDenied, map[string]any{"scanner": "front", "reason": "locked_out"})
		if cp := d.compartment("A02"); cp.DoorOpen || cp.State != locker.CompLoaded {
			t.Fatalf("A02 opened during lockout: %+v", cp)
		}
		for _, wrong := range []string{"WRONG1", "WRONG2", "WRONG3", "WRONG5"} {
			if strings.Contains(d.logs(), wrong) {
				t.Fatalf("log echoes a refused code")
			}
		}
	})

	step(t, "expired order refused", func() {
		rep := d.addOrder(httpapi.AddOrderRequest{Compartment: "A03", TTL: "300ms"})
		d.waitEvent(locker.EvOrderExpired, map[string]any{"order_id": rep.Order.ID})
		if res := d.scan("keypad", rep.Code); res.Outcome != locker.OutcomeDenied || res.Reason != locker.DenyExpired {
			t.Fatalf("expired code: %+v", res)
		}
		if d.compartment("A03").DoorOpen {
			t.Fatal("expired order's door opened")
		}
	})

	step(t, "staff load", func() {
		rep := d.addOrder(httpapi.AddOrderRequest{ID: "ORD-LOAD-1", Size: "M", Assigned: true,
			Items: []locker.Item{{Barcode: "31234567", Title: "Fortress Besieged"}}})
		if res := d.scan("keypad", rep.Code); res.Reason != locker.DenyNotReady {
			t.Fatalf("code before loading: %+v", res)
		}
		if res := d.scan("keypad", staffBadge); res.Outcome != locker.OutcomeStaffOn {
			t.Fatalf("badge: %+v", res)
		}
		res := d.scan("keypad", "31234567")
		if res.Outcome != locker.OutcomeLoading || res.Compartments[0] != "B01" {
			t.Fatalf("load: %+v", res)
		}
		d.sim("close", "B01")
		d.waitEvent(locker.EvOrderLoaded, map[string]any{"order_id": "ORD-LOAD-1", "compartment": "B01"})
		d.scan("keypad", staffBadge) // ends the session
		if res := d.scan("keypad", rep.Code); res.Outcome != locker.OutcomeOpened || res.Compartments[0] != "B01" {
			t.Fatalf("pickup of loaded order: %+v", res)
		}
		d.sim("close", "B01")
	})

	step(t, "returns", func() {
		returns.Write([]byte("9787532736744\r"))
		d.waitEvent(locker.EvItemReturned, map[string]any{"barcode": "9787532736744", "scanner": "returns"})
		d.sim("close", locker.ReturnSlotID)
		returns.Write([]byte("not-a-book\r"))
		d.waitEvent(locker.EvReturnRefused, map[string]any{"reason": "pattern"})
		d.sim("bin-full", "")
		d.waitEvent(locker.EvReturnBinFull, map[string]any{"source": "sensor"})
		returns.Write([]byte("9787532736751\r"))
		d.waitEvent(locker.EvReturnRefused, map[string]any{"reason": "bin_full"})
		if n := d.count(locker.EvItemReturned, nil); n != 1 {
			t.Fatalf("%d items returned, want 1", n)
		}
		d.sim("bin-empty", "")
	})

	step(t, "jam", func() {
		rep := d.addOrder(httpapi.AddOrderRequest{Compartment: "C01", Size: "L"})
		d.sim("jam", "C01")
		if res := d.scan("keypad", rep.Code); res.Outcome != locker.OutcomeJammed {
			t.Fatalf("jammed door: %+v", res)
		}
		d.waitEvent(locker.EvDoorJammed, map[string]any{"compartment": "C01"})
		var orders []httpapi.OrderView
		d.must("GET", "/v1/orders", nil, &orders)
		for _, o := range orders {
			if o.ID == rep.Order.ID && o.State != locker.OrderReady {
				t.Fatalf("order after jam: %s", o.State)
			}
		}
	})

	step(t, "forced door", func() {
		d.sim("open", "B02")
		d.waitEvent(locker.EvDoorForced, map[string]any{"compartment": "B02"})
		d.waitEvent(locker.EvDoorOpened, map[string]any{"compartment": "B02", "commanded": false})
	})

	step(t, "scanner unplugged and back", func() {
		front.Close()
		os.Remove(c.Front)
		d.waitEvent(locker.EvScannerDisconnected, map[string]any{"scanner": "front"})
		front = serialtest.Plug(t, c.Front)
		d.waitCount(locker.EvScannerConnected, map[string]any{"scanner": "front"}, 2)
		// Once the lockout from the earlier step is over, a code read by
		// the new device opens its door.
		lock := d.waitEvent(locker.EvLockoutStarted, map[string]any{"scanner": "front"})
		until, err := time.Parse(time.RFC3339Nano, lock.Fields()["until"].(string))
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Until(until) + 100*time.Millisecond) // the policy's own timeout
		rep := d.addOrder(httpapi.AddOrderRequest{})
		front.Write([]byte(rep.Code + "\r"))
		d.waitEvent(locker.EvPickupCompleted, map[string]any{"order_id": rep.Order.ID, "via": "scan"})
	})

	d.stop()
	if !strings.Contains(d.logs(), `"msg":"lockerd stopped"`) {
		t.Fatalf("no clean stop logged:\n%s", d.logs())
	}
}

func TestSecondDaemonOnSameStoreFailsFast(t *testing.T) {
	c := newCabinet(t, "1s")
	start(t, c.Config)
	began := time.Now()
	out, err := exec.Command(lockerdBin, "-config", c.Config).CombinedOutput()
	if err == nil {
		t.Fatal("second lockerd started on the same store")
	}
	if !strings.Contains(string(out), c.Store) || !strings.Contains(string(out), "another") {
		t.Fatalf("message does not name the store file:\n%s", out)
	}
	if time.Since(began) > 10*time.Second {
		t.Fatal("second lockerd took too long to fail")
	}
	// A store in use is not damaged: the second lockerd leaves it alone.
	if _, err := os.Stat(c.Store); err != nil {
		t.Fatalf("the live store is gone after a second lockerd tried it: %v", err)
	}
	if aside, ok := boltstore.PendingDamaged(c.Store); ok {
		t.Fatalf("the live store was moved aside to %s", aside)
	}
}

func TestBadConfigExitsWithProblems(t *testing.T) {
	c := newCabinet(t, "1s")
	raw, _ := os.ReadFile(c.Config)
	bad := strings.Replace(string(raw), "lock_pulse: 50ms", "lock_pulse: 5s\n  relay: 1", 1)
	os.WriteFile(c.Config, []byte(bad), 0o600)
	out, err := exec.Command(lockerdBin, "-config", c.Config).CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 2 {
		t.Fatalf("exit: %v\n%s", err, out)
	}
	for _, want := range []string{c.Config + ":10: hardware.lock_pulse:", c.Config + ":11: hardware.relay: unknown key"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// The gpio backend on a machine without GPIO chips (this test machine)
// stops at start-up saying why, before serving anything.
func TestGPIOBackendWithoutChipsSaysWhy(t *testing.T) {
	if _, err := os.Stat("/dev/gpiochip0"); err == nil {
		t.Fatal("this test expects a machine without /dev/gpiochip0 (the CI container)")
	}
	c := newCabinet(t, "1s")
	raw, _ := os.ReadFile(c.Config)
	os.WriteFile(c.Config, []byte(strings.Replace(string(raw), "backend: sim", "backend: gpio", 1)), 0o600)
	out, err := exec.Command(lockerdBin, "-config", c.Config).CombinedOutput()
	if _, ok := err.(*exec.ExitError); !ok {
		t.Fatalf("exit: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "no GPIO chips found") {
		t.Errorf("output does not say why:\n%s", out)
	}
}
