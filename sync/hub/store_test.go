package hub

import (
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// A hub store from before served lockers existed keeps serving the
// lockers it holds.
func TestAdoptLockersOnUpgrade(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hub.db")
	db, err := openDB(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		if err := putLocker(tx, LockerInfo{ID: "old-1"}); err != nil {
			return err
		}
		return tx.Bucket(bKnown).Delete([]byte("old-1")) // as before the bucket existed
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if db, err = openDB(path); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.View(func(tx *bolt.Tx) error {
		if !known(tx, "old-1") {
			t.Fatal("a locker of the old store is not served after the upgrade")
		}
		return nil
	})
}
