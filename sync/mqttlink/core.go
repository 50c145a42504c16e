package mqttlink

import (
	"context"
	"encoding/json"
	"iter"
	"time"

	"github.com/lockerd/lockerd/locker"
)

// Configurer takes a configuration the central pushed (cmd.config):
// ApplyConfig checks it and, if it takes it, arranges to run on it (the
// outcome, config.applied or config.rejected, is an event); its error
// says why it was refused at once.
type Configurer interface {
	ApplyConfig(version uint64, raw []byte) (detail string, err error)
}

// Updater takes a software release the central sent (cmd.update): it
// checks the manifest of this locker's architecture and, if it takes it,
// installs and runs it when the locker is idle (the outcome is an event).
type Updater interface {
	Update(version string, artifacts map[string]json.RawMessage) (detail string, err error)
}

// Core is what the link asks of the locker core; *locker.Locker is one
// (lockerd asserts it where it wires the link).
type Core interface {
	// Uplink: the outbox, read in seq order, followed live, and emptied
	// up to what the central library acknowledged.
	SyncState() (locker.SyncState, error)
	StoreID() string
	Boot() uint64
	Events(after uint64, limit int) ([]locker.Event, error)
	Subscribe() (<-chan locker.Event, func())
	AckEvents(upto uint64) (int, error)
	Telemetry() (locker.Telemetry, error)

	// Downlink: order changes by rev, and a complete set (a snapshot,
	// read from the link's staged parts a part at a time).
	HashCode(raw string) (string, error)
	ApplyOrders(orders []locker.Order) (locker.OrdersResult, error)
	CancelOrders(ids []string, rev uint64) (locker.OrdersResult, error)
	ReplaceOrders(rev uint64, orders iter.Seq2[[]locker.Order, error]) (locker.OrdersResult, error)

	// Commands, judged by the core's trusted time.
	CheckCommandTime(exp time.Time) error
	ObserveCentralTime(central time.Time)
	RemoteOpen(ctx context.Context, compartment, reason string) (locker.ScanResult, error)
	SetService(compartment string, inService bool, reason string) error
	ChangeBadges(ch locker.BadgeChange) (int, error)

	// What the link notices about the locker's health and identity.
	RecordIdentityConflict(c locker.IdentityConflict)
	Fault(reason string)
	Recover(where string)
}
