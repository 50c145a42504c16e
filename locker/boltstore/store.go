package boltstore

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	"golang.org/x/sys/unix"

	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/locker/boltkv"
)

var (
	bMeta     = []byte("meta")
	bOrders   = []byte("orders")
	bCodes    = []byte("idx_codes")  // code hash + 0 + order id → nil
	bPatrons  = []byte("idx_patron") // patron hash + 0 + order id → nil
	bCodesV1  = []byte("idx_code")   // schema 1: code hash → order id
	bBarcodes = []byte("idx_barcode")
	bExpiry   = []byte("idx_expiry")
	bEnded    = []byte("idx_ended") // ended-at (8) + order id → nil: what retention purges
	bComps    = []byte("compartments")
	bStaff    = []byte("staff")
	bOutbox   = []byte("outbox")
	bBin      = []byte("return_bin") // seq → barcode: returned since the bin was last emptied

	kSchema      = []byte("schema_version")
	kBoot        = []byte("boot")
	kStoreID     = []byte("store_id")
	kOutboxCount = []byte("outbox_count")
	kEndedIndex  = []byte("ended_index") // set once idx_ended covers every order

	allBuckets = [][]byte{bMeta, bOrders, bCodes, bPatrons, bBarcodes, bExpiry, bEnded, bComps, bStaff, bOutbox, bBin,
		bCounters, bLockouts, bSnapSeen}
)

// Options tune Open.
type Options struct {
	// LockTimeout is how long to wait for another process's file lock.
	LockTimeout time.Duration
	ReadOnly    bool
	// KeepSchema: a store of an older schema this build runs on
	// (OldestSchema and newer) is not upgraded now but by Upgrade, once
	// this build, a software update on probation, is healthy; until then
	// the version before can take the store back as it left it.
	KeepSchema bool
}

// Store is a locker.Store on a bbolt file.
type Store struct {
	db     *bolt.DB
	path   string
	boot   uint64
	id     string
	schema atomic.Int32 // what the file is in (Schema)
}

var _ locker.Store = (*Store)(nil)

// InUse reports whether another process (a running lockerd) holds the
// store at path open for writing. It asks for the file lock bbolt takes
// (flock), shared and without waiting, so it never blocks that process
// and never maps the file (which may be damaged); a store that does not
// exist yet is not in use.
func InUse(path string) (bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store %s: %w", path, err)
	}
	defer f.Close()
	err = unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("store %s: %w", path, err)
	}
	return false, unix.Flock(int(f.Fd()), unix.LOCK_UN)
}

// Open opens (creating if needed) the store at path, checks its schema
// version and, unless read-only, counts a new boot.
func Open(path string, opt Options) (*Store, error) {
	if opt.LockTimeout <= 0 {
		opt.LockTimeout = time.Second
	}
	if !opt.ReadOnly {
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return nil, fmt.Errorf("store %s: create directory: %w", path, err)
		}
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opt.LockTimeout, ReadOnly: opt.ReadOnly})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("store %s is locked by another process (is another lockerd running on it?): %w", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	s := &Store{db: db, path: path}
	if opt.ReadOnly {
		err = db.View(func(tx *bolt.Tx) error {
			m := tx.Bucket(bMeta)
			if m == nil {
				return fmt.Errorf("not a lockerd store (no meta bucket)")
			}
			n, err := readSchema(m)
			if err != nil {
				return err
			}
			switch {
			case n > NewestSchema():
				return errNewerSchema(n)
			case n < OldestSchema():
				return fmt.Errorf("schema version %d: start this lockerd on it once (it upgrades the store to version %d)", n, NewestSchema())
			}
			s.schema.Store(int32(n))
			s.boot, s.id = boltkv.U64(m.Get(kBoot)), string(m.Get(kStoreID))
			return nil
		})
	} else {
		err = db.Update(func(tx *bolt.Tx) error {
			fresh := tx.Bucket(bMeta) == nil
			for _, name := range allBuckets {
				if _, err := tx.CreateBucketIfNotExists(name); err != nil {
					return err
				}
			}
			m := tx.Bucket(bMeta)
			if fresh {
				if err := putSchema(tx, NewestSchema()); err != nil {
					return err
				}
			}
			n, err := readSchema(m)
			if err != nil {
				return err
			}
			switch {
			case n > NewestSchema():
				return errNewerSchema(n)
			case n < NewestSchema() && !(opt.KeepSchema && n >= OldestSchema()):
				if err := migrateUp(tx, n); err != nil {
					return err
				}
				n = NewestSchema()
			}
			s.schema.Store(int32(n))
			if m.Get(kEndedIndex) == nil {
				if err := indexEnded(tx); err != nil {
					return err
				}
			}
			s.boot = boltkv.U64(m.Get(kBoot)) + 1
			if s.id = string(m.Get(kStoreID)); s.id == "" {
				// Made once, with the store (or the first time a store
				// from before store identities is opened).
				if s.id, err = newStoreID(); err != nil {
					return err
				}
				if err := m.Put(kStoreID, []byte(s.id)); err != nil {
					return err
				}
			}
			return m.Put(kBoot, boltkv.U64Key(s.boot))
		})
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	return s, nil
}

// newStoreID is a random store identity: 16 hex digits.
func newStoreID() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("store identity: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// ID implements locker.Store.
func (s *Store) ID() string { return s.id }

// DB is the bbolt database under the store, for the owners of other
// buckets kept in the same file (the sync link's state, sync/linkstore):
// one file, one fsync'd history, one backup. They must leave the store's
// own buckets alone.
func (s *Store) DB() *bolt.DB { return s.db }

// Path is the store's file.
func (s *Store) Path() string { return s.path }

// Boot implements locker.Store.
func (s *Store) Boot() uint64 { return s.boot }

// Close implements locker.Store.
func (s *Store) Close() error { return s.db.Close() }

// Size is the store file's size in bytes.
func (s *Store) Size() int64 {
	var n int64
	_ = s.db.View(func(tx *bolt.Tx) error { n = tx.Size(); return nil })
	return n
}

// Update implements locker.Store.
func (s *Store) Update(fn func(locker.Tx) error) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		t := newTxn(tx)
		if err := fn(t); err != nil {
			return err
		}
		return t.flush()
	})
}

// View implements locker.Store.
func (s *Store) View(fn func(locker.Tx) error) error {
	return s.db.View(func(tx *bolt.Tx) error { return fn(newTxn(tx)) })
}

// txn is one transaction. Writes to the orders bucket and its indexes are
// kept in a buffer and written in key order when the transaction ends (or
// before anything iterates over them): bbolt keeps a node's entries in one
// slice until commit, and inserting a key in its middle moves every entry
// after it, so a transaction that puts many random keys (a 100,000-order
// snapshot: random code hashes) costs the square of their number; in key
// order each put appends. Reads see the buffer first.
type txn struct {
	tx      *bolt.Tx
	pending map[string]map[string]pendingPut // bucket → key → write
}

type pendingPut struct {
	v   []byte
	del bool
}

func newTxn(tx *bolt.Tx) *txn { return &txn{tx: tx} }

// bufferedBuckets are written through the buffer.
var bufferedBuckets = map[string]bool{string(bOrders): true, string(bCodes): true, string(bPatrons): true, string(bBarcodes): true,
	string(bExpiry): true, string(bEnded): true}

func (t *txn) get(name, key []byte) []byte {
	if p, ok := t.pending[string(name)][string(key)]; ok {
		if p.del {
			return nil
		}
		return p.v
	}
	return t.b(name).Get(key)
}

func (t *txn) set(name, key, v []byte, del bool) {
	if t.pending == nil {
		t.pending = map[string]map[string]pendingPut{}
	}
	m := t.pending[string(name)]
	if m == nil {
		m = map[string]pendingPut{}
		t.pending[string(name)] = m
	}
	if v == nil && !del {
		v = []byte{}
	}
	m[string(key)] = pendingPut{v: v, del: del}
}

// flush writes the buffer in key order, bucket by bucket.
func (t *txn) flush() error {
	for name, m := range t.pending {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b := t.b([]byte(name))
		if len(keys) > 1000 {
			// A bulk write in key order: fill pages fuller than bbolt's
			// default half, for fewer pages to write and read.
			b.FillPercent = 0.9
		}
		for _, k := range keys {
			p := m[k]
			var err error
			if p.del {
				err = b.Delete([]byte(k))
			} else {
				err = b.Put([]byte(k), p.v)
			}
			if err != nil {
				return err
			}
		}
	}
	t.pending = nil
	return nil
}

func (t *txn) b(name []byte) *bolt.Bucket { return t.tx.Bucket(name) }

// getJSON reads a record that must be there: a missing one is
// locker.ErrNotFound.
func getJSON[T any](b *bolt.Bucket, key []byte, what string) (T, error) {
	var v T
	found, err := boltkv.GetJSON(b, key, &v)
	switch {
	case err != nil:
		return v, fmt.Errorf("%s: %w", what, err)
	case !found:
		return v, fmt.Errorf("%s %q: %w", what, key, locker.ErrNotFound)
	}
	return v, nil
}

func (t *txn) Order(id string) (locker.Order, error) {
	var o locker.Order
	raw := t.get(bOrders, []byte(id))
	if raw == nil {
		return o, fmt.Errorf("order %q: %w", id, locker.ErrNotFound)
	}
	if err := json.Unmarshal(raw, &o); err != nil {
		return o, fmt.Errorf("order %q: corrupt record: %w", id, err)
	}
	return o, nil
}

func (t *txn) orderVia(idx []byte, key string) (locker.Order, error) {
	id := t.get(idx, []byte(key))
	if id == nil {
		return locker.Order{}, locker.ErrNotFound
	}
	return t.Order(string(id))
}

// pairKey is an index key of a hash shared by several orders.
func pairKey(hash, id string) []byte { return append(append([]byte(hash), 0), id...) }

// ordersVia reads the orders a hash index lists for hash, at most
// locker.MaxOrdersPerCode of them, in id order.
func (t *txn) ordersVia(idx []byte, hash string) ([]locker.Order, error) {
	if hash == "" {
		return nil, nil
	}
	if err := t.flush(); err != nil {
		return nil, err
	}
	prefix := append([]byte(hash), 0)
	var out []locker.Order
	c := t.b(idx).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && len(out) < locker.MaxOrdersPerCode; k, _ = c.Next() {
		o, err := t.Order(string(k[len(prefix):]))
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

func (t *txn) OrdersByCodeHash(hash string) ([]locker.Order, error) { return t.ordersVia(bCodes, hash) }

func (t *txn) OrdersByPatronHash(hash string) ([]locker.Order, error) {
	return t.ordersVia(bPatrons, hash)
}

func (t *txn) OrderByBarcode(barcode string) (locker.Order, error) {
	return t.orderVia(bBarcodes, barcode)
}

func expiryKey(o locker.Order) []byte {
	return append(boltkv.U64Key(uint64(o.ExpiresAt.UnixNano())), o.ID...)
}

func endedKey(o locker.Order) []byte {
	return append(boltkv.U64Key(uint64(o.EndedAt.UnixNano())), o.ID...)
}

// indexEnded builds idx_ended for a store from before it: an ended order
// without EndedAt gets the latest time it records (it ended no later).
func indexEnded(tx *bolt.Tx) error {
	t := newTxn(tx)
	var ended []locker.Order
	err := t.ForEachOrder(func(o locker.Order) error {
		if o.Ended() {
			if o.EndedAt.IsZero() {
				for _, at := range []time.Time{o.LoadedAt, o.PickedUpAt, o.ExpiresAt} {
					if at.After(o.EndedAt) {
						o.EndedAt = at
					}
				}
			}
			ended = append(ended, o)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, o := range ended {
		if err := t.PutOrder(o); err != nil {
			return err
		}
	}
	if err := t.flush(); err != nil {
		return err
	}
	return tx.Bucket(bMeta).Put(kEndedIndex, []byte{1})
}

func (t *txn) PutOrder(o locker.Order) error {
	if o.ID == "" {
		return fmt.Errorf("order without id")
	}
	if old, err := t.Order(o.ID); err == nil {
		t.unindex(old)
	} else if !errors.Is(err, locker.ErrNotFound) {
		return err
	}
	if o.CodeHash != "" {
		t.set(bCodes, pairKey(o.CodeHash, o.ID), nil, false)
	}
	if o.PatronHash != "" {
		t.set(bPatrons, pairKey(o.PatronHash, o.ID), nil, false)
	}
	for _, it := range o.Items {
		if it.Barcode != "" {
			t.set(bBarcodes, []byte(it.Barcode), []byte(o.ID), false)
		}
	}
	if o.State == locker.OrderReady {
		t.set(bExpiry, expiryKey(o), nil, false)
	}
	if o.Ended() && !o.EndedAt.IsZero() {
		t.set(bEnded, endedKey(o), nil, false)
	}
	raw, err := json.Marshal(o)
	if err != nil {
		return err
	}
	t.set(bOrders, []byte(o.ID), raw, false)
	return nil
}

// unindex removes old's index entries (those still pointing at it).
func (t *txn) unindex(old locker.Order) {
	if old.CodeHash != "" {
		t.set(bCodes, pairKey(old.CodeHash, old.ID), nil, true)
	}
	if old.PatronHash != "" {
		t.set(bPatrons, pairKey(old.PatronHash, old.ID), nil, true)
	}
	for _, it := range old.Items {
		if string(t.get(bBarcodes, []byte(it.Barcode))) == old.ID {
			t.set(bBarcodes, []byte(it.Barcode), nil, true)
		}
	}
	t.set(bExpiry, expiryKey(old), nil, true)
	t.set(bEnded, endedKey(old), nil, true)
}

func (t *txn) ForEachOrder(fn func(locker.Order) error) error {
	if err := t.flush(); err != nil {
		return err
	}
	return t.b(bOrders).ForEach(func(k, v []byte) error {
		var o locker.Order
		if err := json.Unmarshal(v, &o); err != nil {
			return fmt.Errorf("order %q: corrupt record: %w", k, err)
		}
		return fn(o)
	})
}

func (t *txn) OrdersAfter(after string, limit int) ([]locker.Order, error) {
	if err := t.flush(); err != nil {
		return nil, err
	}
	var out []locker.Order
	c := t.b(bOrders).Cursor()
	k, v := c.Seek([]byte(after))
	if k != nil && string(k) == after {
		k, v = c.Next()
	}
	for ; k != nil && len(out) < limit; k, v = c.Next() {
		var o locker.Order
		if err := json.Unmarshal(v, &o); err != nil {
			return nil, fmt.Errorf("order %q: corrupt record: %w", k, err)
		}
		out = append(out, o)
	}
	return out, nil
}

func (t *txn) ReadyExpiring(at time.Time) ([]locker.Order, error) {
	var out []locker.Order
	if err := t.flush(); err != nil {
		return nil, err
	}
	limit := boltkv.U64Key(uint64(at.UnixNano()))
	c := t.b(bExpiry).Cursor()
	for k, _ := c.First(); k != nil && bytes.Compare(k[:8], limit) <= 0; k, _ = c.Next() {
		o, err := t.Order(string(k[8:]))
		if err != nil {
			return nil, err
		}
		if o.State == locker.OrderReady {
			out = append(out, o)
		}
	}
	return out, nil
}

func (t *txn) EndedBefore(at time.Time, limit int) ([]locker.Order, error) {
	var out []locker.Order
	if err := t.flush(); err != nil {
		return nil, err
	}
	bound := boltkv.U64Key(uint64(at.UnixNano()))
	c := t.b(bEnded).Cursor()
	for k, _ := c.First(); k != nil && bytes.Compare(k[:8], bound) < 0 && (limit <= 0 || len(out) < limit); k, _ = c.Next() {
		o, err := t.Order(string(k[8:]))
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

func (t *txn) OrderCount() (map[locker.OrderState]int, error) {
	n := map[locker.OrderState]int{}
	err := t.ForEachOrder(func(o locker.Order) error { n[o.State]++; return nil })
	return n, err
}

func (t *txn) Compartment(id string) (locker.Compartment, error) {
	return getJSON[locker.Compartment](t.b(bComps), []byte(id), "compartment")
}

func (t *txn) PutCompartment(c locker.Compartment) error {
	return boltkv.PutJSON(t.b(bComps), []byte(c.ID), c)
}

func (t *txn) Compartments() ([]locker.Compartment, error) {
	var out []locker.Compartment
	err := t.b(bComps).ForEach(func(k, v []byte) error {
		var c locker.Compartment
		if err := json.Unmarshal(v, &c); err != nil {
			return fmt.Errorf("compartment %q: corrupt record: %w", k, err)
		}
		out = append(out, c)
		return nil
	})
	return out, err
}

// badgeOf reads a badge record: a JSON Badge, or the single byte 1 that
// stores from before named badges kept for an anonymous staff badge.
func badgeOf(hash string, v []byte) (locker.Badge, error) {
	if len(v) == 1 && v[0] == 1 {
		return locker.Badge{Hash: hash, Name: "staff", Role: locker.RoleStaff, Source: locker.BadgeFromConfig}, nil
	}
	var b locker.Badge
	if err := json.Unmarshal(v, &b); err != nil {
		return b, fmt.Errorf("badge: corrupt record: %w", err)
	}
	return b, nil
}

func (t *txn) Badge(hash string) (locker.Badge, error) {
	v := t.b(bStaff).Get([]byte(hash))
	if v == nil {
		return locker.Badge{}, locker.ErrNotFound
	}
	return badgeOf(hash, v)
}

func (t *txn) PutBadge(b locker.Badge) error {
	raw, err := json.Marshal(b)
	if err != nil {
		return err
	}
	return t.b(bStaff).Put([]byte(b.Hash), raw)
}

// cBinTotal counts the items returned since the bin was last emptied.
const cBinTotal = "bin_total"

func (t *txn) AddBinItem(barcode string) error {
	b := t.b(bBin)
	// After the last key, not the bucket's sequence: a recovered store
	// copies the keys but not the sequence.
	last, _ := b.Cursor().Last()
	seq := boltkv.U64(last) + 1
	if err := b.Put(boltkv.U64Key(seq), []byte(barcode)); err != nil {
		return err
	}
	if seq > locker.MaxBinItems {
		if err := b.Delete(boltkv.U64Key(seq - locker.MaxBinItems)); err != nil {
			return err
		}
	}
	n, err := t.Counter(cBinTotal)
	if err != nil {
		return err
	}
	return t.SetCounter(cBinTotal, n+1)
}

func (t *txn) BinItems() ([]string, int, error) {
	var out []string
	err := t.b(bBin).ForEach(func(_, v []byte) error {
		out = append(out, string(v))
		return nil
	})
	n, cerr := t.Counter(cBinTotal)
	return out, int(n), errors.Join(err, cerr)
}

func (t *txn) ClearBinItems() error {
	if err := t.tx.DeleteBucket(bBin); err != nil {
		return err
	}
	if _, err := t.tx.CreateBucket(bBin); err != nil {
		return err
	}
	return t.SetCounter(cBinTotal, 0)
}

func (t *txn) DeleteBadge(hash string) error { return t.b(bStaff).Delete([]byte(hash)) }

func (t *txn) Badges() ([]locker.Badge, error) {
	var out []locker.Badge
	err := t.b(bStaff).ForEach(func(k, v []byte) error {
		b, err := badgeOf(string(k), v)
		out = append(out, b)
		return err
	})
	return out, err
}

func (t *txn) Record(e locker.Event) (locker.Event, error) {
	ob := t.b(bOutbox)
	seq, err := ob.NextSequence()
	if err != nil {
		return e, err
	}
	e.Seq = seq
	if err := boltkv.PutJSON(ob, boltkv.U64Key(seq), e); err != nil {
		return e, err
	}
	m := t.b(bMeta)
	return e, m.Put(kOutboxCount, boltkv.U64Key(boltkv.U64(m.Get(kOutboxCount))+1))
}

func (t *txn) Events(after uint64, limit int) ([]locker.Event, error) {
	var out []locker.Event
	c := t.b(bOutbox).Cursor()
	for k, v := c.Seek(boltkv.U64Key(after + 1)); k != nil && (limit <= 0 || len(out) < limit); k, v = c.Next() {
		var e locker.Event
		if err := json.Unmarshal(v, &e); err != nil {
			return nil, fmt.Errorf("outbox %d: corrupt record: %w", boltkv.U64(k), err)
		}
		out = append(out, e)
	}
	return out, nil
}

func (t *txn) OutboxDepth() (int, error) { return int(boltkv.U64(t.b(bMeta).Get(kOutboxCount))), nil }

func (t *txn) LastSeq() (uint64, error) { return t.b(bOutbox).Sequence(), nil }

func (t *txn) AckEvents(upto uint64) (int, error) {
	ob := t.b(bOutbox)
	// Collect first: deleting under a moving cursor skips keys in bbolt.
	var keys [][]byte
	c := ob.Cursor()
	for k, _ := c.First(); k != nil && boltkv.U64(k) <= upto; k, _ = c.Next() {
		keys = append(keys, k)
	}
	n := 0
	for _, k := range keys {
		if err := ob.Delete(k); err != nil {
			return n, err
		}
		n++
	}
	m := t.b(bMeta)
	left := int64(boltkv.U64(m.Get(kOutboxCount))) - int64(n)
	return n, m.Put(kOutboxCount, boltkv.U64Key(uint64(max(left, 0))))
}

func (t *txn) AfterCommit(f func()) { t.tx.OnCommit(f) }

var (
	bCounters = []byte("counters")
	bLockouts = []byte("lockouts")      // input device → locker.LockoutState
	bSnapSeen = []byte("snapshot_seen") // order id → nil: in the order set being applied

	// The sync link's command memory (sync/linkstore), kept in this file
	// and copied by Recover: a command redelivered after a recovery must
	// not act twice.
	bCmdIDs   = []byte("cmd_ids")
	bCmdOrder = []byte("cmd_order")
)

func (t *txn) DeleteOrder(id string) error {
	old, err := t.Order(id)
	if err != nil {
		return err
	}
	t.unindex(old)
	t.set(bOrders, []byte(id), nil, true)
	return nil
}

func (t *txn) Counter(name string) (uint64, error) {
	return boltkv.U64(t.b(bCounters).Get([]byte(name))), nil
}

func (t *txn) SetCounter(name string, v uint64) error {
	return t.b(bCounters).Put([]byte(name), boltkv.U64Key(v))
}

func (t *txn) LockoutStates() (map[string]locker.LockoutState, error) {
	out := map[string]locker.LockoutState{}
	err := t.b(bLockouts).ForEach(func(k, v []byte) error {
		var st locker.LockoutState
		if err := json.Unmarshal(v, &st); err != nil {
			return fmt.Errorf("lockout %q: corrupt record: %w", k, err)
		}
		out[string(k)] = st
		return nil
	})
	return out, err
}

func (t *txn) PutLockoutState(device string, st locker.LockoutState) error {
	return boltkv.PutJSON(t.b(bLockouts), []byte(device), st)
}

func (t *txn) ClearSnapSeen() error {
	if err := t.tx.DeleteBucket(bSnapSeen); err != nil {
		return err
	}
	_, err := t.tx.CreateBucket(bSnapSeen)
	return err
}

func (t *txn) MarkSnapSeen(ids []string) error {
	sorted := append([]string(nil), ids...)
	sort.Strings(sorted) // in key order: appends (see txn)
	b := t.b(bSnapSeen)
	b.FillPercent = 0.9
	for _, id := range sorted {
		if err := b.Put([]byte(id), nil); err != nil {
			return err
		}
	}
	return nil
}

func (t *txn) SnapSeen(id string) (bool, error) { return t.b(bSnapSeen).Get([]byte(id)) != nil, nil }

func (t *txn) OrderIDsAfter(after string, limit int) ([]string, error) {
	if err := t.flush(); err != nil {
		return nil, err
	}
	var out []string
	c := t.b(bOrders).Cursor()
	k, _ := c.Seek([]byte(after))
	if k != nil && string(k) == after {
		k, _ = c.Next()
	}
	for ; k != nil && len(out) < limit; k, _ = c.Next() {
		out = append(out, string(k))
	}
	return out, nil
}
