package hub

import (
	"encoding/json"
	"time"

	"github.com/lockerd/lockerd/sync/hub/circulation"
	"github.com/lockerd/lockerd/sync/hub/notice"
	"github.com/lockerd/lockerd/sync/protocol"
)

// LockerInfo is what the hub knows of a locker.
type LockerInfo struct {
	ID         string `json:"id"`
	Online     bool   `json:"online"`
	Boot       uint64 `json:"boot"`
	Version    string `json:"version,omitempty"`
	OrdersRev  uint64 `json:"orders_rev"`  // as the locker last reported
	OutboxHead uint64 `json:"outbox_head"` // as the locker last reported
	// Store is the locker's current store identity (its last birth's);
	// Acked is that store's mark: every one of its events up to it is
	// stored here.
	Store    string `json:"store,omitempty"`
	Acked    uint64 `json:"acked"`
	Events   uint64 `json:"events"` // events stored, all stores
	Epochs   uint32 `json:"stores"` // stores seen (each gets the next epoch)
	Instance string `json:"instance,omitempty"`
	// Instances are the other processes seen announcing this locker
	// lately, and when: one coming back means two cabinets share the id.
	Instances  map[string]time.Time `json:"recent_instances,omitempty"`
	CloneAlarm time.Time            `json:"clone_alarm,omitzero"`
	LastSeen   time.Time            `json:"last_seen"`
	Telemetry  json.RawMessage      `json:"telemetry,omitempty"`
	LastAck    json.RawMessage      `json:"last_ack,omitempty"` // last ack.orders / ack.cmd / nack data
}

// StoreRec is what the hub knows of one store of a locker. Its events are
// kept under its epoch, in seq order; Acked moves only over events stored
// here, except Base: the tail the locker reported when the hub first met
// the store (events before it were acked to an earlier central store).
type StoreRec struct {
	Store     string    `json:"store"`
	Epoch     uint32    `json:"epoch"`
	Acked     uint64    `json:"acked"`
	Base      uint64    `json:"base,omitempty"`
	Events    uint64    `json:"events"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
}

// KnownLocker is a locker the hub serves.
type KnownLocker struct {
	ID     string    `json:"id"`
	Added  time.Time `json:"added"`
	Source string    `json:"source"` // config, api
}

// StoredEvent is an event as the hub keeps it: Epoch tells its store.
type StoredEvent struct {
	protocol.Event
	Epoch uint32 `json:"epoch"`
}

// Cursor is a position in a locker's events: after event Seq of the store
// of epoch Epoch. The zero Cursor is before the first.
type Cursor struct {
	Epoch uint32
	Seq   uint64
}

// OrderRec is an order as the hub sees it.
type OrderRec struct {
	protocol.Order
	Locker       string   `json:"locker"`
	Status       string   `json:"status"` // assigned, ready, picked_up, expired, retrieved, cancelled
	Compartments []string `json:"compartments,omitempty"`
	// Patron is the reader's library card number: kept at the hub for
	// the circulation.ILS, never sent to the locker.
	Patron string `json:"patron,omitempty"`
	// Loans are the circulation.ILS's answers to the checkouts of its items.
	Loans []circulation.Loan `json:"loans,omitempty"`
	// NoSpace is when staff last found no compartment for it at the
	// locker: it is to be redirected (another locker, or the desk).
	NoSpace time.Time `json:"no_space,omitzero"`
	// Contact is how the reader is told (sync/hub/notice); SealedCode is
	// the pickup code sealed to the notice key, kept only while the code
	// can open a door — never the code itself.
	Contact    notice.Contact `json:"contact,omitzero"`
	SealedCode []byte         `json:"sealed_code,omitempty"`
	Extended   bool           `json:"extended,omitempty"` // kept longer once, at the reader's ask
	// Address: a home delivery's (kept here only); Source: who made it
	// (NewOrder.Source).
	Address string `json:"address,omitempty"`
	Source  string `json:"source,omitempty"`
}

// CmdRec is a remote command and its answer.
type CmdRec struct {
	ID     string    `json:"id"`
	Locker string    `json:"locker"`
	Type   string    `json:"type"`
	Sent   time.Time `json:"sent"`
	Status string    `json:"status,omitempty"`
	Detail string    `json:"detail,omitempty"`
}

// PendingMsg is an order change sent and not yet acknowledged.
type PendingMsg struct {
	ID      string `json:"id,omitempty"` // the message's id: its ack.orders refers to it
	Topic   string `json:"topic"`
	Payload []byte `json:"payload"`
	// Rev and Part are where it is kept (set by PutPending).
	Rev  uint64 `json:"rev,omitempty"`
	Part int    `json:"part,omitempty"`
	// At is when it was made or last sent again.
	At time.Time `json:"at,omitzero"`
}
