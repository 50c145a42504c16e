// Package fanout delivers values to live subscribers without ever
// blocking the sender: the locker's committed events and notices, and the
// central's event stream. A subscriber that does not keep up misses values
// rather than slowing the sender down; each user of it keeps a record
// (an outbox, a store) that a subscriber can read what it missed from.
package fanout
