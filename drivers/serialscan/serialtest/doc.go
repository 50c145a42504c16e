// Package serialtest provides virtual serial devices for tests and tools:
// a pseudo-terminal whose device node is reached through a stable link
// name, as udev's /dev/serial/by-id links are, so a test can unplug the
// "scanner" and plug a new one in behind the same name.
package serialtest
