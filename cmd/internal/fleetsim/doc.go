// Package fleetsim runs simulated lockers in one process: each a locker
// core on sim hardware (one compartment and a return slot, fast doors)
// with its own bbolt store and, once connected, its own MQTT link as
// lockerd runs it. It is the fleet that lockerbench measures and that the
// central's chaos test drives.
package fleetsim
