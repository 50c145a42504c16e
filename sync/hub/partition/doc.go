// Package partition is how replicas share the lockers: the lockers fall
// in N partitions (by a hash of their id), and each partition is one
// replica's, under a lease, so that a locker's messages are stored by one
// replica and not by all. Which replica a partition goes to is decided by
// rendezvous hashing over the replicas alive (each renews a member
// lease), so that every replica computes the same owners and a replica
// joining or leaving moves only its share. A partition changes hands only
// when its holder gives it up (it no longer is the one) or its lease runs
// out (the holder died): between the two no replica stores its lockers'
// events, and the lockers send them again (their resend schedule), so
// nothing is lost; a message two replicas both took is stored once all
// the same (the store keeps each event once). The hub takes and renews
// the leases (sync/hub: Rebalance); this package is the arithmetic and
// the set held.
package partition
