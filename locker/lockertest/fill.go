package lockertest

import (
	"fmt"
	"time"

	"github.com/lockerd/lockerd/locker"
)

// FillOrders writes n ready orders (in batches, for speed) into store and
// returns the plaintext codes of every step'th order, for lookups.
func FillOrders(store locker.Store, key locker.CodeKey, n, step int, expires time.Time) ([]string, error) {
	var sample []string
	const batch = 5000
	for start := 0; start < n; start += batch {
		err := store.Update(func(tx locker.Tx) error {
			for i := start; i < min(start+batch, n); i++ {
				code := fmt.Sprintf("B%07dQ", i) // distinct, valid codes
				o := locker.Order{ID: fmt.Sprintf("BULK-%07d", i), Rev: 1, State: locker.OrderReady, Size: locker.SizeS,
					Items:    []locker.Item{{Barcode: fmt.Sprintf("978%010d", i), Title: "Bulk order"}},
					CodeHash: key.Hash(code), ExpiresAt: expires, Loaded: true, Compartments: []string{"S1"}}
				if err := tx.PutOrder(o); err != nil {
					return err
				}
				if step > 0 && i%step == 0 {
					sample = append(sample, code)
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return sample, nil
}
