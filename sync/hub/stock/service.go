package stock

import (
	"io"
	"strings"
	"time"
)

// Tx is the part of a store transaction this package needs: the stock,
// replaced as a whole (ReplaceStock), read by barcode, and listed in
// barcode order after after (at most limit; 0: all).
type Tx interface {
	ReplaceStock(items []Item) error
	StockItem(barcode string) (it Item, found bool, err error)
	Stock(after string, limit int) ([]Item, error)
}

// Store runs transactions over this package's records.
type Store interface {
	View(fn func(Tx) error) error
	Update(fn func(Tx) error) error
}

// Service is the stock of one hub.
type Service struct{ store Store }

// New makes the service over store.
func New(store Store) *Service { return &Service{store: store} }

// Import replaces the stock with the list read from r (name is the
// file's, for the messages): all of it, or — a row broken — none of it.
func (s *Service) Import(name string, r io.Reader, now time.Time) (int, error) {
	items, err := Parse(name, r, now)
	if err != nil {
		return 0, err
	}
	return len(items), s.store.Update(func(tx Tx) error { return tx.ReplaceStock(items) })
}

// Search lists the books that answer query (every word in the title,
// author, ISBN or barcode), at most limit (MaxResults at most), by
// barcode.
func (s *Service) Search(query string, limit int) ([]Item, error) {
	if limit <= 0 || limit > MaxResults {
		limit = MaxResults
	}
	query = strings.TrimSpace(query)
	out := []Item{}
	if query == "" || len(query) > 200 {
		return out, nil
	}
	err := s.store.View(func(tx Tx) error {
		for after := ""; len(out) < limit; {
			page, err := tx.Stock(after, 1000)
			if err != nil {
				return err
			}
			for _, it := range page {
				if len(out) < limit && it.Matches(query) {
					out = append(out, it)
				}
				after = it.Barcode
			}
			if len(page) < 1000 {
				return nil
			}
		}
		return nil
	})
	return out, err
}

// Item is one book by barcode.
func (s *Service) Item(barcode string) (it Item, found bool, err error) {
	err = s.store.View(func(tx Tx) error { it, found, err = tx.StockItem(barcode); return err })
	return it, found, err
}
