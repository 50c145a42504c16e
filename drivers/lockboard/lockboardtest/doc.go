// Package lockboardtest is a bus of simulated lock-control boards that
// speaks the cu and 8a protocols byte for byte on the device side of a
// pseudo-terminal, with the faults real buses have: boards that do not
// answer, corrupted checksums, garbage on the line, an adapter unplugged.
// Tests and tools (lockerctl, lockerd's e2e tests) share it.
package lockboardtest
