package boltstore

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/lockerd/lockerd/locker"
)

func open(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path, Options{LockTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func record(t *testing.T, s *Store, n int) []uint64 {
	t.Helper()
	var seqs []uint64
	if err := s.Update(func(tx locker.Tx) error {
		for i := 0; i < n; i++ {
			e, err := tx.Record(locker.Event{Type: "test", Boot: s.Boot()})
			if err != nil {
				return err
			}
			seqs = append(seqs, e.Seq)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return seqs
}

func TestSeqStrictlyIncreasesAcrossReopenAndAck(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	s := open(t, path)
	first := record(t, s, 3)
	if first[0] != 1 || first[2] != 3 || s.Boot() != 1 {
		t.Fatalf("seqs %v boot %d", first, s.Boot())
	}
	// Acked events leave the outbox; their numbers are never reused.
	if err := s.Update(func(tx locker.Tx) error { _, err := tx.AckEvents(3); return err }); err != nil {
		t.Fatal(err)
	}
	// A rolled-back transaction does not consume numbers either.
	_ = s.Update(func(tx locker.Tx) error {
		tx.Record(locker.Event{Type: "lost"})
		return errors.New("roll back")
	})
	s.Close()
	s = open(t, path)
	defer s.Close()
	next := record(t, s, 2)
	if next[0] != 4 || next[1] != 5 || s.Boot() != 2 {
		t.Fatalf("after reopen: seqs %v boot %d", next, s.Boot())
	}
	s.View(func(tx locker.Tx) error {
		evs, _ := tx.Events(0, 0)
		depth, _ := tx.OutboxDepth()
		if len(evs) != 2 || depth != 2 || evs[0].Seq != 4 {
			t.Fatalf("outbox %v depth %d", evs, depth)
		}
		return nil
	})
}

func TestSecondOpenFailsFastNamingTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	s := open(t, path)
	defer s.Close()
	start := time.Now()
	_, err := Open(path, Options{LockTimeout: 200 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "another") {
		t.Fatalf("second open: %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("second open hung")
	}
}

func TestSchemaVersionChecked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	s := open(t, path)
	s.Close()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bMeta).Put(kSchema, []byte("99")) })
	db.Close()
	if _, err := Open(path, Options{}); err == nil || !strings.Contains(err.Error(), "schema version 99") {
		t.Fatalf("open of future schema: %v", err)
	}
}

func TestOrderIndexes(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "s.db"))
	defer s.Close()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	err := s.Update(func(tx locker.Tx) error {
		o := locker.Order{ID: "o1", State: locker.OrderReady, CodeHash: "h1", ExpiresAt: t0,
			Items: []locker.Item{{Barcode: "111"}}}
		if err := tx.PutOrder(o); err != nil {
			return err
		}
		// Another live order may not take the same code.
		if err := tx.PutOrder(locker.Order{ID: "o2", State: locker.OrderAssigned, CodeHash: "h1"}); !errors.Is(err, locker.ErrCodeTaken) {
			t.Errorf("code collision: %v", err)
		}
		// Changing code and items moves the index entries.
		o.CodeHash, o.Items = "h2", []locker.Item{{Barcode: "222"}}
		return tx.PutOrder(o)
	})
	if err != nil {
		t.Fatal(err)
	}
	s.View(func(tx locker.Tx) error {
		if _, err := tx.OrderByCodeHash("h1"); !errors.Is(err, locker.ErrNotFound) {
			t.Errorf("old code still indexed: %v", err)
		}
		if o, err := tx.OrderByCodeHash("h2"); err != nil || o.ID != "o1" {
			t.Errorf("new code: %v %v", o, err)
		}
		if _, err := tx.OrderByBarcode("111"); !errors.Is(err, locker.ErrNotFound) {
			t.Errorf("old barcode still indexed")
		}
		due, _ := tx.ReadyExpiring(t0.Add(-time.Second))
		if len(due) != 0 {
			t.Errorf("expiring too early: %v", due)
		}
		due, _ = tx.ReadyExpiring(t0)
		if len(due) != 1 {
			t.Errorf("not expiring at its time: %v", due)
		}
		return nil
	})
}
