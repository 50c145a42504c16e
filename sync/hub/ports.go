package hub

import (
	"time"

	"github.com/lockerd/lockerd/sync/hub/alarm"
	"github.com/lockerd/lockerd/sync/hub/auth"
	"github.com/lockerd/lockerd/sync/hub/circulation"
	"github.com/lockerd/lockerd/sync/hub/fleet"
	"github.com/lockerd/lockerd/sync/hub/notice"
	"github.com/lockerd/lockerd/sync/hub/stock"
	"github.com/lockerd/lockerd/sync/hub/webhook"
	"github.com/lockerd/lockerd/sync/protocol"
)

// Store is the central's storage: the records below, read and written in
// transactions. sync/hub/hubbolt keeps them in one bbolt file (the
// default, for a pilot and the demo); sync/hub/pgstore on PostgreSQL, for
// several replicas on one database. Both pass one conformance suite
// (hubtest.TestStore), which runs each capability's own.
type Store interface {
	// View runs fn in a read-only transaction; Update in a read-write one,
	// committed when fn returns nil and rolled back otherwise.
	View(fn func(Tx) error) error
	Update(fn func(Tx) error) error
	Close() error
}

// LockerScoped is a Store that can run a transaction at a weaker
// isolation than Update's when every one of its transactions writes the
// record (LockerInfo) of each locker whose records it changes, so that
// two of them for one locker conflict on that row and one runs again:
// the ingest of events is such a transaction (storeEvents). PostgreSQL's
// store runs it under REPEATABLE READ; a store without it (bbolt, one
// writer at a time) runs it as any Update.
type LockerScoped interface {
	UpdateLockers(fn func(Tx) error) error
}

// Tx is one transaction of a Store, as each capability sees it: a small
// interface per capability, each implemented by every store. Work that
// changes records of several capabilities (an event stored, its alarm
// raised and its webhook queued) does it through one Tx, in one
// transaction. A record that is not there is no error: found is false (or
// a zero record comes back, where it says so).
type Tx struct {
	Lockers  LockerTx
	Events   EventTx
	Orders   OrderTx
	Commands CommandTx
	Alarms   alarm.Tx
	Circ     circulation.CircTx
	Auth     auth.Tx
	Webhooks webhook.Tx
	Notices  notice.Tx
	Stock    stock.Tx
	Docs     fleet.Docs
	Leases   LeaseTx
}

// LockerTx: the lockers the hub has heard from and serves, and each locker's stores.
type LockerTx interface {
	// Lockers the hub has heard from. Locker returns LockerInfo{ID: id}
	// for one it has not.
	Locker(id string) (LockerInfo, error)
	PutLocker(li LockerInfo) error
	Lockers() ([]LockerInfo, error)
	// The lockers the hub serves.
	Known(id string) (bool, error)
	PutKnown(k KnownLocker) error
	KnownLockers() ([]KnownLocker, error)
	// The stores of a locker, by the store's identity.
	StoreRec(lockerID, store string) (rec StoreRec, found bool, err error)
	PutStoreRec(lockerID string, rec StoreRec) error
	// StoreRecs lists a locker's stores, by epoch.
	StoreRecs(lockerID string) ([]StoreRec, error)
	// The same for many lockers in one read (a batch of events from many
	// lockers is stored with a handful of reads, not a few per event):
	// KnownAmong the ids served, LockersOf each id's record (LockerInfo{ID}
	// for one not heard from), StoreRecsOf the stores found.
	KnownAmong(ids []string) (map[string]bool, error)
	LockersOf(ids []string) (map[string]LockerInfo, error)
	StoreRecsOf(keys []StoreKey) (map[StoreKey]StoreRec, error)
}

// StoreKey names a locker's store.
type StoreKey struct{ Locker, Store string }

// EventKey names a stored event: its locker, its store's epoch, its seq.
type EventKey struct {
	Locker string
	Epoch  uint32
	Seq    uint64
}

// EventTx: the events lockers sent, per locker and store.
type EventTx interface {
	// Events, kept per locker under the epoch of their store and their
	// seq: one key per event id.
	HasEvent(lockerID string, epoch uint32, seq uint64) (bool, error)
	Event(lockerID string, epoch uint32, seq uint64) (e protocol.Event, found bool, err error)
	PutEvent(lockerID string, epoch uint32, e protocol.Event) error
	// Events returns a locker's events after the cursor: store by store
	// (epoch order), each in seq order; at most limit (0: all).
	Events(lockerID string, after Cursor, limit int) ([]StoredEvent, error)
	// EventsAt returns the events stored under these keys (those found),
	// in one read.
	EventsAt(keys []EventKey) (map[EventKey]protocol.Event, error)
}

// OrderTx: orders, their revs, and the order changes not yet acknowledged.
type OrderTx interface {
	// Orders, per locker, and the last order rev issued to each locker.
	Order(lockerID, orderID string) (o OrderRec, found bool, err error)
	PutOrder(o OrderRec) error
	// Orders returns a locker's orders by rev.
	Orders(lockerID string) ([]OrderRec, error)
	NextRev(lockerID string) (uint64, error)
	// LastRev is the last rev issued to a locker (0: none); SetLastRev
	// sets it (moving a store's data into another).
	LastRev(lockerID string) (uint64, error)
	SetLastRev(lockerID string, rev uint64) error
	// Order changes sent and not yet acknowledged: kept until the locker
	// reports a rev at least theirs.
	PutPending(lockerID string, rev uint64, part int, p PendingMsg) error
	// PrunePending drops a locker's pending changes up to rev and returns
	// the rest, in rev order (up to 0: all of them, dropping none).
	PrunePending(lockerID string, rev uint64) ([]PendingMsg, error)
	// DropPending drops the pending change whose message id is msgID (the
	// locker acknowledged it); found is false when there is none.
	DropPending(lockerID, msgID string) (found bool, err error)
}

// CommandTx: the commands sent to lockers.
type CommandTx interface {
	// Commands sent.
	Command(id string) (rec CmdRec, found bool, err error)
	PutCommand(rec CmdRec) error
	// Commands lists the commands sent, by id.
	Commands() ([]CmdRec, error)
}

// LeaseTx: leases: work done once among replicas.
type LeaseTx interface {
	// Claim takes or renews the lease name for holder, for ttl from now
	// (the store's clock): it is held when free, expired, or already
	// holder's. Work that must run once among replicas runs under one.
	Claim(name, holder string, ttl time.Duration) (held bool, err error)
	// Release gives up holder's lease name (nothing if another holds it).
	Release(name, holder string) error
	// Held lists the leases whose names start with prefix and have not
	// expired (the store's clock), by name: which replicas are alive,
	// which holds a partition.
	Held(prefix string) ([]Lease, error)
}

// Lease is a lease held: its name and holder.
type Lease struct{ Name, Holder string }

// Capability is the Store as one capability's: its transactions are tx's
// part of that capability (each package declares the store it needs).
func Capability[T any](s Store, part func(Tx) T) CapStore[T] { return CapStore[T]{s, part} }

type CapStore[T any] struct {
	s    Store
	part func(Tx) T
}

func (c CapStore[T]) View(fn func(T) error) error {
	return c.s.View(func(tx Tx) error { return fn(c.part(tx)) })
}

func (c CapStore[T]) Update(fn func(T) error) error {
	return c.s.Update(func(tx Tx) error { return fn(c.part(tx)) })
}

// namedLease is a named lease of this replica, taken in its own transaction.
type namedLease struct {
	h    *Hub
	name string
}

func (l namedLease) Claim(ttl time.Duration) (held bool, err error) {
	err = l.h.store.Update(func(tx Tx) error {
		held, err = tx.Leases.Claim(l.name, l.h.cfg.Replica, ttl)
		return err
	})
	return held, err
}

func (l namedLease) Release() error {
	return l.h.store.Update(func(tx Tx) error { return tx.Leases.Release(l.name, l.h.cfg.Replica) })
}
