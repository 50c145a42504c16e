package hub

import (
	"errors"
	"fmt"
	"time"

	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/sync/hub/alarm"
	"github.com/lockerd/lockerd/sync/hub/fleet"
)

// The hub serves the lockers it was told of (Config.Lockers, or added
// through the API: `lockerhub locker add ID`), and no others: a birth,
// event or reply from any other id is dropped and alarmed, so that
// messages with made-up ids cannot fill the hub's store with lockers.

// ErrUnknownLocker is returned for an operation on a locker the hub does
// not serve.
var ErrUnknownLocker = errors.New("unknown locker (add it: lockerhub locker add ID)")

// AddLocker makes the hub serve locker id.
func (h *Hub) AddLocker(id, source string) error {
	if err := locker.CheckLockerID(id); err != nil {
		return err
	}
	err := h.store.Update(func(tx Tx) error {
		if ok, err := tx.Lockers.Known(id); err != nil || ok {
			return err
		}
		return tx.Lockers.PutKnown(KnownLocker{ID: id, Added: time.Now().UTC(), Source: source})
	})
	if err == nil && h.cfg.SubscribeOwned {
		// Its topics, if it is this replica's, at once (the other
		// replicas learn of it at their next rebalance).
		h.ownedSubs.Changed()
	}
	return err
}

// KnownLockers lists the lockers the hub serves.
func (h *Hub) KnownLockers() ([]KnownLocker, error) {
	var out []KnownLocker
	err := h.store.View(func(tx Tx) error {
		var err error
		out, err = tx.Lockers.KnownLockers()
		return err
	})
	return out, err
}

// requireKnown refuses operations on a locker the hub does not serve.
func (h *Hub) requireKnown(id string) error {
	if err := locker.CheckLockerID(id); err != nil {
		return err
	}
	ok := false
	if err := h.store.View(func(tx Tx) error {
		var err error
		if ok, err = tx.Lockers.Known(id); err != nil || !ok {
			return err
		}
		return fleet.Revoked(tx.Docs, id)
	}); err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("locker %q: %w", id, ErrUnknownLocker)
	}
	return nil
}

// stranger logs (and alarms, bounded) a message from an unknown locker.
func (h *Hub) stranger(id, kind string) {
	h.log.Warn("message from a locker this hub does not serve dropped", "locker", id, "topic", kind)
	if !h.strangers.Due(id, time.Now()) {
		return
	}
	if err := h.store.Update(func(tx Tx) error {
		return h.alarm(tx, id, alarm.UnknownLocker, fmt.Sprintf("%s from locker %q, which this hub does not serve (not configured or added): dropped", kind, id))
	}); err != nil {
		h.log.Error("alarm not recorded", "err", err)
	}
}
