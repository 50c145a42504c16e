// Package lockertest holds helpers shared by lockerd's tests and tools: a
// settable clock and a ready-made cabinet (core + bbolt store + simulated
// hardware) in a temporary directory.
package lockertest
