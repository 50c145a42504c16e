// Package boltstore implements locker.Store on one bbolt file: orders with
// their code-hash, barcode and expiry indexes, compartments, staff badge
// hashes, and the event outbox whose sequence numbers come from the
// outbox bucket's own persisted sequence (so they are never reused, even
// after a power cut: bbolt commits are fsynced). It owns the file's schema
// version and the migrations between versions (migrate.go): forward at
// open, or only once a software update is healthy (Options.KeepSchema),
// and back for a rollback release (Store.Downgrade).
package boltstore
