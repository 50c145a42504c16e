package hub

import (
	"slices"
	"strconv"
	"strings"

	"github.com/lockerd/lockerd/sync/hub/partition"
)

// Replicas share the lockers by partitions (sync/hub/partition): this is
// taking and renewing their leases, and what a replica subscribes to.

// Rebalance renews this replica's member lease and takes (or gives up) the
// partitions that are its among the replicas alive, in one transaction.
// Run does it at start and every LeaseTTL/3 (tests drive it).
func (h *Hub) Rebalance() {
	var owned [partition.N]bool
	var members []string
	err := h.store.Update(func(tx Tx) error {
		owned, members = [partition.N]bool{}, nil
		if _, err := tx.Leases.Claim(partition.MemberLease+h.cfg.Replica, h.cfg.Replica, h.cfg.LeaseTTL); err != nil {
			return err
		}
		alive, err := tx.Leases.Held(partition.MemberLease)
		if err != nil {
			return err
		}
		for _, l := range alive {
			members = append(members, l.Holder)
		}
		if !slices.Contains(members, h.cfg.Replica) {
			members = append(members, h.cfg.Replica)
		}
		slices.Sort(members)
		for k := range partition.N {
			name := partition.Lease + strconv.Itoa(k)
			if partition.Owner(k, members) != h.cfg.Replica {
				if err := tx.Leases.Release(name, h.cfg.Replica); err != nil {
					return err
				}
				continue
			}
			if owned[k], err = tx.Leases.Claim(name, h.cfg.Replica, h.cfg.LeaseTTL); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		// Its leases run out: the others take its share over.
		h.log.Warn("partition leases", "err", err)
		return
	}
	changed, first := h.shares.Take(owned)
	if changed {
		h.ownedSubs.Changed() // the subscriptions must catch up
	}
	if n := h.Partitions(); first || n != h.sharesHeld {
		h.log.Info("lockers shared among replicas", "replicas", len(members), "partitions_held", n, "of", partition.N)
		h.sharesHeld = n
	}
}

// unshare gives up this replica's partitions and member lease at a clean
// stop, so that the others take its lockers over at their next renewal.
func (h *Hub) unshare() {
	err := h.store.Update(func(tx Tx) error {
		for k := range partition.N {
			if err := tx.Leases.Release(partition.Lease+strconv.Itoa(k), h.cfg.Replica); err != nil {
				return err
			}
		}
		return tx.Leases.Release(partition.MemberLease+h.cfg.Replica, h.cfg.Replica)
	})
	if err != nil {
		h.log.Warn("partition leases release", "err", err)
	}
}

// lockerOfTopic is the locker id of a topic under prefix ("" when none).
func lockerOfTopic(prefix, topic string) string {
	rest, ok := strings.CutPrefix(topic, prefix+"/")
	if !ok {
		return ""
	}
	id, _, _ := strings.Cut(rest, "/")
	return id
}

// Owns reports whether this replica stores locker id's messages: it holds
// the locker's partition, or it has not taken its share yet (a hub not
// running takes what it is handed).
func (h *Hub) Owns(lockerID string) bool { return h.shares.Owns(lockerID) }

// Partitions is how many of the lockers' partitions this replica holds
// (all of them when it runs alone; 0 before it took its share).
func (h *Hub) Partitions() int { return h.shares.Held() }

// subscribeOwned subscribes to the event, ack and telemetry topics of the
// lockers served in the partitions held, and unsubscribes from those of
// the partitions given up (SubscribeOwned; at connect, after each
// rebalance, and when a locker is added). A locker's events sent while no
// replica subscribes to them are sent again by the locker, unacknowledged.
func (h *Hub) subscribeOwned() {
	if !h.cfg.SubscribeOwned || h.cl == nil || !h.cl.IsConnectionOpen() {
		return
	}
	lockers := 0
	added, dropped, err := h.ownedSubs.Sync(h.cl, func() (map[string]bool, error) {
		known, err := h.KnownLockers()
		want := map[string]bool{}
		for _, k := range known {
			if h.shares.Owns(k.ID) {
				t := h.topics(k.ID)
				want[t.UpEvt()], want[t.UpAck()], want[t.UpTele()] = true, true, true
				lockers++
			}
		}
		return want, err
	})
	if err != nil {
		h.log.Warn("owned subscriptions: the next rebalance tries again", "err", err)
	}
	if added+dropped > 0 {
		h.log.Info("owned subscriptions", "lockers", lockers, "added", added, "dropped", dropped)
	}
}

// Subscribed reports whether this replica is subscribed to the messages
// of every locker it owns: with SubscribeOwned, once the per-locker
// subscriptions caught up with the partitions it holds; otherwise, when
// connected (the wildcards are subscribed at connect).
func (h *Hub) Subscribed() bool {
	if !h.cfg.SubscribeOwned {
		return h.Connected()
	}
	return h.Connected() && h.ownedSubs.Ready()
}

// SubscribedTo reports whether this replica has subscribed to locker id's
// own topics (SubscribeOwned).
func (h *Hub) SubscribedTo(id string) bool { return h.ownedSubs.Has(h.topics(id).UpEvt()) }

// ReceivedEvents counts the events this replica received from the
// broker, and of them those of another replica's lockers (dropped).
func (h *Hub) ReceivedEvents() (all, others uint64) { return h.received.Load(), h.others.Load() }
