package hub_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/lockerd/lockerd/sync/hub"
	"github.com/lockerd/lockerd/sync/protocol"
)

// BenchmarkCirculation measures what the bridge adds to a SIP2 round
// trip. Baseline: one 17 Item Information on the session (the ILS's own
// cost, over loopback). Checkout: a pickup event stored, its checkout
// queued, marked sending, sent and finished (three store transactions,
// each synced to disk, and one round trip). Replay: 100 checkouts queued
// (a locker back from an outage), then the queue drained, per checkout.
// BENCHMARKS.md §10 reports them as ratios to the baseline.
func BenchmarkCirculation(b *testing.B) {
	br := newBridge(b, nil)
	ctx := context.Background()
	b.Run("baseline=item-information", func(b *testing.B) {
		for b.Loop() {
			if _, err := br.s.ItemInformation(ctx, "B1"); err != nil {
				b.Fatal(err)
			}
		}
	})
	n := 0
	place := func() string {
		n++
		id := fmt.Sprintf("O%d", n)
		if _, err := br.h.CreateOrder(hub.NewOrder{Locker: "nb-1", ID: id, Patron: "P1", Items: []protocol.Item{{Barcode: "B2"}}}); err != nil {
			b.Fatal(err)
		}
		return id
	}
	b.Run("checkout", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			id := place()
			b.StartTimer()
			br.event("pickup.completed", false, time.Now().UTC(), protocol.PickupCompleted{OrderID: id, Via: "code"})
			br.work()
		}
	})
	b.Run("replay-100", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			ids := make([]string, 100)
			for i := range ids {
				ids[i] = place()
			}
			for _, id := range ids {
				br.event("pickup.completed", true, time.Now().UTC(), protocol.PickupCompleted{OrderID: id, Via: "code"})
			}
			b.StartTimer()
			br.work()
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*100), "ns/checkout")
	})
}
