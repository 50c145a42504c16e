package hub

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/lockerd/lockerd/sync/protocol"
)

var (
	bLockers = []byte("lockers")
	bOrders  = []byte("orders")  // locker \x00 order id → OrderRec
	bEvents  = []byte("events")  // locker \x00 seq → protocol.Event
	bPending = []byte("pending") // locker \x00 rev \x00 part → pendingMsg (order changes not yet acked)
	bRevs    = []byte("revs")    // locker → last order rev issued
	bCmds    = []byte("cmds")    // command id → CmdRec
)

// LockerInfo is what the hub knows of a locker.
type LockerInfo struct {
	ID         string          `json:"id"`
	Online     bool            `json:"online"`
	Boot       uint64          `json:"boot"`
	Version    string          `json:"version,omitempty"`
	OrdersRev  uint64          `json:"orders_rev"`  // as the locker last reported
	OutboxHead uint64          `json:"outbox_head"` // as the locker last reported
	Acked      uint64          `json:"acked"`       // every event up to this is stored here
	Events     uint64          `json:"events"`      // events stored
	LastSeen   time.Time       `json:"last_seen"`
	Telemetry  json.RawMessage `json:"telemetry,omitempty"`
	LastAck    json.RawMessage `json:"last_ack,omitempty"` // last ack.orders / ack.cmd / nack data
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
		for _, b := range [][]byte{bLockers, bOrders, bEvents, bPending, bRevs, bCmds} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func be64(n uint64) []byte { b := make([]byte, 8); binary.BigEndian.PutUint64(b, n); return b }

func u64(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

func lkey(locker string, rest ...[]byte) []byte {
	k := append([]byte(locker), 0)
	for _, r := range rest {
		k = append(k, r...)
	}
	return k
}

func getJSON(b *bolt.Bucket, key []byte, v any) (bool, error) {
	raw := b.Get(key)
	if raw == nil {
		return false, nil
	}
	return true, json.Unmarshal(raw, v)
}

func putJSON(b *bolt.Bucket, key []byte, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, raw)
}

func getLocker(tx *bolt.Tx, id string) (LockerInfo, error) {
	li := LockerInfo{ID: id}
	_, err := getJSON(tx.Bucket(bLockers), []byte(id), &li)
	return li, err
}

func putLocker(tx *bolt.Tx, li LockerInfo) error {
	return putJSON(tx.Bucket(bLockers), []byte(li.ID), li)
}
