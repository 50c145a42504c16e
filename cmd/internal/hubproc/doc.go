// Package hubproc runs the real lockerhub binary for tests: built once per
// test binary from this module's source, started with a config file,
// killed with SIGKILL and started again (the chaos test's replicas, the
// SIP2 bridge's end-to-end test).
package hubproc
