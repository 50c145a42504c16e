package boltstore

import (
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/lockerd/lockerd/locker"
)

// withSchema3 makes this test's build one of the next schema (as the
// lockerd_schema3 build tag does).
func withSchema3(t *testing.T) {
	t.Helper()
	saved := migrations
	migrations = append(append([]migration(nil), saved...), probeSchema)
	t.Cleanup(func() { migrations = saved })
}

func probed(t *testing.T, s *Store) bool {
	t.Helper()
	var found bool
	s.db.View(func(tx *bolt.Tx) error { found = tx.Bucket(bMeta).Get(kProbeSchema) != nil; return nil })
	return found
}

func onDisk(t *testing.T, s *Store) int {
	t.Helper()
	var n int
	s.db.View(func(tx *bolt.Tx) error {
		var err error
		n, err = readSchema(tx.Bucket(bMeta))
		return err
	})
	return n
}

// TestSchemaKeptUntilUpgrade: a build of the next schema on probation
// runs on the store as the version before left it, and upgrades it only
// when told (healthy); without probation it upgrades at open. A store
// brought back (for a rollback release) is what the older build reads,
// and an older build refuses a newer schema it does not know.
func TestSchemaKeptUntilUpgrade(t *testing.T) {
	path := storeWithOrder(t)

	withSchema3(t)
	if NewestSchema() != 3 || OldestSchema() != 2 {
		t.Fatalf("schema 3 build: newest %d, oldest %d", NewestSchema(), OldestSchema())
	}
	s, err := Open(path, Options{KeepSchema: true})
	if err != nil {
		t.Fatal(err)
	}
	if s.Schema() != 2 || onDisk(t, s) != 2 || probed(t, s) {
		t.Fatalf("on probation: schema %d, on disk %d, upgraded %v", s.Schema(), onDisk(t, s), probed(t, s))
	}
	s.View(func(tx locker.Tx) error {
		if got, err := tx.OrdersByCodeHash("h1"); err != nil || len(got) != 1 {
			t.Errorf("kept store: %v %v", got, err)
		}
		return nil
	})
	if err := s.Upgrade(); err != nil {
		t.Fatal(err)
	}
	if s.Schema() != 3 || onDisk(t, s) != 3 || !probed(t, s) {
		t.Fatalf("after Upgrade: schema %d, on disk %d, upgraded %v", s.Schema(), onDisk(t, s), probed(t, s))
	}

	// Back to 2 for an older release; not below what this build runs on.
	if err := s.Downgrade(1); err == nil || !strings.Contains(err.Error(), "cannot bring its store back to schema 1") {
		t.Fatalf("downgrade below the oldest schema: %v", err)
	}
	if err := s.Downgrade(2); err != nil {
		t.Fatal(err)
	}
	if s.Schema() != 2 || onDisk(t, s) != 2 || probed(t, s) {
		t.Fatalf("after Downgrade(2): schema %d, on disk %d, probe left %v", s.Schema(), onDisk(t, s), probed(t, s))
	}
	// Still a working store for this build until it hands over.
	if err := s.Update(func(tx locker.Tx) error {
		return tx.PutOrder(locker.Order{ID: "o2", State: locker.OrderReady, CodeHash: "h2"})
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// Not on probation: upgraded at open.
	s = open(t, path)
	if s.Schema() != 3 || !probed(t, s) {
		t.Fatalf("open without KeepSchema: schema %d", s.Schema())
	}
	s.Close()

	// A schema 2 build meets schema 3: refused, saying why.
	migrations = migrations[:len(migrations)-1]
	for _, opt := range []Options{{}, {ReadOnly: true}, {KeepSchema: true}} {
		if _, err := Open(path, opt); err == nil || !strings.Contains(err.Error(), "schema version 3, newer than this lockerd's 2") {
			t.Fatalf("schema 2 build on a schema 3 store (%+v): %v", opt, err)
		}
	}
}

// TestSchema1UpgradedOnProbation: a schema 1 store is older than any
// build runs on without upgrading: it is upgraded even on probation.
func TestSchema1UpgradedOnProbation(t *testing.T) {
	s, err := Open(storeAtSchema(t, 1), Options{KeepSchema: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Schema() != 2 || onDisk(t, s) != 2 {
		t.Fatalf("schema %d, on disk %d", s.Schema(), onDisk(t, s))
	}
}
