// Package drivers holds lockerd's hardware drivers, one package each:
// sim (simulated cabinet with door physics) and serialscan (serial
// barcode/QR scanners). They implement the small interfaces of package
// locker.
package drivers
