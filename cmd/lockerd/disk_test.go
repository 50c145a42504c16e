package main

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/lockerd/lockerd/drivers/sim"
	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/locker/httpapi"
	"github.com/lockerd/lockerd/locker/kiosk"
)

func (d *daemon) pulses(door string) int {
	d.t.Helper()
	var st []sim.DoorState
	d.must("GET", "/v1/sim", nil, &st)
	for _, s := range st {
		if s.ID == door {
			return s.Pulses
		}
	}
	d.t.Fatalf("no door %s", door)
	return 0
}

// TestDiskFull runs lockerd under a file-size limit (RLIMIT_FSIZE, set
// with prlimit) and fills its store: the low-space alarm is raised while
// there is room, then no door opens whose record cannot be written and the
// kiosk says out of service; when space returns the locker recovers by
// itself, and the store opens intact after a restart.
func TestDiskFull(t *testing.T) {
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Fatal("prlimit (util-linux) is needed to limit lockerd's file size")
	}
	c := newCabinet(t, "20ms", func(c *cabinet) { c.MinFree = "160KB" })
	d := startUnder(t, c.Config, prlimit, "--fsize=524288:unlimited") // soft limit only: it can be raised again
	rep := d.addOrder(httpapi.AddOrderRequest{Compartment: "A01"})

	// Fill the store with orders for staff to load (refused returns no
	// longer fill it: they are aggregated) until writes keep failing (a
	// failed write frees what it took, so a few small ones may still fit
	// after the first failure).
	failing := 0
	title := strings.Repeat("A long title to fill the store. ", 8)
	for i := 0; i < 40000 && failing < 20; i++ {
		req := httpapi.AddOrderRequest{Size: "S", Assigned: true, Items: []locker.Item{{Barcode: fmt.Sprintf("978%010d", i), Title: title}}}
		if err := d.call("POST", "/v1/orders", req, nil); err != nil && !strings.Contains(err.Error(), "store") &&
			!strings.Contains(err.Error(), "room") && !strings.Contains(err.Error(), "file too large") {
			t.Fatal(err)
		}
		var st kiosk.State
		d.must("GET", "/kiosk/state", nil, &st)
		if !st.Serving && st.Reason == "store" {
			failing++
		} else {
			failing = 0
		}
	}
	if failing < 20 {
		t.Fatal("the store never filled up")
	}
	low := d.waitEvent(locker.EvStoreLowSpace, nil)
	t.Logf("low-space alarm at headroom %v bytes (min %v)", low.Fields()["headroom_bytes"], low.Fields()["min_free_bytes"])

	// Fail closed: neither a pickup nor a return opens anything.
	before := d.pulses("A01") + d.pulses(locker.ReturnSlotID)
	if res := d.scan("front", rep.Code); res.Outcome != locker.OutcomeError {
		t.Fatalf("pickup with a full store: %+v", res)
	}
	if res := d.scan("returns", "9787020002207"); res.Outcome != locker.OutcomeError {
		t.Fatalf("return with a full store: %+v", res)
	}
	if after := d.pulses("A01") + d.pulses(locker.ReturnSlotID); after != before {
		t.Fatalf("a lock was pulsed with a full store (%d → %d)", before, after)
	}

	// Space returns: the locker recovers by itself.
	pid := strconv.Itoa(d.cmd.Process.Pid)
	if out, err := exec.Command(prlimit, "--pid", pid, "--fsize=unlimited").CombinedOutput(); err != nil {
		t.Fatalf("prlimit: %v %s", err, out)
	}
	if res := d.scan("returns", "9787020002207"); res.Outcome != locker.OutcomeReturned {
		t.Fatalf("return after space came back: %+v", res)
	}
	var st kiosk.State
	d.must("GET", "/kiosk/state", nil, &st)
	if !st.Serving {
		t.Fatalf("kiosk after recovery: %+v", st)
	}
	if res := d.scan("front", rep.Code); res.Outcome != locker.OutcomeOpened {
		t.Fatalf("pickup after recovery: %+v", res)
	}

	// The store is intact: it opens after a power cut, seq without gaps.
	d.kill()
	d = start(t, c.Config)
	evs := d.events(0)
	for i, e := range evs {
		if e.Seq != uint64(i+1) {
			t.Fatalf("seq %d at %d after the disk filled up", e.Seq, i)
		}
	}
	t.Logf("%d events in the store after filling it, recovering and a restart", len(evs))
}
