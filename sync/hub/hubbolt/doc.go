// Package hubbolt is the central's hub.Store on one bbolt file: every part of
// hub.Tx (the core's records and each capability's), for a pilot, the
// demo and the tests. sync/hub/pgstore is the same on PostgreSQL, for
// replicas; both pass hubtest.TestStore and each capability's suite.
package hubbolt
