package hub

import (
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Replicas share the lockers: the lockers fall in partitions (by a hash of
// their id), and each partition is one replica's, under a lease, so that
// a locker's messages are stored by one replica and not by all (each
// replica hears every message; the others drop it on arrival, before
// copying it). Which replica a partition goes to is decided by rendezvous
// hashing over the replicas alive (each renews a member lease), so that
// every replica computes the same owners and a replica joining or leaving
// moves only its share. A partition changes hands only when its holder
// gives it up (it no longer is the one) or its lease runs out (the holder
// died): between the two no replica stores its lockers' events, and the
// lockers send them again (their resend schedule), so nothing is lost;
// a message two replicas both took is stored once all the same (the store
// keeps each event once, in serializable transactions). A card request is
// the leader's, whoever owns the locker (cards.go).

const (
	partitions  = 32
	memberLease = "hub.member/"    // + replica: alive
	partLease   = "hub.partition/" // + partition number
)

// shares is which partitions this replica holds.
type shares struct {
	active atomic.Bool // set once it first took its share: until then it takes every message
	owned  [partitions]atomic.Bool
}

// partitionOf is the partition of a locker id. (SHA-256, not FNV:
// FNV-1a's low bits and its order for names that differ in one last
// character — lockerhub-1, lockerhub-2 — spread badly; it gave one
// replica all 32 partitions.)
func partitionOf(lockerID string) int {
	sum := sha256.Sum256([]byte(lockerID))
	return int(binary.BigEndian.Uint64(sum[:8]) % partitions)
}

// ownerOf is the replica among members (sorted) that partition k goes to:
// the highest score of k with each.
func ownerOf(k int, members []string) string {
	var best string
	var top uint64
	for _, m := range members {
		sum := sha256.Sum256([]byte(m + "\x00" + strconv.Itoa(k)))
		if s := binary.BigEndian.Uint64(sum[:8]); best == "" || s > top {
			best, top = m, s
		}
	}
	return best
}

// owns reports whether this replica stores locker id's messages.
func (s *shares) owns(id string) bool {
	return !s.active.Load() || s.owned[partitionOf(id)].Load()
}

// Rebalance renews this replica's member lease and takes (or gives up) the
// partitions that are its among the replicas alive, in one transaction.
// Run does it at start and every LeaseTTL/3 (tests drive it).
func (h *Hub) Rebalance() {
	var owned [partitions]bool
	var members []string
	err := h.store.Update(func(tx Tx) error {
		owned, members = [partitions]bool{}, nil
		if _, err := tx.Leases.Claim(memberLease+h.cfg.Replica, h.cfg.Replica, h.cfg.LeaseTTL); err != nil {
			return err
		}
		alive, err := tx.Leases.Held(memberLease)
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
		for k := range partitions {
			name := partLease + strconv.Itoa(k)
			if ownerOf(k, members) != h.cfg.Replica {
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
	changed := false
	for k := range partitions {
		changed = h.shares.owned[k].Swap(owned[k]) != owned[k] || changed
	}
	if changed {
		h.ownedSubs.want.Add(1) // the subscriptions must catch up
	}
	if n := h.Partitions(); !h.shares.active.Swap(true) || n != h.sharesHeld {
		h.log.Info("lockers shared among replicas", "replicas", len(members), "partitions_held", n, "of", partitions)
		h.sharesHeld = n
	}
}

// unshare gives up this replica's partitions and member lease at a clean
// stop, so that the others take its lockers over at their next renewal.
func (h *Hub) unshare() {
	err := h.store.Update(func(tx Tx) error {
		for k := range partitions {
			if err := tx.Leases.Release(partLease+strconv.Itoa(k), h.cfg.Replica); err != nil {
				return err
			}
		}
		return tx.Leases.Release(memberLease+h.cfg.Replica, h.cfg.Replica)
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
func (h *Hub) Owns(lockerID string) bool { return h.shares.owns(lockerID) }

// Partitions is how many of the lockers' partitions this replica holds
// (all of them when it runs alone; 0 before it took its share).
func (h *Hub) Partitions() int {
	n := 0
	for k := range partitions {
		if h.shares.owned[k].Load() {
			n++
		}
	}
	return n
}

// ownedSubs are the per-locker topics subscribed (SubscribeOwned).
type ownedSubs struct {
	mu     sync.Mutex
	topics map[string]bool
	wakeC  chan struct{} // the subscriber goroutine's (Run)
	// want counts what changed what should be subscribed (a connection,
	// the partitions held); done is the count the subscriptions last
	// caught up with. Equal: every owned locker's topics are subscribed.
	want, done atomic.Uint64
}

// wake asks the subscriber goroutine to bring the subscriptions up to date.
func (o *ownedSubs) wake() {
	select {
	case o.wakeC <- struct{}{}:
	default:
	}
}

func (o *ownedSubs) reset() {
	o.mu.Lock()
	o.topics = nil
	o.want.Add(1)
	o.mu.Unlock()
}

// subscribeOwned subscribes to the event, ack and telemetry topics of the
// lockers served in the partitions held, and unsubscribes from those of
// the partitions given up (SubscribeOwned; at connect and after each
// rebalance). A locker's events sent while no replica subscribes to them
// are sent again by the locker, unacknowledged.
func (h *Hub) subscribeOwned() {
	if !h.cfg.SubscribeOwned || h.cl == nil || !h.cl.IsConnectionOpen() {
		return
	}
	h.ownedSubs.mu.Lock()
	defer h.ownedSubs.mu.Unlock()
	gen := h.ownedSubs.want.Load()
	known, err := h.KnownLockers()
	if err != nil {
		h.log.Warn("owned subscriptions", "err", err)
		return
	}
	want := map[string]bool{}
	for _, k := range known {
		if h.shares.owns(k.ID) {
			t := h.topics(k.ID)
			want[t.UpEvt()], want[t.UpAck()], want[t.UpTele()] = true, true, true
		}
	}
	var add, drop []string
	for t := range want {
		if !h.ownedSubs.topics[t] {
			add = append(add, t)
		}
	}
	for t := range h.ownedSubs.topics {
		if !want[t] {
			drop = append(drop, t)
		}
	}
	for chunk := range slices.Chunk(add, 50) {
		filters := map[string]byte{}
		for _, t := range chunk {
			filters[t] = 1
		}
		if tok := h.cl.SubscribeMultiple(filters, nil); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			h.log.Warn("owned subscriptions", "err", tok.Error())
			return // the next rebalance tries again
		}
		if h.ownedSubs.topics == nil {
			h.ownedSubs.topics = map[string]bool{}
		}
		for _, t := range chunk {
			h.ownedSubs.topics[t] = true
		}
	}
	for chunk := range slices.Chunk(drop, 50) {
		if tok := h.cl.Unsubscribe(chunk...); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			h.log.Warn("owned subscriptions", "err", tok.Error())
			return
		}
		for _, t := range chunk {
			delete(h.ownedSubs.topics, t)
		}
	}
	h.ownedSubs.done.Store(gen)
	if len(add)+len(drop) > 0 {
		h.log.Info("owned subscriptions", "lockers", len(want)/3, "added", len(add), "dropped", len(drop))
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
	return h.Connected() && h.ownedSubs.done.Load() == h.ownedSubs.want.Load()
}

// SubscribedTo reports whether this replica has subscribed to locker id's
// own topics (SubscribeOwned).
func (h *Hub) SubscribedTo(id string) bool {
	h.ownedSubs.mu.Lock()
	defer h.ownedSubs.mu.Unlock()
	return h.ownedSubs.topics[h.topics(id).UpEvt()]
}

// ReceivedEvents counts the events this replica received from the
// broker, and of them those of another replica's lockers (dropped).
func (h *Hub) ReceivedEvents() (all, others uint64) { return h.received.Load(), h.others.Load() }
