package hub_test

import (
	"path/filepath"
	"testing"

	"github.com/lockerd/lockerd/sync/hub"
	"github.com/lockerd/lockerd/sync/hub/hubbolt"
	"github.com/lockerd/lockerd/sync/hub/hubtest"
)

// The conformance suite on bbolt: one file, one handle, which every hub
// of a case shares (a second process could not open the file).
func TestStore(t *testing.T) {
	hubtest.TestStore(t, func(t *testing.T) func() hub.Store {
		s, err := hubbolt.Open(filepath.Join(t.TempDir(), "hub.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return func() hub.Store { return sharedStore{s} }
	})
}

// sharedStore is one handle lent to several hubs: they do not close it.
type sharedStore struct{ hub.Store }

func (sharedStore) Close() error { return nil }
