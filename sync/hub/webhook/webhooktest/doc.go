// Package webhooktest is the conformance suite of a store's webhook part
// (webhook.Tx): every engine the hub runs on passes it (hubtest runs it on
// bbolt and PostgreSQL), and Mem, an in-memory store for the package's own
// fast tests, passes it too.
package webhooktest
