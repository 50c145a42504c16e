package partition

import (
	"crypto/sha256"
	"encoding/binary"
	"strconv"
	"sync/atomic"
)

// N is the number of partitions.
const N = 32

// Lease names: a replica alive, and a partition held.
const (
	MemberLease = "hub.member/"    // + replica
	Lease       = "hub.partition/" // + partition number
)

// Of is the partition of a locker id. (SHA-256, not FNV: FNV-1a's low bits
// and its order for names that differ in one last character — lockerhub-1,
// lockerhub-2 — spread badly; it gave one replica all 32 partitions.)
func Of(lockerID string) int {
	sum := sha256.Sum256([]byte(lockerID))
	return int(binary.BigEndian.Uint64(sum[:8]) % N)
}

// Owner is the replica among members that partition k goes to: the
// highest score of k with each.
func Owner(k int, members []string) string {
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

// Set is the partitions one replica holds. Until it is first set, it
// owns every locker (a hub not running shares takes what it is handed).
type Set struct {
	active atomic.Bool
	owned  [N]atomic.Bool
}

// Owns reports whether the set holds locker id's partition.
func (s *Set) Owns(id string) bool { return !s.active.Load() || s.owned[Of(id)].Load() }

// Held is how many partitions the set holds.
func (s *Set) Held() int {
	n := 0
	for k := range N {
		if s.owned[k].Load() {
			n++
		}
	}
	return n
}

// Take makes the set owned; it reports whether any partition changed
// hands, and whether this was the first time.
func (s *Set) Take(owned [N]bool) (changed, first bool) {
	for k := range N {
		changed = s.owned[k].Swap(owned[k]) != owned[k] || changed
	}
	return changed, !s.active.Swap(true)
}
