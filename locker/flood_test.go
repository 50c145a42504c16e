package locker_test

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/locker/lockertest"
)

// TestFloodStaysBounded floods three input devices at scanner speed (10
// scans a second each) for an hour with the central library away (nothing
// is acked): the return slot with the bin full, the front scanner with an
// expired order's code, the keypad with garbage. Refusals are aggregated
// and count towards each device's lockout, so the outbox gets a bounded
// number of events and the store file a bounded number of bytes.
// (Before: 24,654 return.refused events in 15 s, 256 KB to 8 MB.)
func TestFloodStaysBounded(t *testing.T) {
	c := lockertest.NewCabinet(t, lockertest.Settings())
	_, code := newOrder(t, c, "S1") // ready, expires in an hour
	c.Clock.Advance(2 * time.Hour)
	c.L.Tick()
	c.WaitEvent(t, locker.EvOrderExpired, nil)
	if err := c.HW.SetBinFull(true); err != nil {
		t.Fatal(err)
	}
	c.WaitEvent(t, locker.EvReturnBinFull, nil)
	before := len(c.Events(t))
	info, _ := os.Stat(c.Store.Path())
	sizeBefore := info.Size()

	const rate = 10
	hours := lockertest.EnvInt("LOCKERD_FLOOD_HOURS", 1) // make torture: 24
	refused := map[string]int{}
	for elapsed := time.Duration(0); elapsed < time.Duration(hours)*time.Hour; elapsed += time.Second / rate {
		for _, s := range []struct{ dev, text string }{{"returns", "9787020002207"}, {"front", code}, {"keypad", fmt.Sprintf("G%07d", int(elapsed/time.Millisecond))}} {
			res := scan(t, c, s.dev, s.text)
			if res.Outcome == locker.OutcomeOpened || res.Outcome == locker.OutcomeReturned {
				t.Fatalf("%s opened something: %+v", s.dev, res)
			}
			refused[s.dev+" "+res.Reason]++
		}
		c.Clock.Advance(time.Second / rate)
		if elapsed%time.Second == 0 {
			c.L.Tick()
		}
	}
	c.Clock.Advance(2 * locker.RefusalQuiet)
	c.L.Tick() // the bursts end: their counts are recorded
	evs := c.Events(t)[before:]
	bytes := 0
	kinds := map[string]int{}
	counted := 0
	for _, e := range evs {
		f := e.Fields()
		bytes += len(e.Data) + len(e.Type) + 40
		kinds[string(e.Type)+" "+fmt.Sprint(f["reason"])]++
		if n, ok := f["count"].(float64); ok {
			counted += int(n)
		} else if e.Type == locker.EvPickupDenied || e.Type == locker.EvReturnRefused {
			counted++
		}
	}
	info, _ = os.Stat(c.Store.Path())
	scans := 3 * rate * 3600 * hours
	t.Logf("%d h at %d scans/s on 3 devices (%d scans): %d events (%v), about %d bytes; store file %d → %d bytes; refusals %v",
		hours, rate, scans, len(evs), kinds, bytes, sizeBefore, info.Size(), refused)
	if len(evs) > 150*hours {
		t.Fatalf("%d events for %d h of flooding (bound %d)", len(evs), hours, 150*hours)
	}
	if grown := info.Size() - sizeBefore; grown > int64(256<<10*hours) {
		t.Fatalf("the store grew by %d bytes in %d h of flooding (bound %d KB)", grown, hours, 256*hours)
	}
	// Every refusal is accounted for in the events' counts.
	if counted != scans {
		t.Fatalf("the events count %d refusals, %d were made", counted, scans)
	}
}
