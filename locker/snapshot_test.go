package locker_test

import (
	"errors"
	"fmt"
	"iter"
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

// replace swaps in the complete order set parts (a snapshot at rev).
func replace(t testing.TB, c *lockertest.Cabinet, rev uint64, parts ...[]locker.Order) locker.OrdersResult {
	t.Helper()
	res, err := c.L.ReplaceOrders(rev, partsOf(parts...))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func partsOf(parts ...[]locker.Order) iter.Seq2[[]locker.Order, error] {
	return func(yield func([]locker.Order, error) bool) {
		for _, p := range parts {
			if !yield(p, nil) {
				return
			}
		}
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
	replace(t, c, 8, snapOrders(c, "S", 2, 8))
	if ids := orderIDs(t, c); !ids["N-0"] || !ids["S-0"] || !ids["S-1"] {
		t.Fatalf("orders %v: the rev-9 order must survive the rev-8 snapshot", ids)
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
	res := replace(t, c, 6, []locker.Order{a, b})
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

// A snapshot's ack lists at most MaxListedIDs ids, with exact counts.
func TestSnapshotAcksAreSummarised(t *testing.T) {
	c := lockertest.NewCabinet(t, lockertest.Settings())
	big := snapOrders(c, "BIG", 1000, 3)
	res := replace(t, c, 3, big[:500], big[500:])
	if res.AppliedCount != 1000 || len(res.Applied) != locker.MaxListedIDs {
		t.Fatalf("ack: %d applied, %d listed; want 1000 and %d", res.AppliedCount, len(res.Applied), locker.MaxListedIDs)
	}
	if n := len(orderIDs(t, c)); n != 1000 {
		t.Fatalf("%d orders after the snapshot", n)
	}
}

// A set older than the last one applied changes nothing; an apply that
// stopped half-way (its parts could not be read: a crash, a staged part
// gone) leaves what it applied, and the same set applied again gives
// exactly the set — idempotent, with no order reported twice.
func TestReplaceOrdersOlderAndInterrupted(t *testing.T) {
	c := lockertest.NewCabinet(t, lockertest.Settings())
	replace(t, c, 5, snapOrders(c, "A", 4, 5))
	res := replace(t, c, 4, snapOrders(c, "OLD", 4, 4))
	if len(res.Rejected) != 1 || !strings.Contains(res.Rejected[0].Reason, "older") {
		t.Fatalf("older set: %+v", res)
	}
	if ids := orderIDs(t, c); len(ids) != 4 || !ids["A-0"] {
		t.Fatalf("after an older set: %v", ids)
	}
	b := snapOrders(c, "B", 6, 7)
	broken := func(yield func([]locker.Order, error) bool) {
		if yield(b[:3], nil) {
			yield(nil, errors.New("part 2 gone"))
		}
	}
	if _, err := c.L.ReplaceOrders(7, broken); err == nil {
		t.Fatal("an interrupted set reported no error")
	}
	if ids := orderIDs(t, c); !ids["A-0"] || !ids["B-0"] || ids["B-5"] {
		t.Fatalf("interrupted: nothing may be dropped before the set is whole: %v", ids)
	}
	res = replace(t, c, 7, b[:3], b[3:])
	if ids := orderIDs(t, c); len(ids) != 6 || ids["A-0"] || !ids["B-5"] {
		t.Fatalf("after the set again: %v", ids)
	}
	if len(res.Rejected) != 0 || res.AppliedCount != 3 || res.StaleCount != 3 {
		t.Fatalf("the set again: %d applied, %d stale, rejected %v", res.AppliedCount, res.StaleCount, res.Rejected)
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
	var parts [][]locker.Order
	for p := 1; p <= n/part; p++ {
		parts = append(parts, orders[(p-1)*part:p*part])
	}
	applied := make(chan error, 1)
	go func() {
		_, err := c.L.ReplaceOrders(10, partsOf(parts...))
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
