package locker

import (
	"errors"
	"time"
)

// ErrNotFound is returned by Tx lookups that find nothing.
var ErrNotFound = errors.New("not found")

// MaxOrdersPerCode bounds the orders one code (or one library card)
// opens at once: the central may give a reader's orders at one locker
// the same code, and a scan then opens them all.
const MaxOrdersPerCode = 32

// MaxBinItems bounds the barcodes kept of the items in the return bin (a
// bin that is never emptied, a flood of returns): the count goes on.
const MaxBinItems = 2000

// Store is the locker's durable state: orders with their code, barcode and
// expiry indexes, compartments, staff badges and the event outbox. Every
// state change and the events it produces are written in one Update.
type Store interface {
	Update(fn func(Tx) error) error
	View(fn func(Tx) error) error
	// Boot is this process's boot number, incremented each time the store
	// is opened for writing.
	Boot() uint64
	// ID is the store's identity: random, made when the store is created.
	// A replaced or wiped store (seq starting again at 1) has another one.
	ID() string
	Close() error
}

// Tx is one store transaction. A Tx is only valid inside the function it
// was passed to.
type Tx interface {
	Order(id string) (Order, error)
	// OrdersByCodeHash returns the orders (at most MaxOrdersPerCode, in
	// id order) whose code hash is hash: several orders may share a code,
	// and one scan then opens all that are ready.
	OrdersByCodeHash(hash string) ([]Order, error)
	// OrdersByPatronHash returns the orders (at most MaxOrdersPerCode)
	// of the reader whose keyed patron hash is hash.
	OrdersByPatronHash(hash string) ([]Order, error)
	OrderByBarcode(barcode string) (Order, error)
	// PutOrder writes o and keeps the indexes in step.
	PutOrder(o Order) error
	ForEachOrder(fn func(Order) error) error
	// OrdersAfter returns up to limit orders with ids after after, in id
	// order (a page of the list).
	OrdersAfter(after string, limit int) ([]Order, error)
	// ReadyExpiring returns ready orders whose ExpiresAt is not after t.
	ReadyExpiring(t time.Time) ([]Order, error)
	OrderCount() (map[OrderState]int, error)
	// EndedBefore returns up to limit ended orders (Order.Ended) whose
	// EndedAt is before t, oldest first.
	EndedBefore(t time.Time, limit int) ([]Order, error)

	Compartment(id string) (Compartment, error)
	PutCompartment(c Compartment) error
	Compartments() ([]Compartment, error)

	// Badge returns the badge whose code hashes to hash (revoked ones
	// too), or ErrNotFound.
	Badge(hash string) (Badge, error)
	PutBadge(b Badge) error
	DeleteBadge(hash string) error
	Badges() ([]Badge, error)

	// Record appends e to the outbox with the next sequence number, which
	// strictly increases and is never reused, and returns it with Seq set.
	Record(e Event) (Event, error)
	// Events returns up to limit outbox events with Seq > after, in order.
	Events(after uint64, limit int) ([]Event, error)
	OutboxDepth() (int, error)
	LastSeq() (uint64, error)
	// AckEvents removes outbox events with Seq <= upto and returns how many.
	AckEvents(upto uint64) (int, error)
	// DeleteOrder removes an order and its index entries.
	DeleteOrder(id string) error

	// Counter and SetCounter keep named numbers (orders_rev, acked_seq).
	Counter(name string) (uint64, error)
	SetCounter(name string, v uint64) error

	// MarkSnapSeen and SnapSeen keep the ids of the orders of the
	// complete order set being applied (ReplaceOrders); ClearSnapSeen
	// forgets them. (How a snapshot arrives — in parts, staged — is the
	// sync link's business, kept in its own state.)
	MarkSnapSeen(ids []string) error
	SnapSeen(id string) (bool, error)
	ClearSnapSeen() error
	// OrderIDsAfter returns up to limit order ids after after, in order.
	OrderIDsAfter(after string, limit int) ([]string, error)

	// LockoutStates and PutLockoutState keep the failed-code lockout of
	// each input device, so that a power cycle does not reset it.
	LockoutStates() (map[string]LockoutState, error)
	PutLockoutState(device string, st LockoutState) error

	// AddBinItem notes an item returned into the bin since it was last
	// emptied; BinItems returns them (the newest MaxBinItems, oldest
	// first) and how many there were in all; ClearBinItems starts again
	// (the bin was emptied).
	AddBinItem(barcode string) error
	BinItems() (items []string, total int, err error)
	ClearBinItems() error

	// AfterCommit runs f once the transaction has committed (never if it
	// rolls back).
	AfterCommit(f func())
}

// InputChange is a sensor input that changed level.
type InputChange struct {
	Pin    string
	Active bool // door open, bin full
	At     time.Time
}

// Hardware is the cabinet's electrical side: lock outputs (pulsed, never
// held) and sensor inputs. Pins are named as in the config.
type Hardware interface {
	// LockAll drives every lock output to its locked level.
	LockAll() error
	// Pulse energises the lock output for d, then drives it back to its
	// locked level, and returns when it is back. Implementations bound d.
	Pulse(lock string, d time.Duration) error
	// Read returns an input's current level as the driver last saw it,
	// without waiting on the bus; an error means the level is unknown now
	// (e.g. its lock board is not answering).
	Read(pin string) (active bool, err error)
	// Inputs delivers every input change.
	Inputs() <-chan InputChange
	// SetOutput switches a signal output (buzzer, status LED) — never a
	// lock, which is only ever pulsed.
	SetOutput(pin string, on bool) error
	Close() error
}

// HardwareFault is a part of the hardware that stopped answering (OK
// false) or answers again (OK true): a lock board, the RS-485 adapter.
type HardwareFault struct {
	Device string
	OK     bool
	Detail string
	At     time.Time
}

// FaultReporter is implemented by hardware whose parts can fail on their
// own; the core records each report as an event for the central.
type FaultReporter interface {
	Faults() <-chan HardwareFault
}

// Clock is the time source; tests inject a fake one.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

// SystemClock is the real clock.
type SystemClock struct{}

func (SystemClock) Now() time.Time                         { return time.Now() }
func (SystemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
