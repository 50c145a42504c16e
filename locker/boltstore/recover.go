package boltstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/lockerd/lockerd/locker"
)

// Recovered says what Recover copied out of a damaged store.
type Recovered struct {
	From, To string
	Orders   int
	Events   int // outbox events not yet acknowledged by the central library
	LastSeq  uint64
	Other    int      // compartments, staff badges, counters, command ids, lockouts
	Lost     []string // what could not be read, by bucket
	StoreID  string   // the new store's identity
}

// Recover copies what can be read from a damaged store into a new store
// at to (which must not exist): orders (their indexes rebuilt), the
// outbox with its seqs, compartments, staff badges, counters, command ids
// and lockouts. The new store has a new identity: the central library
// then keeps its events apart from the old store's (whose last events may
// be lost), and no seq is ever reused under one identity. Reading stops
// at a damaged page of a bucket and goes on with the next bucket; a read
// that crashes is caught (memory faults included).
func Recover(from, to string) (Recovered, error) {
	rep := Recovered{From: from, To: to}
	if _, err := os.Stat(to); err == nil {
		return rep, fmt.Errorf("%s exists: recover into a new file (move it away first)", to)
	}
	info, err := os.Stat(from)
	if err != nil {
		return rep, err
	}
	dst, err := Open(to, Options{})
	if err != nil {
		return rep, err
	}
	defer dst.Close()
	rep.StoreID = dst.ID()
	if info.Size() == 0 {
		rep.Lost = append(rep.Lost, "everything: the damaged file is empty")
		return rep, nil
	}
	src, err := bolt.Open(from, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		rep.Lost = append(rep.Lost, fmt.Sprintf("everything: %v", err))
		return rep, nil
	}
	defer src.Close()
	// A damaged page panics inside bbolt, a truncated file faults: both
	// become panics of this goroutine, caught per bucket.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))

	type kv struct{ k, v []byte }
	read := func(name []byte) (rows []kv, seq uint64) {
		err := readBucket(src, name, func(k, v []byte) { rows = append(rows, kv{append([]byte(nil), k...), append([]byte(nil), v...)}) }, &seq)
		if err != nil {
			rep.Lost = append(rep.Lost, fmt.Sprintf("%s after %d records: %v", name, len(rows), err))
		}
		return rows, seq
	}
	var boot uint64
	metaRows, _ := read(bMeta)
	for _, r := range metaRows {
		if string(r.k) == string(kBoot) {
			boot = u64(r.v)
		}
	}
	orders, _ := read(bOrders)
	events, outboxSeq := read(bOutbox)
	plain := map[string][]kv{}
	for _, name := range [][]byte{bComps, bStaff, bCounters, bCmdIDs, bCmdOrder, bLockouts} {
		plain[string(name)], _ = read(name)
	}

	const batch = 1000
	put := func(rows []kv, fn func(t *txn, r kv) error) error {
		for i := 0; i < len(rows); i += batch {
			err := dst.db.Update(func(tx *bolt.Tx) error {
				t := &txn{tx}
				for _, r := range rows[i:min(i+batch, len(rows))] {
					if err := fn(t, r); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	}
	err = put(orders, func(t *txn, r kv) error {
		var o locker.Order
		if json.Unmarshal(r.v, &o) != nil || o.ID != string(r.k) {
			rep.Lost = append(rep.Lost, fmt.Sprintf("order %q: unreadable record", r.k))
			return nil
		}
		err := t.PutOrder(o)
		if errors.Is(err, locker.ErrCodeTaken) {
			rep.Lost = append(rep.Lost, fmt.Sprintf("order %s: %v", o.ID, err))
			return nil
		}
		rep.Orders++
		return err
	})
	if err != nil {
		return rep, err
	}
	for name, rows := range plain {
		if err := put(rows, func(t *txn, r kv) error { rep.Other++; return t.tx.Bucket([]byte(name)).Put(r.k, r.v) }); err != nil {
			return rep, err
		}
	}
	err = put(events, func(t *txn, r kv) error {
		var e locker.Event
		if len(r.k) != 8 || json.Unmarshal(r.v, &e) != nil || e.Seq != u64(r.k) {
			rep.Lost = append(rep.Lost, fmt.Sprintf("outbox %x: unreadable event", r.k))
			return nil
		}
		rep.Events++
		rep.LastSeq = max(rep.LastSeq, e.Seq)
		return t.tx.Bucket(bOutbox).Put(r.k, r.v)
	})
	if err != nil {
		return rep, err
	}
	// The outbox goes on after the highest seq seen (never reusing one),
	// and the boot count after the damaged store's.
	err = dst.db.Update(func(tx *bolt.Tx) error {
		ob := tx.Bucket(bOutbox)
		if err := ob.SetSequence(max(outboxSeq, rep.LastSeq, ob.Sequence())); err != nil {
			return err
		}
		m := tx.Bucket(bMeta)
		if err := m.Put(kOutboxCount, be64(uint64(rep.Events))); err != nil {
			return err
		}
		return m.Put(kBoot, be64(max(boot, u64(m.Get(kBoot)))))
	})
	return rep, err
}

// readBucket calls fn for each record of bucket name it can read; a panic
// (a damaged page) ends the walk with an error. seq gets the bucket's
// sequence if it can be read.
func readBucket(db *bolt.DB, name []byte, fn func(k, v []byte), seq *uint64) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("damaged: %v", r)
		}
	}()
	return db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(name)
		if b == nil {
			return errors.New("bucket missing")
		}
		*seq = b.Sequence()
		return b.ForEach(func(k, v []byte) error {
			if v != nil {
				fn(k, v)
			}
			return nil
		})
	})
}
