// Package hidscan reads USB keyboard-wedge (HID) barcode scanners through
// the kernel's evdev interface (/dev/input/event*): it grabs the device
// so its keystrokes never reach a console or the kiosk's browser, and
// turns key events (with shift and caps lock) back into the characters
// the scanner typed, Enter as '\r'. lockerd's scanner loop reads it like
// a serial port.
package hidscan
