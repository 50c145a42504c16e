// Package hub is the reference central library of protocol v1, run by
// lockerhub: it keeps its own bbolt store of lockers, orders and received
// events (deduplicated by event id), acks events once stored, signs every
// downlink message with its Ed25519 key, and resends order changes a
// locker has not acknowledged (by rev) whenever the locker reconnects.
// It is the readable example of the other side of the protocol
// (docs/protocol.md) and the central side of the integration tests.
package hub
