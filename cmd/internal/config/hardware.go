package config

import (
	"regexp"
	"time"

	"github.com/lockerd/lockerd/drivers/pinname"
)

// Hardware backends.
const (
	BackendSim       = "sim"
	BackendGPIO      = "gpio"
	BackendLockBoard = "lockboard"
)

type pinRole int

const (
	roleLock pinRole = iota
	roleSensor
	roleSignal // buzzer, status LED
)

// pinFits says why a parsed pin cannot serve role on the configured
// backend, or "" if it can.
func (c *Config) pinFits(p pinname.Pin, role pinRole) string {
	board := p.Kind == pinname.Board
	switch c.Hardware.Backend {
	case BackendGPIO:
		if board {
			return "lock-board channels need hardware.backend: lockboard"
		}
	case BackendLockBoard:
		switch {
		case role == roleSignal && board:
			return "lock boards have no signal outputs; use a GPIO line or leave it empty"
		case role == roleSignal:
			return "signal outputs are not driven on the lockboard backend; leave it empty"
		case !board:
			return "hardware.backend lockboard drives board channels only (B1/L5 lock, B1/S5 door, B1/I5 item)"
		case role == roleLock && p.Func != pinname.BoardLock:
			return "a lock is a board's L channel (B1/L5)"
		case role == roleSensor && p.Func == pinname.BoardLock:
			return "a sensor is a board's S (lock-hook) or I (item) channel"
		}
	}
	return ""
}

// LockBoardBaud is the bus speed: lockboard.baud, or the protocol's own.
func (l LockBoard) LockBoardBaud() int {
	if l.Baud != 0 {
		return l.Baud
	}
	if l.Protocol == "8a" {
		return 9600
	}
	return 19200
}

func (c *Config) checkLockBoard(bad func(key, format string, args ...any)) {
	l := c.Hardware.LockBoard
	if l.Port == "" {
		bad("hardware.lockboard.port", "required with hardware.backend lockboard (e.g. /dev/serial/by-id/usb-FTDI_...-if00-port0)")
	}
	switch l.Protocol {
	case "cu", "8a":
	default:
		bad("hardware.lockboard.protocol", "%q: want cu (19200, 02 ADDR CMD 03 SUM) or 8a (9600, 8A/80 frames)", l.Protocol)
	}
	if l.Baud != 0 && !bauds[l.Baud] {
		bad("hardware.lockboard.baud", "%d is not a standard baud rate", l.Baud)
	}
	if d := l.ReplyTimeout.D(); d < 50*time.Millisecond || d > 10*time.Second {
		bad("hardware.lockboard.reply_timeout", "%v is out of bounds 50ms..10s", d)
	}
	if d := l.Quiet.D(); d < 0 || d > time.Second {
		bad("hardware.lockboard.quiet", "%v is out of bounds 0..1s", d)
	}
	if d := l.Poll.D(); d < 50*time.Millisecond || d > time.Second {
		bad("hardware.lockboard.poll", "%v is out of bounds 50ms..1s (door state must be current within a second)", d)
	}
}

var usbIDRe = regexp.MustCompile(`^[0-9a-fA-F]{4}$`)

// Scanner types and the port value that looks a scanner up by USB ids.
const (
	ScannerSerial = "serial"
	ScannerHID    = "hid"
	PortAuto      = "auto"
)

func (c *Config) checkScanner(k string, s *Scanner, bad func(key, format string, args ...any)) {
	switch s.Type {
	case "":
		s.Type = ScannerSerial
	case ScannerSerial, ScannerHID:
	default:
		bad(k+".type", "%q: want serial or hid (a keyboard-wedge scanner)", s.Type)
	}
	if s.Port == PortAuto {
		if s.Type == ScannerHID {
			bad(k+".port", "auto finds serial ports; name a keyboard-wedge scanner by /dev/input/by-id/...-event-kbd")
		}
		if !usbIDRe.MatchString(s.USBVendor) {
			bad(k+".usb_vid", "%q: port auto needs the scanner's USB vendor id, 4 hex digits (lsusb shows it)", s.USBVendor)
		}
		if !usbIDRe.MatchString(s.USBProd) {
			bad(k+".usb_pid", "%q: port auto needs the scanner's USB product id, 4 hex digits", s.USBProd)
		}
	} else if s.USBVendor != "" || s.USBProd != "" || s.USBSerial != "" {
		bad(k+".usb_vid", "USB ids are used only with port: auto")
	}
	if g := s.GM65; g != nil {
		if s.Type == ScannerHID {
			bad(k+".gm65", "GM65 set-up needs the module's serial interface, not hid")
		}
		switch g.Mode {
		case "", "trigger", "continuous", "sensor":
		default:
			bad(k+".gm65.mode", "%q: want trigger, continuous or sensor", g.Mode)
		}
	}
}
