// Package hubclient is the one client of lockerhub's HTTP API: the
// command line (cmd/lockerhub), the demo and the tests use it.
package hubclient
