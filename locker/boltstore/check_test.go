package boltstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/locker/boltstore/boltstoretest"
)

// The test binary is also the child of Check: a damaged store may crash
// whoever maps it.
func TestMain(m *testing.M) {
	RunChildCheck(os.Args)
	os.Exit(m.Run())
}

var testKey = locker.CodeKey(strings.Repeat("k", 32))

// filled makes a store of n orders and n outbox events, closed; it
// returns the path and the id.
func filled(t *testing.T, n int) (string, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "lockerd.db")
	s := open(t, path)
	err := s.Update(func(tx locker.Tx) error {
		for i := 0; i < n; i++ {
			o := locker.Order{ID: fmt.Sprintf("ORD-%05d", i), Rev: 1, State: locker.OrderReady, Size: locker.SizeS,
				CodeHash: testKey.Hash(fmt.Sprintf("C%05d", i)), ExpiresAt: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
				Items: []locker.Item{{Barcode: fmt.Sprintf("978%010d", i), Title: strings.Repeat("t", 100)}}}
			if err := tx.PutOrder(o); err != nil {
				return err
			}
			if _, err := tx.Record(locker.Event{Type: "test", Boot: s.Boot(), Data: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))}); err != nil {
				return err
			}
		}
		return tx.PutLockoutState("front", locker.LockoutState{Until: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)})
	})
	if err != nil {
		t.Fatal(err)
	}
	id := s.ID()
	s.Close()
	return path, id
}

func TestPreflightAndCheck(t *testing.T) {
	tests := []struct {
		name    string
		damage  func(t *testing.T, path string)
		want    string // "" for whole
		preOnly bool   // Preflight alone finds it
	}{
		{"whole", func(*testing.T, string) {}, "", false},
		{"zero length", func(t *testing.T, p string) { os.Truncate(p, 0) }, "is empty", true},
		{"truncated to half", func(t *testing.T, p string) { boltstoretest.Truncate(t, p, 0.5) }, "is truncated", true},
		{"truncated to one page", func(t *testing.T, p string) { os.Truncate(p, 4096) }, "", true},
		{"not a bbolt file", func(t *testing.T, p string) { os.WriteFile(p, []byte(strings.Repeat("garbage!", 4096)), 0o600) }, "no valid meta page", true},
		{"damaged pages", func(t *testing.T, p string) { boltstoretest.CorruptPages(t, p, 0.6) }, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, _ := filled(t, 3000)
			tt.damage(t, path)
			pre := Preflight(path)
			if tt.preOnly != (pre != nil) {
				t.Fatalf("Preflight = %v, want a finding %v", pre, tt.preOnly)
			}
			err := Check(context.Background(), path, time.Minute)
			if tt.name == "whole" {
				if err != nil {
					t.Fatalf("Check of a whole store: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Check = %v, want ErrDamaged saying %q", err, tt.want)
			}
			t.Logf("%s: %v", tt.name, err)
		})
	}
	if err := Preflight(filepath.Join(t.TempDir(), "none.db")); err != nil {
		t.Fatalf("a missing store (a new one) is no damage: %v", err)
	}
}

func TestRecover(t *testing.T) {
	for _, damage := range []struct {
		name string
		f    func(t *testing.T, p string)
		min  int // orders at least recovered
	}{
		{"truncated to 70%", func(t *testing.T, p string) { boltstoretest.Truncate(t, p, 0.7) }, 1},
		{"damaged pages", func(t *testing.T, p string) { boltstoretest.CorruptPages(t, p, 0.2) }, 1},
		{"zero length", func(t *testing.T, p string) { os.Truncate(p, 0) }, 0},
	} {
		t.Run(damage.name, func(t *testing.T) {
			path, oldID := filled(t, 3000)
			damage.f(t, path)
			aside, err := MoveAside(path, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if got, ok := PendingDamaged(path); !ok || got != aside {
				t.Fatalf("PendingDamaged = %q %v, want %q", got, ok, aside)
			}
			rep, err := Recover(aside, path)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("recovered %d orders, %d events (last seq %d), %d other; lost: %v", rep.Orders, rep.Events, rep.LastSeq, rep.Other, rep.Lost)
			if rep.Orders < damage.min || rep.StoreID == oldID || rep.Orders < 3000 && len(rep.Lost) == 0 {
				t.Fatalf("report %+v", rep)
			}
			s := open(t, path)
			defer s.Close()
			if err := Check(context.Background(), path, time.Minute); err == nil {
				t.Fatal("Check ran on a store in use")
			}
			err = s.View(func(tx locker.Tx) error {
				n := 0
				if err := tx.ForEachOrder(func(o locker.Order) error {
					n++
					// Every recovered order is found by its code again.
					got, err := tx.OrdersByCodeHash(o.CodeHash)
					if err != nil || !slices.ContainsFunc(got, func(g locker.Order) bool { return g.ID == o.ID }) {
						return fmt.Errorf("order %s not found by its code: %v", o.ID, err)
					}
					return nil
				}); err != nil {
					return err
				}
				if n != rep.Orders {
					return fmt.Errorf("%d orders in the new store, report says %d", n, rep.Orders)
				}
				evs, err := tx.Events(0, 0)
				if err != nil || len(evs) != rep.Events {
					return fmt.Errorf("%d events, report says %d: %v", len(evs), rep.Events, err)
				}
				last, _ := tx.LastSeq()
				if last < rep.LastSeq {
					return fmt.Errorf("next seq %d would reuse a recovered one (%d)", last+1, rep.LastSeq)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Recover(aside, path); err == nil {
				t.Fatal("Recover over an existing store")
			}
		})
	}
}

// FuzzStoreFile: whatever bytes a store file holds, the preflight and the
// leaf-page scan (both read it without bbolt) neither panic nor run away.
func FuzzStoreFile(f *testing.F) {
	dir := f.TempDir()
	path := filepath.Join(dir, "seed.db")
	s, err := Open(path, Options{})
	if err != nil {
		f.Fatal(err)
	}
	s.Update(func(tx locker.Tx) error {
		_, err := tx.Record(locker.Event{Type: "seed"})
		return err
	})
	s.Close()
	seed, _ := os.ReadFile(path)
	f.Add(seed)
	f.Add(seed[:len(seed)/2])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "f.db")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := Preflight(p); err != nil && !errors.Is(err, ErrDamaged) {
			t.Fatalf("Preflight: %v is not a finding", err)
		}
		for _, ps := range []int{512, 4096} {
			recs, err := rawLeaves(p, ps)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				if len(r.k) == 0 || len(r.k)+len(r.v) > len(data) {
					t.Fatalf("record of %d+%d bytes out of a %d-byte file", len(r.k), len(r.v), len(data))
				}
			}
		}
	})
}
