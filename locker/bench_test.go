package locker_test

import (
	"fmt"
	"os"
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
				for p := 1; p <= parts; p++ {
					res, err := c.L.StageSnapshot("bench", p, parts, uint64(i+1), orders[(p-1)*part:min(p*part, n)])
					if err != nil {
						b.Fatal(err)
					}
					if p == parts && (res.Pending || len(res.Applied) != n) {
						b.Fatalf("snapshot not applied: %d of %d", len(res.Applied), n)
					}
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
