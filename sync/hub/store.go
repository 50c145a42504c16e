package hub

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/lockerd/lockerd/locker/boltkv"
	"github.com/lockerd/lockerd/sync/protocol"
)

var (
	bLockers = []byte("lockers")
	bOrders  = []byte("orders") // locker \x00 order id → OrderRec
	bEvents  = []byte("events") // locker \x00 epoch(4) seq(8) → protocol.Event
	bStores  = []byte("stores") // locker \x00 store id → StoreRec
	bAlarms  = []byte("alarms") // seq → Alarm
	bKnown   = []byte("known")  // locker id → KnownLocker: the lockers this hub serves
	bMeta    = []byte("meta")
	kSchema  = []byte("schema")
	bPending = []byte("pending") // locker \x00 rev \x00 part → pendingMsg (order changes not yet acked)
	bRevs    = []byte("revs")    // locker → last order rev issued
	bCmds    = []byte("cmds")    // command id → CmdRec
)

// schemaVersion 2 keys events by store (epoch): version 1 keyed them by
// locker and seq alone, and is migrated at open.
const schemaVersion = "2"

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

// Alarm is something at a locker that needs a person.
type Alarm struct {
	Seq    uint64    `json:"seq"`
	At     time.Time `json:"at"`
	Locker string    `json:"locker"`
	Type   string    `json:"type"`
	Detail string    `json:"detail"`
}

// Alarm types.
const (
	// AlarmStoreReplaced: the locker's store identity changed (an SD card
	// swapped or wiped): its seq starts again, acks follow the new store.
	AlarmStoreReplaced = "store.replaced"
	// AlarmCloned: two cabinets announce the same locker id.
	AlarmCloned = "locker.cloned"
	// AlarmUnknownLocker: messages from a locker id the hub does not serve
	// (not configured or added): dropped, not stored.
	AlarmUnknownLocker = "locker.unknown"
	// AlarmTailAhead: a locker reports events acked beyond what the hub
	// stored for that store (a forged status, or a hub store restored
	// from an old backup); the mark is not raised.
	AlarmTailAhead = "outbox.tail_ahead"
)

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

type pendingMsg struct {
	Topic   string `json:"topic"`
	Payload []byte `json:"payload"`
}

func openDB(path string) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("hub store %s is locked by another process: %w", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("hub store %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bLockers, bOrders, bEvents, bPending, bRevs, bCmds, bStores, bAlarms, bMeta, bKnown} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		if err := migrate(tx); err != nil {
			return err
		}
		return adoptLockers(tx)
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// migrate brings a version 1 store to version 2: its events (keyed by
// locker and seq) become epoch 1 of the locker's store "" (lockers before
// store identities), with the locker's mark as that store's.
func migrate(tx *bolt.Tx) error {
	m := tx.Bucket(bMeta)
	switch v := string(m.Get(kSchema)); v {
	case schemaVersion:
		return nil
	case "":
	default:
		return fmt.Errorf("hub store schema %q; this lockerhub reads %s", v, schemaVersion)
	}
	eb := tx.Bucket(bEvents)
	type kv struct{ k, v []byte }
	var old []kv
	err := eb.ForEach(func(k, v []byte) error {
		if i := bytes.IndexByte(k, 0); i >= 0 && len(k)-i-1 == 8 {
			old = append(old, kv{append([]byte(nil), k...), append([]byte(nil), v...)})
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, e := range old {
		i := bytes.IndexByte(e.k, 0)
		if err := eb.Delete(e.k); err != nil {
			return err
		}
		if err := eb.Put(evKey(string(e.k[:i]), 1, boltkv.U64(e.k[i+1:])), e.v); err != nil {
			return err
		}
	}
	var lockers []LockerInfo
	err = tx.Bucket(bLockers).ForEach(func(k, v []byte) error {
		var li LockerInfo
		if err := json.Unmarshal(v, &li); err != nil || li.Events == 0 {
			return err
		}
		lockers = append(lockers, li)
		return nil
	})
	if err != nil {
		return err
	}
	for _, li := range lockers {
		if err := boltkv.PutJSON(tx.Bucket(bStores), lkey(li.ID, nil), StoreRec{Epoch: 1, Acked: li.Acked, Events: li.Events, LastSeen: li.LastSeen}); err != nil {
			return err
		}
		li.Epochs = 1
		if err := putLocker(tx, li); err != nil {
			return err
		}
	}
	return m.Put(kSchema, []byte(schemaVersion))
}

// adoptLockers makes a store from before served lockers existed serve the
// lockers it already holds (once: only while none is known), so that an
// upgrade does not drop their messages.
func adoptLockers(tx *bolt.Tx) error {
	known := tx.Bucket(bKnown)
	if k, _ := known.Cursor().First(); k != nil {
		return nil
	}
	var ids []string
	if err := tx.Bucket(bLockers).ForEach(func(k, _ []byte) error {
		ids = append(ids, string(k))
		return nil
	}); err != nil {
		return err
	}
	for _, id := range ids {
		if err := boltkv.PutJSON(known, []byte(id), KnownLocker{ID: id, Added: time.Now().UTC(), Source: "store"}); err != nil {
			return err
		}
	}
	return nil
}

// evKey is the key of event seq of the store of epoch epoch.
func evKey(locker string, epoch uint32, seq uint64) []byte {
	k := lkey(locker, binary.BigEndian.AppendUint32(nil, epoch))
	return binary.BigEndian.AppendUint64(k, seq)
}

func lkey(locker string, rest ...[]byte) []byte {
	k := append([]byte(locker), 0)
	for _, r := range rest {
		k = append(k, r...)
	}
	return k
}

func getLocker(tx *bolt.Tx, id string) (LockerInfo, error) {
	li := LockerInfo{ID: id}
	_, err := boltkv.GetJSON(tx.Bucket(bLockers), []byte(id), &li)
	return li, err
}

func putLocker(tx *bolt.Tx, li LockerInfo) error {
	return boltkv.PutJSON(tx.Bucket(bLockers), []byte(li.ID), li)
}
