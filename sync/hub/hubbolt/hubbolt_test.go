package hubbolt

import (
	"path/filepath"
	"testing"

	"github.com/lockerd/lockerd/sync/hub"
	bolt "go.etcd.io/bbolt"
)

// A hub store from before served lockers existed keeps serving the
// lockers it holds.
func TestAdoptLockersOnUpgrade(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hub.db")
	s, err := openBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		if err := (boltTx{tx}).PutLocker(hub.LockerInfo{ID: "old-1"}); err != nil {
			return err
		}
		return tx.Bucket(bKnown).Delete([]byte("old-1")) // as before the bucket existed
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = openBolt(path); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.View(func(tx hub.Tx) error {
		if ok, _ := tx.Lockers.Known("old-1"); !ok {
			t.Fatal("a locker of the old store is not served after the upgrade")
		}
		return nil
	})
}
