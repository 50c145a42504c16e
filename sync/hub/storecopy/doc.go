// Package storecopy moves a central's whole store from one engine to
// another (a pilot's bbolt file into PostgreSQL): every capability's
// records, in one read transaction and one write transaction, into an
// empty store only. It is `lockerhub store copy`.
package storecopy
