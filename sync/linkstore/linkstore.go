package linkstore

import (
	"bytes"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/lockerd/lockerd/locker/boltkv"
	"github.com/lockerd/lockerd/sync/mqttlink"
)

// Buckets. The names are those the locker's store used when it kept this
// state itself, so an existing store's staged parts and command ids carry
// over.
var (
	bStaged    = []byte("snapshot_staged") // part/BE64 → payload; snap_id, rev, started
	bCmdIDs    = []byte("cmd_ids")         // id → claimed at (unix nanos)
	bCmdOrder  = []byte("cmd_order")       // claim seq → id, for pruning
	kStagedAt  = []byte("started")
	kStagedID  = []byte("snap_id")
	kStagedRev = []byte("rev")
	partPrefix = []byte("part/")
)

// MaxCommands bounds the remembered remote command ids: the oldest is
// forgotten first. A command is only acted on before its exp (minutes), so
// 4096 ids outlast any redelivery.
const MaxCommands = 4096

// Store is mqttlink.State on a bbolt database (boltstore.Store.DB).
type Store struct{ db *bolt.DB }

var _ mqttlink.State = (*Store)(nil)

// New creates the link's buckets in db if they are missing.
func New(db *bolt.DB) (*Store, error) {
	err := db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bStaged, bCmdIDs, bCmdOrder} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("bucket %s: %w", name, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("link state: %w", err)
	}
	return &Store{db: db}, nil
}

func partKey(part int) []byte { return append(bytes.Clone(partPrefix), boltkv.U64Key(uint64(part))...) }

// StagePart implements mqttlink.State.
func (s *Store) StagePart(at mqttlink.Staged, part int, payload []byte, now time.Time) (staged mqttlink.Staged, kept bool, n int, err error) {
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bStaged)
		cur := b.Get(kStagedID)
		if cur == nil || string(cur) != at.SnapID {
			in := mqttlink.Staged{SnapID: string(cur), Rev: boltkv.U64(b.Get(kStagedRev))}
			if cur != nil && !at.Newer(in) {
				staged = in
				return nil
			}
			var err error
			if b, err = clear(tx); err != nil {
				return err
			}
			for k, v := range map[string][]byte{string(kStagedID): []byte(at.SnapID), string(kStagedRev): boltkv.U64Key(at.Rev),
				string(kStagedAt): boltkv.U64Key(uint64(now.UnixNano()))} {
				if err := b.Put([]byte(k), v); err != nil {
					return err
				}
			}
		}
		if err := b.Put(partKey(part), payload); err != nil {
			return err
		}
		staged, kept = at, true
		// Count the keys: reading every staged part on each arrival would
		// make a snapshot of n parts cost n² reads.
		c := b.Cursor()
		for k, _ := c.Seek(partPrefix); k != nil && bytes.HasPrefix(k, partPrefix); k, _ = c.Next() {
			n++
		}
		return nil
	})
	return staged, kept, n, err
}

func clear(tx *bolt.Tx) (*bolt.Bucket, error) {
	if err := tx.DeleteBucket(bStaged); err != nil {
		return nil, err
	}
	return tx.CreateBucket(bStaged)
}

// StagedPart implements mqttlink.State.
func (s *Store) StagedPart(snapID string, part int) (out []byte, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bStaged)
		if string(b.Get(kStagedID)) != snapID {
			return nil
		}
		if v := b.Get(partKey(part)); v != nil {
			out = bytes.Clone(v)
		}
		return nil
	})
	return out, err
}

// StagedStarted implements mqttlink.State.
func (s *Store) StagedStarted() (at time.Time, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bStaged).Get(kStagedAt); v != nil {
			at = time.Unix(0, int64(boltkv.U64(v)))
		}
		return nil
	})
	return at, err
}

// ClearStaged implements mqttlink.State.
func (s *Store) ClearStaged() error {
	return s.db.Update(func(tx *bolt.Tx) error { _, err := clear(tx); return err })
}

// ClaimCommand implements mqttlink.State.
func (s *Store) ClaimCommand(id string, at time.Time) (dup bool, err error) {
	err = s.db.Update(func(tx *bolt.Tx) error {
		ids, order := tx.Bucket(bCmdIDs), tx.Bucket(bCmdOrder)
		if ids.Get([]byte(id)) != nil {
			dup = true
			return nil
		}
		n, err := order.NextSequence()
		if err != nil {
			return err
		}
		if err := order.Put(boltkv.U64Key(n), []byte(id)); err != nil {
			return err
		}
		if err := ids.Put([]byte(id), boltkv.U64Key(uint64(at.UnixNano()))); err != nil {
			return err
		}
		if n > MaxCommands {
			old := boltkv.U64Key(n - MaxCommands)
			if oldID := order.Get(old); oldID != nil {
				if err := ids.Delete(oldID); err != nil {
					return err
				}
				return order.Delete(old)
			}
		}
		return nil
	})
	return dup, err
}
