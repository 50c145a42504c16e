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
