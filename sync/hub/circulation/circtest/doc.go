// Package circtest is the conformance suite of a store's circulation
// queue (circulation.CircTx): every engine the hub runs on passes it
// (hubtest runs it on bbolt and PostgreSQL).
package circtest
