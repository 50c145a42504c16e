// Package lockboard drives the serial lock-control boards most commercial
// parcel-locker cabinets use, over an RS-485 adapter (go.bug.st/serial),
// several boards on one bus by address. It implements locker.Hardware:
// board channels are named B1/L5 (lock 5 of board 1), B1/S5 (its lock-hook
// feedback: active while the door is open) and B1/I5 (item present).
//
// Two protocol families are spoken (docs/lockboard.md has the bytes):
//
//	cu  19200 8N1  02 ADDR CH CMD 03 SUM   SUM = low byte of the sum of the bytes before it
//	               0x31 unlock CH, 0x30 status of CH, 0x32 status of all (CH 0)
//	8a  9600 8N1   8A BOARD LOCK 11 XOR    open
//	               80 BOARD 00 33 XOR      query all; XOR of the bytes before it
//
// One goroutine owns the port: it sends a frame, waits for the reply up to
// the reply timeout, keeps a quiet gap, and polls every board's status.
// An unlock is sent once and never re-sent by the driver: a lost reply
// could be a door already open. A board that does not answer makes its
// doors read as unknown (an error) and raises a fault; the bus reopens
// the adapter after it is unplugged and plugged back.
package lockboard
