// Package backend builds the hardware driver a config asks for
// (hardware.backend: sim, gpio or lockboard), so lockerd and lockerctl's
// self-test open a cabinet the same way.
package backend
