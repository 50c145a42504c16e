package locker_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/locker/lockertest"
)

func snapOrders(c *lockertest.Cabinet, prefix string, n int, rev uint64) []locker.Order {
	out := make([]locker.Order, n)
	for i := range out {
		out[i] = locker.Order{ID: fmt.Sprintf("%s-%d", prefix, i), Rev: rev, State: locker.OrderAssigned, Size: locker.SizeS,
			CodeHash: lockertest.Key.Hash(fmt.Sprintf("%sCODE%d", prefix, i)), ExpiresAt: c.Clock.Now().Add(time.Hour)}
	}
	return out
}

func orderIDs(t *testing.T, c *lockertest.Cabinet) map[string]bool {
	t.Helper()
	os, err := c.L.Orders()
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, o := range os {
		ids[o.ID] = true
	}
	return ids
}

// Parts of two snapshots interleaved, the older one's delayed: the newer
// snapshot is staged whole and applied, the older one's parts change
// nothing, before or after.
func TestSnapshotsInterleaved(t *testing.T) {
	type part struct {
		snap string
		rev  uint64
		n    int // part number (of 2)
	}
	tests := []struct {
		name  string
		parts []part
		want  string // the snapshot whose orders are there at the end
	}{
		{"old part inside new", []part{{"B", 7, 1}, {"A", 5, 2}, {"B", 7, 2}}, "B"},
		{"old snapshot started first", []part{{"A", 5, 1}, {"B", 7, 1}, {"A", 5, 2}, {"B", 7, 2}}, "B"},
		{"old snapshot completes after new", []part{{"B", 7, 1}, {"B", 7, 2}, {"A", 5, 1}, {"A", 5, 2}}, "B"},
		{"newer replaces older in progress", []part{{"A", 5, 1}, {"B", 7, 2}, {"B", 7, 1}}, "B"},
		{"in order", []part{{"A", 5, 1}, {"A", 5, 2}, {"B", 7, 1}, {"B", 7, 2}}, "B"},
		{"only the old one", []part{{"A", 5, 2}, {"A", 5, 1}}, "A"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := lockertest.NewCabinet(t, lockertest.Settings())
			orders := map[string][]locker.Order{"A": snapOrders(c, "A", 4, 5), "B": snapOrders(c, "B", 4, 7)}
			for _, p := range tt.parts {
				half := orders[p.snap][(p.n-1)*2 : p.n*2]
				res, err := c.L.StageSnapshot("snap-"+p.snap, p.n, 2, p.rev, half)
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("%s part %d: pending %v applied %d rejected %v", p.snap, p.n, res.Pending, len(res.Applied), res.Rejected)
			}
			ids := orderIDs(t, c)
			if len(ids) != 4 {
				t.Fatalf("orders %v, want the 4 of snapshot %s", ids, tt.want)
			}
			for id := range ids {
				if !strings.HasPrefix(id, tt.want+"-") {
					t.Fatalf("orders %v, want those of snapshot %s", ids, tt.want)
				}
			}
		})
	}
}

// An order changed after a snapshot was taken (a higher rev than the
// snapshot's) is not dropped by it.
func TestSnapshotKeepsNewerOrders(t *testing.T) {
	c := lockertest.NewCabinet(t, lockertest.Settings())
	newer := snapOrders(c, "N", 1, 9)
	if err := c.L.ApplyOrder(newer[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := c.L.StageSnapshot("snap-old", 1, 1, 8, snapOrders(c, "S", 2, 8)); err != nil {
		t.Fatal(err)
	}
	if ids := orderIDs(t, c); !ids["N-0"] || !ids["S-0"] || !ids["S-1"] {
		t.Fatalf("orders %v: the rev-9 order must survive the rev-8 snapshot", ids)
	}
}

// The last part of a 100-part snapshot arrives after an upsert of a newer
// rev: the newer order stays, as it is.
func TestLateLastPartKeepsNewerOrder(t *testing.T) {
	c := lockertest.NewCabinet(t, lockertest.Settings())
	snap := snapOrders(c, "P", 100, 100)
	for p := 1; p <= 99; p++ {
		if _, err := c.L.StageSnapshot("snap-100", p, 100, 100, snap[p-1:p]); err != nil {
			t.Fatal(err)
		}
	}
	newer := snapOrders(c, "NEW", 1, 101)[0]
	if err := c.L.ApplyOrder(newer); err != nil {
		t.Fatal(err)
	}
	res, err := c.L.StageSnapshot("snap-100", 100, 100, 100, snap[99:])
	if err != nil || res.Pending {
		t.Fatalf("last part: %+v %v", res, err)
	}
	ids := orderIDs(t, c)
	if !ids["NEW-0"] || len(ids) != 101 {
		t.Fatalf("after the late last part: %d orders, NEW-0 kept %v", len(ids), ids["NEW-0"])
	}
	if res.Rev != 101 {
		t.Fatalf("orders_rev %d, want 101", res.Rev)
	}
}

// An order listed twice in a snapshot is applied once (the higher rev)
// and the other listing refused; a known order moved to a compartment
// that does not exist here is a conflict.
func TestSnapshotDuplicatesAndUnknownCompartments(t *testing.T) {
	c := lockertest.NewCabinet(t, lockertest.Settings())
	a := snapOrders(c, "D", 1, 5)[0]
	b := a
	b.Rev = 6
	res, err := c.L.StageSnapshot("snap-dup", 1, 1, 6, []locker.Order{a, b})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Applied) != 1 || len(res.Stale) != 0 || len(res.Rejected) != 1 {
		t.Fatalf("duplicate listing: %+v", res)
	}
	moved := b
	moved.Rev, moved.Assigned = 7, "Z99"
	ores, err := c.L.ApplyOrders([]locker.Order{moved})
	if err != nil {
		t.Fatal(err)
	}
	if len(ores.Conflicts) != 1 || !strings.Contains(ores.Conflicts[0].Reason, "does not exist") {
		t.Fatalf("moved to an unknown compartment: %+v", ores)
	}
}

// The staged parts of a snapshot that is never completed are dropped
// after Settings.SnapshotTimeout; a snapshot's ack lists at most
// MaxListedIDs ids, with exact counts.
func TestStagedPartsExpireAndAcksAreSummarised(t *testing.T) {
	set := lockertest.Settings()
	set.SnapshotTimeout = time.Hour
	c := lockertest.NewCabinet(t, set)
	big := snapOrders(c, "BIG", 1000, 3)
	if _, err := c.L.StageSnapshot("snap-lost", 1, 2, 3, big[:500]); err != nil {
		t.Fatal(err)
	}
	c.Clock.Advance(2 * time.Hour)
	c.L.Tick()
	// The other half arrives after the expiry: the snapshot is incomplete.
	res, err := c.L.StageSnapshot("snap-lost", 2, 2, 3, big[500:])
	if err != nil || !res.Pending {
		t.Fatalf("after the expiry the first part should be gone: %+v %v", res, err)
	}
	res, err = c.L.StageSnapshot("snap-lost", 1, 2, 3, big[:500])
	if err != nil || res.Pending {
		t.Fatalf("the snapshot sent again: %+v %v", res, err)
	}
	if res.AppliedCount != 1000 || len(res.Applied) != locker.MaxListedIDs {
		t.Fatalf("ack: %d applied, %d listed; want 1000 and %d", res.AppliedCount, len(res.Applied), locker.MaxListedIDs)
	}
	if n := len(orderIDs(t, c)); n != 1000 {
		t.Fatalf("%d orders after the snapshot", n)
	}
}

// A big snapshot is swapped in by small transactions: a pickup made while
// it is being applied is served in between, before the apply ends (with
// one transaction it waited for the whole apply: 38 s for 200,000 orders).
// The latency figures are BenchmarkPickupDuringSnapshot's.
func TestPickupDuringABigSnapshot(t *testing.T) {
	c := lockertest.NewCabinet(t, lockertest.Settings())
	_, code := newOrder(t, c, "S1")
	const n, part = 20_000, 500
	orders := snapOrders(c, "BIG", n, 10)
	for p := 1; p < n/part; p++ {
		if _, err := c.L.StageSnapshot("snap-big", p, n/part, 10, orders[(p-1)*part:p*part]); err != nil {
			t.Fatal(err)
		}
	}
	applied := make(chan error, 1)
	go func() {
		_, err := c.L.StageSnapshot("snap-big", n/part, n/part, 10, orders[n-part:])
		applied <- err
	}()
	// Wait until the apply has written its first orders.
	for {
		var seen bool
		c.Store.View(func(tx locker.Tx) error { seen, _ = tx.SnapSeen(orders[0].ID); return nil })
		if seen {
			break
		}
		select {
		case err := <-applied:
			t.Fatalf("the apply ended before the test saw it start (%v): make the snapshot bigger", err)
		default:
			time.Sleep(time.Millisecond)
		}
	}
	if res := scan(t, c, "front", code); res.Outcome != locker.OutcomeOpened {
		t.Fatalf("pickup during the apply: %+v", res)
	}
	select {
	case err := <-applied:
		t.Fatalf("the pickup was served only after the whole apply (%v)", err)
	default:
	}
	if err := <-applied; err != nil {
		t.Fatal(err)
	}
	// The order picked up meanwhile (not in the snapshot, its fact not
	// acknowledged) is kept; the snapshot's orders are there.
	if got := len(orderIDs(t, c)); got != n+1 {
		t.Fatalf("%d orders after the apply, want %d", got, n+1)
	}
}
