package locker_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/locker/lockertest"
)

// BenchmarkCodeVerify is the lookup a scan costs (normalise, one HMAC,
// one index read) with 10k, 100k and 1M orders in the store, against the
// HMAC alone as the baseline of the same run: flat in store size shows the
// index, not a scan over orders.
func BenchmarkCodeVerify(b *testing.B) {
	b.Run("baseline=normalise+hmac", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			code, _ := locker.NormalizeCode("]Q1b0001234q")
			_ = lockertest.Key.Hash(code)
		}
	})
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("orders=%d", n), func(b *testing.B) {
			c := lockertest.NewCabinet(b, lockertest.Settings())
			sample, err := lockertest.FillOrders(c.Store, lockertest.Key, n, max(n/1000, 1), c.Clock.Now().Add(time.Hour))
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := c.L.FindOrderByCode(sample[i%len(sample)]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSnapshotApply swaps in a whole collection sent as a snapshot
// in parts of 500: 12,000 orders (a library's locker collection) and
// 100,000. It reports the write transactions committed (bbolt syncs twice
// per commit) and the store file's size.
func BenchmarkSnapshotApply(b *testing.B) {
	for _, n := range []int{12_000, 100_000} {
		b.Run(fmt.Sprintf("orders=%d", n), func(b *testing.B) {
			exp := time.Now().Add(72 * time.Hour)
			orders := make([]locker.Order, n)
			for i := range orders {
				orders[i] = locker.Order{ID: fmt.Sprintf("SNAP-%07d", i), Rev: 1, State: locker.OrderAssigned, Size: locker.SizeS,
					Items:    []locker.Item{{Barcode: fmt.Sprintf("978%010d", i), Title: "Snapshot order"}},
					CodeHash: lockertest.Key.Hash(fmt.Sprintf("S%07dZ", i)), ExpiresAt: exp}
			}
			const part = 500
			parts := (n + part - 1) / part
			var size int64
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				c := lockertest.NewCabinet(b, lockertest.Settings())
				b.StartTimer()
				var set [][]locker.Order
				for p := 1; p <= parts; p++ {
					set = append(set, orders[(p-1)*part:min(p*part, n)])
				}
				res := replace(b, c, uint64(i+1), set...)
				if res.AppliedCount != n {
					b.Fatalf("snapshot not applied: %d of %d", res.AppliedCount, n)
				}
				b.StopTimer()
				info, err := os.Stat(c.Store.Path())
				if err != nil {
					b.Fatal(err)
				}
				size = info.Size()
				b.StartTimer()
			}
			b.ReportMetric(float64(parts), "commits/op")
			b.ReportMetric(float64(size)/(1<<20), "store-MiB")
		})
	}
}

// BenchmarkPickupDuringSnapshot measures a reader's pickup (scan to
// answer, door opened) while a 200,000-order snapshot is staged and
// swapped in, beside the same pickups without one in the same run: the
// apply runs in small transactions, so a pickup never waits long for the
// store's writer. It also reports the Go heap's peak during the apply.
func BenchmarkPickupDuringSnapshot(b *testing.B) {
	const n, part = 200_000, 500
	c := lockertest.NewCabinet(b, lockertest.Settings())
	exp := c.Clock.Now().Add(72 * time.Hour)
	// Parts are made as they are sent, as the link receives them: the
	// heap measured is the locker's, not a 200k-order slice of the test's.
	partOrders := func(p int) []locker.Order {
		orders := make([]locker.Order, part)
		for j := range orders {
			i := (p-1)*part + j
			orders[j] = locker.Order{ID: fmt.Sprintf("SNAP-%07d", i), Rev: 1, State: locker.OrderAssigned, Size: locker.SizeS,
				Items:    []locker.Item{{Barcode: fmt.Sprintf("978%010d", i), Title: "Snapshot order"}},
				CodeHash: lockertest.Key.Hash(fmt.Sprintf("S%07dZ", i)), ExpiresAt: exp}
		}
		return orders
	}
	pickup := func() time.Duration {
		_, code, err := c.L.CreateOrder(locker.NewOrder{Compartment: "S1", Size: locker.SizeS, TTL: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		res, err := c.L.Scan(context.Background(), "front", code)
		d := time.Since(t0)
		if err != nil || res.Outcome != locker.OutcomeOpened {
			b.Fatalf("pickup: %+v %v", res, err)
		}
		if err := c.HW.CloseDoor("S1"); err != nil {
			b.Fatal(err)
		}
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
			var free bool
			c.Store.View(func(tx locker.Tx) error {
				cp, err := tx.Compartment("S1")
				free = err == nil && cp.State == locker.CompFree
				return err
			})
			if free {
				break
			}
			if time.Now().After(deadline) {
				b.Fatal("S1 not free after its door closed")
			}
		}
		return d
	}
	p99 := func(ds []time.Duration) time.Duration {
		slices.Sort(ds)
		return ds[len(ds)*99/100]
	}
	var base []time.Duration
	for i := 0; i < 200; i++ {
		base = append(base, pickup())
	}
	b.ResetTimer()
	var peakHeap, peakAnon uint64
	for i := 0; i < b.N; i++ {
		done := make(chan error, 1)
		go func() {
			parts := n / part
			set := func(yield func([]locker.Order, error) bool) {
				for p := 1; p <= parts; p++ {
					if !yield(partOrders(p), nil) {
						return
					}
				}
			}
			_, err := c.L.ReplaceOrders(uint64(1000+i), set)
			done <- err
		}()
		var during []time.Duration
		var ms runtime.MemStats
	loop:
		for {
			select {
			case err := <-done:
				if err != nil {
					b.Fatal(err)
				}
				break loop
			default:
				during = append(during, pickup())
				runtime.ReadMemStats(&ms)
				peakHeap = max(peakHeap, ms.HeapInuse)
				peakAnon = max(peakAnon, rssAnonKB())
			}
		}
		b.StopTimer()
		if len(during) < 2 {
			b.Fatalf("only %d pickups during the snapshot", len(during))
		}
		b.ReportMetric(float64(p99(base))/float64(time.Millisecond), "p99-base-ms")
		b.ReportMetric(float64(p99(during))/float64(time.Millisecond), "p99-during-ms")
		b.ReportMetric(float64(len(during)), "pickups-during")
		b.ReportMetric(float64(peakHeap)/(1<<20), "peak-heap-MiB")
		b.ReportMetric(float64(peakAnon)/1024, "peak-rss-anon-MiB")
		b.StartTimer()
	}
}

// rssAnonKB is this process's anonymous resident memory (the heap and
// stacks, not the store file's pages mapped in), in KB.
func rssAnonKB() uint64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "RssAnon:"); ok {
			n, _ := strconv.ParseUint(strings.Fields(v)[0], 10, 64)
			return n
		}
	}
	return 0
}
