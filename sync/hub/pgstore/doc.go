// Package pgstore is lockerhub's store on PostgreSQL (pgx): the same
// records as the bbolt store, in tables, for a central that runs several
// lockerhub replicas on one database, is backed up with the library's
// other data (pg_dump), and has a standby.
//
// It owns the schema: embedded SQL migrations applied in order at Open,
// in one transaction, recorded in lockerhub_schema; a database at a newer
// schema than this binary knows is refused. Read-write transactions are
// SERIALIZABLE and retried on a serialization failure, so that the hub's
// read-modify-write logic (marks, counters, revs) holds across replicas
// exactly as it does in one process on bbolt.
package pgstore
