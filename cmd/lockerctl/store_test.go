package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/locker/boltstore"
)

// The test binary is also the child of the store check.
func TestMain(m *testing.M) {
	boltstore.RunChildCheck(os.Args)
	os.Exit(m.Run())
}

func TestStoreCheckAndRecover(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "lockerd.db")
	s, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(func(tx locker.Tx) error {
		_, err := tx.Record(locker.Event{Type: "test"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if out, errw, code := ctl(t, "store", "check", path); code != 0 || !strings.Contains(out, ": ok") {
		t.Fatalf("check of a whole store: %d %s %s", code, out, errw)
	}
	os.Truncate(path, 0)
	if out, _, code := ctl(t, "store", "check", path); code != 1 || !strings.Contains(out, "is empty") {
		t.Fatalf("check of an empty store: %d %s", code, out)
	}
	aside, _ := boltstore.MoveAside(path, time.Now())
	if out, errw, code := ctl(t, "store", "recover", "--to", path); code != 0 || !strings.Contains(out, "new store identity") {
		t.Fatalf("recover: %d %s %s", code, out, errw)
	}
	if _, err := os.Stat(aside + boltstore.RecoveredSuffix); err != nil {
		t.Fatalf("the damaged file is not marked recovered: %v", err)
	}
	if _, ok := boltstore.PendingDamaged(path); ok {
		t.Fatal("still pending after recovery")
	}
	if _, errw, code := ctl(t, "store", "recover", "--to", path); code != 2 || !strings.Contains(errw, "no damaged store") {
		t.Fatalf("recover with nothing to recover: %d %s", code, errw)
	}
}
