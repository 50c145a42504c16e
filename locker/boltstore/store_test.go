package boltstore

import (
	"errors"
	"path/filepath"
	"strconv"
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

// storeAtSchema is a closed, empty store stamped with schema n.
func storeAtSchema(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s.db")
	open(t, path).Close()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error { return putSchema(tx, n) }); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestSchemaVersionChecked(t *testing.T) {
	path := storeAtSchema(t, 99)
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
		// Another order may share the code (a reader's orders), and the
		// patron index lists both of theirs.
		if err := tx.PutOrder(locker.Order{ID: "o2", State: locker.OrderAssigned, CodeHash: "h1", PatronHash: "p1"}); err != nil {
			return err
		}
		if got, err := tx.OrdersByCodeHash("h1"); err != nil || len(got) != 2 || got[0].ID != "o1" || got[1].ID != "o2" {
			t.Errorf("shared code: %v %v", got, err)
		}
		// Changing code and items moves the index entries.
		o.CodeHash, o.Items, o.PatronHash = "h2", []locker.Item{{Barcode: "222"}}, "p1"
		return tx.PutOrder(o)
	})
	if err != nil {
		t.Fatal(err)
	}
	s.View(func(tx locker.Tx) error {
		if got, err := tx.OrdersByCodeHash("h1"); err != nil || len(got) != 1 || got[0].ID != "o2" {
			t.Errorf("old code still indexed for o1: %v %v", got, err)
		}
		if got, err := tx.OrdersByCodeHash("h2"); err != nil || len(got) != 1 || got[0].ID != "o1" {
			t.Errorf("new code: %v %v", got, err)
		}
		if got, err := tx.OrdersByPatronHash("p1"); err != nil || len(got) != 2 {
			t.Errorf("patron index: %v %v", got, err)
		}
		if got, err := tx.OrdersByCodeHash("h"); err != nil || len(got) != 0 {
			t.Errorf("a prefix of a hash matched: %v %v", got, err)
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

// TestSchema1Upgraded: a store written by a lockerd before shared codes
// (one code hash → one order id, schema 1) is upgraded when opened for
// writing: every order is found by its code again, an old badge record
// reads as a staff badge, and a read-only open of a schema 1 store says
// how to upgrade it.
func TestSchema1Upgraded(t *testing.T) {
	path := storeWithOrder(t)
	// Rewrite it as schema 1 wrote it.
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bCodes, bPatrons, bBin} {
			if err := tx.DeleteBucket(name); err != nil {
				return err
			}
		}
		old, err := tx.CreateBucket(bCodesV1)
		if err != nil {
			return err
		}
		if err := old.Put([]byte("h1"), []byte("o1")); err != nil {
			return err
		}
		if err := tx.Bucket(bStaff).Put([]byte("b1"), []byte{1}); err != nil {
			return err
		}
		return tx.Bucket(bMeta).Put(kSchema, []byte("1"))
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := Open(path, Options{ReadOnly: true}); err == nil || !strings.Contains(err.Error(), "start this lockerd on it once") {
		t.Fatalf("read-only open of schema 1: %v", err)
	}
	s := open(t, path)
	defer s.Close()
	s.View(func(tx locker.Tx) error {
		got, err := tx.OrdersByCodeHash("h1")
		if err != nil || len(got) != 1 || got[0].ID != "o1" {
			t.Errorf("after the upgrade, the code finds %v (%v)", got, err)
		}
		b, err := tx.Badge("b1")
		if err != nil || b.Role != locker.RoleStaff {
			t.Errorf("schema 1 badge: %+v %v", b, err)
		}
		if tx.(*txn).b(bCodesV1) != nil {
			t.Error("the schema 1 index is still there")
		}
		return nil
	})
}

// TestBinItemsBounded: the barcodes kept of a bin never emptied stop at
// MaxBinItems (the newest), and the count goes on.
func TestBinItemsBounded(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "s.db"))
	defer s.Close()
	n := locker.MaxBinItems + 5
	if err := s.Update(func(tx locker.Tx) error {
		for i := range n {
			if err := tx.AddBinItem(strconv.Itoa(i)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	s.Update(func(tx locker.Tx) error {
		items, total, err := tx.BinItems()
		if err != nil || total != n || len(items) != locker.MaxBinItems || items[0] != "5" || items[len(items)-1] != strconv.Itoa(n-1) {
			t.Fatalf("bin: %d items (first %q), total %d, %v", len(items), items[0], total, err)
		}
		if err := tx.ClearBinItems(); err != nil {
			t.Fatal(err)
		}
		items, total, err = tx.BinItems()
		if err != nil || total != 0 || len(items) != 0 {
			t.Fatalf("after emptying: %v %d %v", items, total, err)
		}
		return nil
	})
}

// storeWithOrder is a closed store holding one ready order, o1, of code
// hash h1.
func storeWithOrder(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s.db")
	s := open(t, path)
	if err := s.Update(func(tx locker.Tx) error {
		return tx.PutOrder(locker.Order{ID: "o1", State: locker.OrderReady, CodeHash: "h1"})
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	return path
}
