// Package hub is lockerhub's fleet core, the central side of protocol v1
// (docs/protocol.md): lockers and their store identities, the events
// they send (kept once by id) and their acknowledgements, orders and their
// revs, order changes not yet acknowledged (sent again when a locker comes
// back), signed commands, card checks, and leases that let several
// replicas share timers and queues. It composes the capabilities that
// live beside it — sync/hub/alarm, sync/hub/auth, sync/hub/webhook (with
// sync/hub/egress), sync/hub/circulation (the SIP2 bridge, which sees the
// orders through a port, bridge.go) and sync/hub/fleet (provisioning,
// credentials, configurations, releases; fleet.go) — handing each its
// part of one store transaction (Tx), so that an event stored, its alarm
// raised and its webhook queued commit together (docs/architecture.md,
// "The central"). Its HTTP API is sync/hub/api, its console
// sync/hub/console, its client sync/hub/hubclient. It runs on bbolt (the
// default: a pilot, the demo) or on PostgreSQL (sync/hub/pgstore, for
// replicas); both pass hubtest.TestStore and every capability's own suite.
package hub
