// Package pgtest runs throwaway PostgreSQL servers for tests and benches:
// initdb and pg_ctl (Debian's postgresql package) in a temp directory, on
// a loopback port, as an unprivileged user (PostgreSQL refuses to run as
// root: as root the server runs as the postgres user). A test asks for a
// fresh database of its own with DB.
//
// Main starts one server for a test binary, unless LOCKERD_TEST_PG names
// one already running (a DSN whose user may create databases). When no
// server can be had the tests fail saying how to get one: they never skip.
package pgtest
