// Package locker is the domain core of lockerd: compartments, orders and
// their state machine, pickup codes (normalisation and keyed hashing), the
// failed-code lockout policy, staff sessions, and the physical flows
// (pickup, load, retrieve, return, door watch, expiry) that tie them
// together.
//
// It imports no hardware, network or database package. The things it needs
// from the outside world are small interfaces defined here — Store (a
// transactional order store with an event outbox), Hardware (lock outputs
// and sensor inputs) and Clock — implemented elsewhere: locker/boltstore,
// drivers/sim, and the real-time clock in this package.
package locker
