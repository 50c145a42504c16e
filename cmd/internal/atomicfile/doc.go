// Package atomicfile writes a file whole or not at all: a temporary file
// in the same directory, synced, then renamed over the target (the
// configuration and keys provisioning and pushes write).
package atomicfile
