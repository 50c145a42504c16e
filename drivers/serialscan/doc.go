// Package serialscan reads barcode and QR scanners on serial ports
// (USB CDC-ACM or RS-232) through go.bug.st/serial. It splits the byte
// stream into scans, drops non-printable bytes and over-long lines, and
// survives the device disappearing (USB unplug): it reports the scanner
// disconnected, retries with back-off, and resumes when it returns.
package serialscan
