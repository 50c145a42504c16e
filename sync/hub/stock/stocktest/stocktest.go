package stocktest

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockerd/lockerd/sync/hub/stock"
)

// Mem is an in-memory stock store.
type Mem struct {
	mu    sync.Mutex
	items map[string]stock.Item
}

// NewMem makes an empty store.
func NewMem() *Mem { return &Mem{items: map[string]stock.Item{}} }

func (m *Mem) View(fn func(stock.Tx) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return fn(&memTx{items: m.items})
}

func (m *Mem) Update(fn func(stock.Tx) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	tx := &memTx{items: m.items}
	if err := fn(tx); err != nil {
		return err
	}
	m.items = tx.items
	return nil
}

type memTx struct{ items map[string]stock.Item }

func (t *memTx) ReplaceStock(items []stock.Item) error {
	t.items = map[string]stock.Item{}
	for _, it := range items {
		t.items[it.Barcode] = it
	}
	return nil
}

func (t *memTx) StockItem(barcode string) (stock.Item, bool, error) {
	it, ok := t.items[barcode]
	return it, ok, nil
}

func (t *memTx) Stock(after string, limit int) ([]stock.Item, error) {
	var out []stock.Item
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range t.items {
			if !yield(k) {
				return
			}
		}
	}) {
		if k > after && (limit <= 0 || len(out) < limit) {
			out = append(out, t.items[k])
		}
	}
	return out, nil
}

// TestStore is the conformance suite of a stock store: a list replaces
// the last one as a whole, items read back as written (Chinese text
// too), pages in barcode order, a failed update leaves the stock as it
// was.
func TestStore(t *testing.T, s stock.Store) {
	t.Helper()
	at := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	first := []stock.Item{{Barcode: "B3", Title: "围城", Author: "钱锺书", ISBN: "9787020090006", Added: at},
		{Barcode: "B1", Title: "The Three-Body Problem", Author: "Liu Cixin", Added: at}, {Barcode: "B2", Title: "活着", Author: "余华", Added: at}}
	if err := s.Update(func(tx stock.Tx) error { return tx.ReplaceStock(first) }); err != nil {
		t.Fatal(err)
	}
	s.View(func(tx stock.Tx) error {
		it, found, err := tx.StockItem("B3")
		if err != nil || !found || it.Title != "围城" || it.Author != "钱锺书" || !it.Added.Equal(at) {
			t.Fatalf("B3: %+v %v %v", it, found, err)
		}
		all, _ := tx.Stock("", 0)
		if len(all) != 3 || all[0].Barcode != "B1" || all[2].Barcode != "B3" {
			t.Fatalf("all %+v", all)
		}
		page, _ := tx.Stock("B1", 1)
		if len(page) != 1 || page[0].Barcode != "B2" {
			t.Fatalf("page after B1: %+v", page)
		}
		return nil
	})
	// The next list replaces it whole.
	if err := s.Update(func(tx stock.Tx) error {
		return tx.ReplaceStock([]stock.Item{{Barcode: "C1", Title: "红楼梦", Added: at}})
	}); err != nil {
		t.Fatal(err)
	}
	// A failed update leaves it.
	if err := s.Update(func(tx stock.Tx) error {
		tx.ReplaceStock(nil)
		return errFailed
	}); err != errFailed {
		t.Fatalf("update: %v", err)
	}
	s.View(func(tx stock.Tx) error {
		all, _ := tx.Stock("", 0)
		if len(all) != 1 || all[0].Barcode != "C1" || !strings.Contains(all[0].Title, "红楼") {
			t.Fatalf("after the second list and a failed third: %+v", all)
		}
		if _, found, _ := tx.StockItem("B1"); found {
			t.Fatal("a book of the first list kept")
		}
		return nil
	})
}

type failed struct{}

func (failed) Error() string { return "failed on purpose" }

var errFailed error = failed{}
