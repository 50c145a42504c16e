// Package fleettest is the conformance suite of a store's fleet part (its
// documents, fleet.Docs): every engine the hub runs on passes it (hubtest
// runs it on bbolt and PostgreSQL), and Mem, an in-memory store for the
// fleet's own tests, passes it too.
package fleettest
