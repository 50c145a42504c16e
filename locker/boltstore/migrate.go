package boltstore

// Schema versions and the migrations between them. A store records the
// schema it was written in (meta/schema_version). A build writes
// NewestSchema; it upgrades an older store when it opens it, except while
// it is a software update on probation (Options.KeepSchema): then it runs
// on the store as the version before left it, as long as that schema is
// no older than OldestSchema, and upgrades it only once it is healthy
// (Store.Upgrade). A rollback therefore finds the schema it reads. A
// rollback to an older release the other way round (a downgrade the
// central asked for) first brings the store back to that release's schema
// (Store.Downgrade): the older build never meets a schema it cannot read,
// and refuses one it does not know rather than misread it.

import (
	"fmt"
	"strconv"

	bolt "go.etcd.io/bbolt"

	"github.com/lockerd/lockerd/locker/boltkv"
)

// migration turns a schema to-1 store into schema to.
type migration struct {
	to   int
	what string
	up   func(*bolt.Tx) error
	// down brings a schema to store back to to-1, for an older release;
	// nil: it cannot.
	down func(*bolt.Tx) error
	// kept: this build runs correctly on a schema to-1 store that was
	// not upgraded (reads it, and writes only what to-1's readers read),
	// so the upgrade can wait for a probation to end.
	kept bool
}

// migrations are in order of to, from schema 2 on; schema 1 is the first.
var migrations = []migration{
	// lockerd 0.16: one code hash indexes several orders (idx_codes),
	// orders are indexed by patron hash (idx_patron), badges have roles.
	// Not kept and not reversible: schema 1 builds took no software
	// updates, so no probation ever ran on a schema 1 store.
	{to: 2, what: "code index of several orders per code, patron index, badges with roles", up: upgradeV1},
}

// NewestSchema is the schema this build writes.
func NewestSchema() int {
	if len(migrations) == 0 {
		return 1
	}
	return migrations[len(migrations)-1].to
}

// OldestSchema is the oldest schema this build runs on without upgrading
// it (while it is on probation).
func OldestSchema() int {
	oldest := NewestSchema()
	for i := len(migrations) - 1; i >= 0 && migrations[i].kept; i-- {
		oldest = migrations[i].to - 1
	}
	return oldest
}

func migrationTo(to int) (migration, bool) {
	for _, m := range migrations {
		if m.to == to {
			return m, true
		}
	}
	return migration{}, false
}

func readSchema(m *bolt.Bucket) (int, error) {
	v := m.Get(kSchema)
	if v == nil {
		return 0, fmt.Errorf("no schema version key")
	}
	n, err := strconv.Atoi(string(v))
	if err != nil || n < 1 {
		return 0, fmt.Errorf("unreadable schema version %q", v)
	}
	return n, nil
}

func putSchema(tx *bolt.Tx, n int) error {
	return tx.Bucket(bMeta).Put(kSchema, []byte(strconv.Itoa(n)))
}

// errNewerSchema is a store of a schema this build does not know.
func errNewerSchema(n int) error {
	return fmt.Errorf("schema version %d, newer than this lockerd's %d: a newer lockerd wrote it (run that one, or have it bring the store back to schema %d for this one: a rollback release)",
		n, NewestSchema(), NewestSchema())
}

// migrateUp upgrades a schema from store to NewestSchema, in tx.
func migrateUp(tx *bolt.Tx, from int) error {
	for n := from + 1; n <= NewestSchema(); n++ {
		m, ok := migrationTo(n)
		if !ok {
			return fmt.Errorf("no migration from schema %d to %d", n-1, n)
		}
		if err := m.up(tx); err != nil {
			return fmt.Errorf("upgrading schema %d to %d (%s): %w", n-1, n, m.what, err)
		}
		if err := putSchema(tx, n); err != nil {
			return err
		}
	}
	return nil
}

// Schema is the schema the store is in now: NewestSchema, or an older one
// kept while on probation (Options.KeepSchema), or one it was brought
// back to for an older release (Downgrade).
func (s *Store) Schema() int { return int(s.schema.Load()) }

// Upgrade upgrades a store that was kept at an older schema to
// NewestSchema, in one transaction. It is what a software update does
// once it is healthy.
func (s *Store) Upgrade() error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		from, err := readSchema(tx.Bucket(bMeta))
		if err != nil {
			return err
		}
		if err := migrateUp(tx, from); err != nil {
			return err
		}
		s.schema.Store(int32(NewestSchema()))
		return nil
	})
	if err != nil {
		return fmt.Errorf("store %s: %w", s.path, err)
	}
	return nil
}

// Downgrade brings the store back to schema to, in one transaction, for
// an older release that reads no newer one. This build goes on running on
// it until it hands over, so to may not be older than OldestSchema.
func (s *Store) Downgrade(to int) error {
	if to < OldestSchema() {
		return fmt.Errorf("store %s: this lockerd cannot bring its store back to schema %d (it runs on schemas %d to %d)", s.path, to, OldestSchema(), NewestSchema())
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		cur, err := readSchema(tx.Bucket(bMeta))
		if err != nil {
			return err
		}
		for n := cur; n > to; n-- {
			m, ok := migrationTo(n)
			if !ok || m.down == nil {
				return fmt.Errorf("schema %d cannot be brought back to %d", n, n-1)
			}
			if err := m.down(tx); err != nil {
				return fmt.Errorf("bringing schema %d back to %d (%s): %w", n, n-1, m.what, err)
			}
			if err := putSchema(tx, n-1); err != nil {
				return err
			}
		}
		s.schema.Store(int32(min(cur, to)))
		return nil
	})
	if err != nil {
		return fmt.Errorf("store %s: %w", s.path, err)
	}
	return nil
}

// upgradeV1 turns a schema 1 store into schema 2: the one-order code
// index becomes idx_codes (idx_patron starts empty: no order from before
// carries a patron hash).
func upgradeV1(tx *bolt.Tx) error {
	t := newTxn(tx)
	old := tx.Bucket(bCodesV1)
	if old != nil {
		if err := old.ForEach(func(k, v []byte) error {
			t.set(bCodes, pairKey(string(k), string(v)), nil, false)
			return nil
		}); err != nil {
			return err
		}
	}
	if err := t.flush(); err != nil {
		return err
	}
	if old != nil {
		return tx.DeleteBucket(bCodesV1)
	}
	return nil
}

// probeSchema is the migration of a test build of the next schema (build
// tag lockerd_schema3, see probe_schema.go): it records when the store
// was upgraded, and takes that back on the way down; a schema 2 build
// runs on such a store without it (kept). It lets the tests take real
// binaries across a schema boundary before a real schema 3 exists.
var probeSchema = migration{
	to:   3,
	what: "test schema 3: a record of the upgrade",
	up: func(tx *bolt.Tx) error {
		return tx.Bucket(bMeta).Put(kProbeSchema, boltkv.U64Key(1))
	},
	down: func(tx *bolt.Tx) error { return tx.Bucket(bMeta).Delete(kProbeSchema) },
	kept: true,
}

var kProbeSchema = []byte("schema3_probe")
