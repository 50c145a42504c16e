package locker_test

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/locker/lockertest"
)

// yearOfOrders runs a simulated year (or days of it): each day perDay orders end here
// (picked up, each with its pickup.completed fact), the central library
// acknowledges the day's events, and the locker ticks through the day.
// It returns the store file's size at the end of each month.
func yearOfOrders(t *testing.T, c *lockertest.Cabinet, days, perDay int) []int64 {
	t.Helper()
	var sizes []int64
	n := 0
	for day := 1; day <= days; day++ {
		now := c.Clock.Now()
		var last uint64
		err := c.Store.Update(func(tx locker.Tx) error {
			for i := 0; i < perDay; i++ {
				n++
				d := locker.PickupCompleted{OrderID: fmt.Sprintf("Y%06d", n), Compartments: []string{"S1"}, Via: "scan"}
				e, err := tx.Record(locker.Event{Type: d.EventType(), TS: now, Boot: 1, Data: locker.DataOf(d)})
				if err != nil {
					return err
				}
				last = e.Seq
				o := locker.Order{ID: fmt.Sprintf("Y%06d", n), Rev: uint64(n), State: locker.OrderPickedUp, Size: locker.SizeS,
					Items:    []locker.Item{{Barcode: fmt.Sprintf("978%010d", n), Title: "A book of the year's loans"}},
					CodeHash: lockertest.Key.Hash(fmt.Sprintf("Y%07d", n)), ExpiresAt: now.Add(72 * time.Hour),
					Loaded: true, Compartments: []string{"S1"}, LoadedAt: now.Add(-time.Hour), PickedUpAt: now, FactSeq: e.Seq, EndedAt: now}
				if err := tx.PutOrder(o); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.L.AckEvents(last); err != nil {
			t.Fatal(err)
		}
		for h := 0; h < 24; h++ { // the run loop's ticks, an hour apart
			c.Clock.Advance(time.Hour)
			c.L.Tick()
		}
		if day%30 == 0 || day == days {
			info, err := os.Stat(c.Store.Path())
			if err != nil {
				t.Fatal(err)
			}
			sizes = append(sizes, info.Size())
		}
	}
	return sizes
}

// TestStoreStopsGrowing: a year of 30,000 orders ending at one locker
// (about the seed service's volume) with a 30-day retention: ended orders
// are purged once their facts are acknowledged, and the store file stops
// growing after the first months.
func TestStoreStopsGrowing(t *testing.T) {
	set := lockertest.Settings()
	set.Retention = 30 * 24 * time.Hour
	c := lockertest.NewCabinet(t, set)
	sizes := yearOfOrders(t, c, 365, 83)
	t.Logf("store file at the end of each month: %v", sizes)
	var live int
	c.Store.View(func(tx locker.Tx) error {
		return tx.ForEachOrder(func(locker.Order) error { live++; return nil })
	})
	if max := 83 * 31; live > max {
		t.Fatalf("%d orders kept, want at most retention's %d", live, max)
	}
	// From the fourth month on, the file does not grow: purged pages are
	// reused.
	for i := 3; i < len(sizes); i++ {
		if sizes[i] > sizes[2]+sizes[2]/10 {
			t.Fatalf("the store grew from %d to %d bytes after month %d", sizes[2], sizes[i], i+1)
		}
	}
	// Without retention it would not: four months already outgrow it.
	set.Retention = 0
	keep := lockertest.NewCabinet(t, set)
	all := yearOfOrders(t, keep, 120, 83)
	t.Logf("without retention, four months: %v", all)
	if all[len(all)-1] < 2*sizes[len(sizes)-1] {
		t.Fatalf("without retention the store ends at %d bytes, with it %d: the test shows nothing", all[len(all)-1], sizes[len(sizes)-1])
	}
}

// An order is purged only once the central library has its last fact.
func TestPurgeWaitsForTheAck(t *testing.T) {
	set := lockertest.Settings()
	set.Retention = 24 * time.Hour
	c := lockertest.NewCabinet(t, set)
	o, code := newOrder(t, c, "S1")
	scan(t, c, "front", code)
	c.WaitEvent(t, locker.EvPickupCompleted, nil)
	closeDoor(t, c, "S1")
	c.Clock.Advance(48 * time.Hour)
	c.L.Tick()
	if got := order(t, c, o.ID); got.State != locker.OrderPickedUp {
		t.Fatalf("order %+v", got)
	}
	last := c.Events(t)[len(c.Events(t))-1].Seq
	if _, err := c.L.AckEvents(last); err != nil {
		t.Fatal(err)
	}
	c.Clock.Advance(locker.PurgeEvery)
	c.L.Tick()
	if err := c.Store.View(func(tx locker.Tx) error { _, err := tx.Order(o.ID); return err }); err == nil {
		t.Fatal("an acknowledged ended order past retention was kept")
	}
	// Its code is free again, the compartment too.
	if res := scan(t, c, "front", code); res.Reason != locker.DenyUnknown {
		t.Fatalf("the purged order's code: %+v", res)
	}
}
