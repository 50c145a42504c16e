package hub

import (
	"time"

	"github.com/lockerd/lockerd/sync/protocol"
)

// Several hub replicas may share one store (PostgreSQL): each hears every
// message and stores those of the lockers in its share (shares.go; the
// store keeps each event once, whichever stores it), and work that must
// be done once is claimed in the store:
//   - the leader lease (leaderLease), renewed every LeaseTTL/3 by the
//     replica holding it, runs the timers: order changes an online locker
//     has not acknowledged (by their message id) within ResendAfter are
//     sent again — a change below the locker's orders_rev included, since
//     with several replicas publishing a lower rev may be the one lost;
//   - a locker's birth is answered with its pending changes by the one
//     replica that claims "resend/<locker>".
// On bbolt there is one replica, which always holds both.

const leaderLease = "hub.leader"

// resendClaim is how long a birth's resend is one replica's.
const resendClaim = 5 * time.Second

// lead takes or renews the leader lease; it reports whether this replica
// holds it.
func (h *Hub) lead() bool {
	var held bool
	err := h.store.Update(func(tx Tx) error {
		var err error
		held, err = tx.Leases.Claim(leaderLease, h.cfg.Replica, h.cfg.LeaseTTL)
		return err
	})
	if err != nil {
		h.log.Warn("leader lease", "err", err)
		return false
	}
	if held != h.leader.Swap(held) {
		h.log.Info("leader lease", "held", held, "replica", h.cfg.Replica)
	}
	return held
}

// Leader reports whether this replica held the leader lease when it last
// tried.
func (h *Hub) Leader() bool { return h.leader.Load() }

// release gives up the leader lease at a clean stop, so that another
// replica takes the timers over at once.
func (h *Hub) release() {
	if !h.leader.Load() {
		return
	}
	if err := h.store.Update(func(tx Tx) error { return tx.Leases.Release(leaderLease, h.cfg.Replica) }); err != nil {
		h.log.Warn("leader lease release", "err", err)
	}
}

// resendStale sends again the order changes that online lockers have not
// acknowledged within ResendAfter, and marks them sent now.
func (h *Hub) resendStale() {
	var lockers []LockerInfo
	if err := h.store.View(func(tx Tx) error {
		var err error
		lockers, err = tx.Lockers.Lockers()
		return err
	}); err != nil {
		h.log.Warn("resend sweep", "err", err)
		return
	}
	now := time.Now().UTC()
	for _, li := range lockers {
		if !li.Online {
			continue // its birth brings its pending changes
		}
		var due []PendingMsg
		err := h.store.Update(func(tx Tx) error {
			due = nil
			rest, err := tx.Orders.PrunePending(li.ID, 0) // all, none dropped
			if err != nil {
				return err
			}
			for _, p := range rest {
				if now.Sub(p.At) < h.cfg.ResendAfter {
					continue
				}
				p.At = now
				if err := tx.Orders.PutPending(li.ID, p.Rev, p.Part, p); err != nil {
					return err
				}
				due = append(due, p)
			}
			return nil
		})
		if err != nil {
			h.log.Warn("resend sweep", "locker", li.ID, "err", err)
			continue
		}
		if len(due) > 0 {
			h.log.Info("order changes sent again (not acknowledged)", "locker", li.ID, "changes", len(due), "orders_rev", li.OrdersRev)
		}
		for _, p := range due {
			h.publish(p.Topic, h.signedNow(p))
		}
	}
}

// signedNow returns a pending change's envelope signed with the hub's
// current key (see protocol.Reseal), so that a locker that has dropped a
// rotated-out key still takes it (docs/deploy-central.md).
func (h *Hub) signedNow(p PendingMsg) []byte {
	env, err := protocol.Reseal(p.Payload, h.cfg.SigningKey)
	if err != nil {
		h.log.Error("pending order change not signed again", "topic", p.Topic, "err", err)
		return p.Payload
	}
	return env
}
