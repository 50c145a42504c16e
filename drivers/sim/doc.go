// Package sim is the simulated cabinet: lock relays and door sensors with
// physics. A pulse on a lock opens its door after OpenDelay; the door
// closes by itself after AutoClose (or stays open when AutoClose is 0).
// Faults can be injected at any time: a jammed lock (a pulse does
// nothing), a door forced open, a stuck sensor, a full return bin, a lock
// whose driver fails, and the whole controller going offline (every
// reading unknown, every pulse refused, reported as a hardware fault).
//
// It is lockerd's own driver for demos and for trying a config without
// hardware (hardware.backend: sim), not a test double: it implements
// locker.Hardware exactly as a real driver does, including the electrical
// level of each relay output and the pulse bounds.
package sim
