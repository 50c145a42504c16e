// Package hubtest runs a lockerhub hub for tests: in a temp store, quiet,
// connected to its broker before the test goes on, stopped when it ends.
package hubtest
