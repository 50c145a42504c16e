// Package config reads and checks lockerd's YAML configuration file, the
// technician's contract. Every problem is reported as FILE:LINE: key: what
// is wrong, all of them at once, and the result is turned into the core's
// locker.Settings.
package config
