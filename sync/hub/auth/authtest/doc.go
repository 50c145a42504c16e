// Package authtest is the conformance suite of a store's auth part
// (auth.Tx): every engine the hub runs on passes it (hubtest runs it on
// bbolt and PostgreSQL), and Mem, an in-memory store for the package's own
// tests, passes it too.
package authtest
