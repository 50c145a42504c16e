// Package boltkv holds the few key and value helpers every bbolt user here
// needs (the locker's store, the link's state, the central's store):
// big-endian numbers that sort as keys, and JSON values.
package boltkv
