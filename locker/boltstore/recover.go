package boltstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"slices"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/locker/boltkv"
)

// Recovered says what Recover copied out of a damaged store.
type Recovered struct {
	From, To string
	Orders   int
	Events   int // outbox events not yet acknowledged by the central library
	LastSeq  uint64
	Other    int      // compartments, staff badges, counters, command ids, lockouts
	Raw      bool     // some records came from a scan of the file's pages
	Lost     []string // what could not be read
	StoreID  string   // the new store's identity
}

// Recover copies what can be read from a damaged store into a new store
// at to (which must not exist): orders (their indexes rebuilt), the
// outbox's unacknowledged events with their seqs, compartments, staff
// badges, counters, command ids and lockouts.
//
// It walks each bucket's tree with bbolt; a damaged page panics inside
// bbolt and a page cut off by a truncation faults, and both are caught
// (per bucket). Where a tree cannot be walked whole, the file's leaf pages
// are scanned directly for orders, events and counters: the newest
// version of an order is kept, and events the central library had
// acknowledged are left out. Compartments that could not be read are
// rebuilt from the orders that hold books in them.
//
// The new store has a new identity: the central library keeps its events
// apart from the old store's (whose last events may be lost), and no seq
// is ever reused under one identity.
func Recover(from, to string) (Recovered, error) {
	rep := Recovered{From: from, To: to}
	if _, err := os.Stat(to); err == nil {
		return rep, fmt.Errorf("%s exists: recover into a new file (move it away first)", to)
	}
	info, err := os.Stat(from)
	if err != nil {
		return rep, err
	}
	c := &collected{buckets: map[string]map[string][]byte{}, seqs: map[string]uint64{}}
	if info.Size() == 0 {
		rep.Lost = append(rep.Lost, "everything: the damaged file is empty")
	} else {
		c.walk(from, &rep)
		if len(rep.Lost) > 0 {
			c.scan(from, &rep)
		}
	}
	dst, err := Open(to, Options{})
	if err != nil {
		return rep, err
	}
	defer dst.Close()
	rep.StoreID = dst.ID()
	return rep, c.write(dst, &rep)
}

// collected is what was read, by bucket and key.
type collected struct {
	buckets map[string]map[string][]byte
	seqs    map[string]uint64 // bucket sequences
	walked  map[string]bool   // buckets read whole by the tree walk
}

func (c *collected) bucket(name []byte) map[string][]byte {
	m := c.buckets[string(name)]
	if m == nil {
		m = map[string][]byte{}
		c.buckets[string(name)] = m
	}
	return m
}

var recoverBuckets = [][]byte{bMeta, bOrders, bOutbox, bComps, bStaff, bBin, bCounters, bCmdIDs, bCmdOrder, bLockouts}

// walk reads each bucket through bbolt.
func (c *collected) walk(from string, rep *Recovered) {
	c.walked = map[string]bool{}
	src, err := bolt.Open(from, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		rep.Lost = append(rep.Lost, fmt.Sprintf("the bucket trees (%v)", err))
		return
	}
	defer src.Close()
	// A damaged page panics inside bbolt, a truncated file faults: both
	// become panics of this goroutine, caught per bucket.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	for _, name := range recoverBuckets {
		m := c.bucket(name)
		var seq uint64
		err := readBucket(src, name, func(k, v []byte) { m[string(k)] = append([]byte(nil), v...) }, &seq)
		c.seqs[string(name)] = seq
		if err != nil {
			rep.Lost = append(rep.Lost, fmt.Sprintf("bucket %s after %d records: %v", name, len(m), err))
			continue
		}
		c.walked[string(name)] = true
	}
}

// stateRank orders an order's states by how far it got.
func stateRank(s locker.OrderState) int {
	return map[locker.OrderState]int{locker.OrderAssigned: 1, locker.OrderReady: 2, locker.OrderExpired: 3,
		locker.OrderCancelled: 3, locker.OrderPickedUp: 4, locker.OrderRetrieved: 4}[s]
}

// scan fills in, from the file's leaf pages, what the walk could not read.
func (c *collected) scan(from string, rep *Recovered) {
	f, err := os.Open(from)
	if err != nil {
		return
	}
	m, err := readMeta(f, 0)
	f.Close()
	if err != nil {
		m.pageSize = 4096
	}
	recs, err := rawLeaves(from, int(m.pageSize))
	if err != nil {
		rep.Lost = append(rep.Lost, fmt.Sprintf("page scan: %v", err))
	}
	orders, outbox, counters, meta := c.bucket(bOrders), c.bucket(bOutbox), c.bucket(bCounters), c.bucket(bMeta)
	best := map[string]locker.Order{}
	for _, r := range recs {
		k := string(r.k)
		switch {
		case len(r.k) == 8 && !c.walked[string(bOutbox)]:
			var e locker.Event
			if json.Unmarshal(r.v, &e) == nil && e.Seq == boltkv.U64(r.k) && e.Type != "" {
				if _, ok := outbox[k]; !ok {
					outbox[k], rep.Raw = r.v, true
				}
			}
		case len(r.v) == 8 && slices.Contains([]string{locker.CounterOrdersRev, locker.CounterAckedSeq, locker.CounterSnapshotRev, locker.CounterReturns}, k):
			if !c.walked[string(bCounters)] && boltkv.U64(r.v) > boltkv.U64(counters[k]) {
				counters[k], rep.Raw = r.v, true
			}
		case k == string(kBoot) && len(r.v) == 8:
			if boltkv.U64(r.v) > boltkv.U64(meta[k]) {
				meta[k] = r.v
			}
		case !c.walked[string(bOrders)] && len(r.v) > 0 && r.v[0] == '{':
			var o locker.Order
			if json.Unmarshal(r.v, &o) != nil || o.ID != k || !o.State.Valid() || o.CodeHash == "" && o.State != locker.OrderCancelled {
				continue
			}
			if _, walked := orders[k]; walked {
				continue
			}
			b, seen := best[k]
			if !seen || o.Rev > b.Rev || o.Rev == b.Rev && (stateRank(o.State) > stateRank(b.State) ||
				stateRank(o.State) == stateRank(b.State) && o.FactSeq > b.FactSeq) {
				best[k] = o
			}
		}
	}
	for k, o := range best {
		raw, _ := json.Marshal(o)
		orders[k], rep.Raw = raw, true
	}
}

// write puts what was collected into the new store, in small
// transactions.
func (c *collected) write(dst *Store, rep *Recovered) error {
	acked := boltkv.U64(c.bucket(bCounters)[locker.CounterAckedSeq])
	var orders []locker.Order
	for k, v := range c.bucket(bOrders) {
		var o locker.Order
		if json.Unmarshal(v, &o) != nil || o.ID != k {
			rep.Lost = append(rep.Lost, fmt.Sprintf("order %q: unreadable record", k))
			continue
		}
		orders = append(orders, o)
	}
	sort.Slice(orders, func(i, j int) bool { return orders[i].ID < orders[j].ID })
	type kv struct{ k, v []byte }
	sorted := func(name []byte) []kv {
		var out []kv
		for k, v := range c.bucket(name) {
			out = append(out, kv{[]byte(k), v})
		}
		sort.Slice(out, func(i, j int) bool { return string(out[i].k) < string(out[j].k) })
		return out
	}
	const batch = 1000
	inBatches := func(n int, fn func(t *txn, i int) error) error {
		for lo := 0; lo < n; lo += batch {
			err := dst.db.Update(func(tx *bolt.Tx) error {
				t := newTxn(tx)
				for i := lo; i < min(lo+batch, n); i++ {
					if err := fn(t, i); err != nil {
						return err
					}
				}
				return t.flush()
			})
			if err != nil {
				return err
			}
		}
		return nil
	}
	err := inBatches(len(orders), func(t *txn, i int) error {
		err := t.PutOrder(orders[i])
		if err == nil {
			rep.Orders++
		}
		return err
	})
	if err != nil {
		return err
	}
	for _, name := range [][]byte{bComps, bStaff, bBin, bCounters, bCmdIDs, bCmdOrder, bLockouts} {
		rows := sorted(name)
		if err := inBatches(len(rows), func(t *txn, i int) error {
			rep.Other++
			b, err := t.tx.CreateBucketIfNotExists(name) // the link's are not the store's own
			if err != nil {
				return err
			}
			return b.Put(rows[i].k, rows[i].v)
		}); err != nil {
			return err
		}
	}
	// Compartments not read: rebuilt from the orders holding books.
	if !c.walked[string(bComps)] {
		err := inBatches(len(orders), func(t *txn, i int) error {
			o := orders[i]
			if !o.Loaded || o.State.Terminal() {
				return nil
			}
			for _, id := range o.Compartments {
				if t.tx.Bucket(bComps).Get([]byte(id)) == nil {
					rep.Other++
					if err := t.PutCompartment(locker.Compartment{ID: id, State: locker.CompLoaded, OrderID: o.ID}); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	events := sorted(bOutbox)
	err = inBatches(len(events), func(t *txn, i int) error {
		r := events[i]
		var e locker.Event
		if json.Unmarshal(r.v, &e) != nil || e.Seq != boltkv.U64(r.k) {
			rep.Lost = append(rep.Lost, fmt.Sprintf("outbox %x: unreadable event", r.k))
			return nil
		}
		if e.Seq <= acked {
			return nil // acknowledged before the damage (a freed page)
		}
		rep.Events++
		rep.LastSeq = max(rep.LastSeq, e.Seq)
		return t.tx.Bucket(bOutbox).Put(r.k, r.v)
	})
	if err != nil {
		return err
	}
	// The outbox goes on after the highest seq seen (never reusing one),
	// the boot count after the damaged store's.
	return dst.db.Update(func(tx *bolt.Tx) error {
		ob := tx.Bucket(bOutbox)
		if err := ob.SetSequence(max(c.seqs[string(bOutbox)], rep.LastSeq, acked, ob.Sequence())); err != nil {
			return err
		}
		m := tx.Bucket(bMeta)
		if err := m.Put(kOutboxCount, boltkv.U64Key(uint64(rep.Events))); err != nil {
			return err
		}
		return m.Put(kBoot, boltkv.U64Key(max(boltkv.U64(c.bucket(bMeta)[string(kBoot)]), boltkv.U64(m.Get(kBoot)))))
	})
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
