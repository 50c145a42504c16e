package serialscan

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"go.bug.st/serial"
	"go.bug.st/serial/enumerator"

	"github.com/lockerd/lockerd/drivers/hidscan"
)

// Defaults of Scanner.
const (
	DefaultIdleGap    = 50 * time.Millisecond
	DefaultMinBackoff = 100 * time.Millisecond
	DefaultMaxBackoff = 5 * time.Second
)

// Scanner kinds.
const (
	KindSerial = "serial" // a serial or USB virtual-COM scanner
	KindHID    = "hid"    // a USB keyboard-wedge scanner, read through evdev
)

// PortAuto makes the scanner look its port up by USB vendor and product id
// each time it (re)opens.
const PortAuto = "auto"

// Scanner reads one scanner: a serial port, or an evdev device for a
// keyboard-wedge scanner.
type Scanner struct {
	Name string
	Kind string // KindSerial (default) or KindHID
	Port string // a path, or PortAuto
	Baud int
	// USBVendor, USBProduct (hex, "1eab") and optionally USBSerial pick
	// the port when Port is PortAuto.
	USBVendor, USBProduct, USBSerial string
	// Enumerate lists serial ports for PortAuto (default: go.bug.st/serial's
	// enumerator, which reads sysfs).
	Enumerate func() ([]*enumerator.PortDetails, error)
	// GM65, if set, configures a GM65-family module each time the port opens.
	GM65 *GM65
	// IdleGap ends a scan that has no CR/LF suffix.
	IdleGap                time.Duration
	MinBackoff, MaxBackoff time.Duration
	Log                    *slog.Logger

	// OnLine is called for every scan, in order, from Run's goroutine.
	OnLine func(line string)
	// OnState is called when the device appears or disappears; err says why
	// it is gone (nil when connected).
	OnState func(connected bool, err error)
}

func (s *Scanner) defaults() {
	if s.IdleGap <= 0 {
		s.IdleGap = DefaultIdleGap
	}
	if s.MinBackoff <= 0 {
		s.MinBackoff = DefaultMinBackoff
	}
	if s.MaxBackoff <= 0 {
		s.MaxBackoff = DefaultMaxBackoff
	}
	if s.Log == nil {
		s.Log = slog.Default()
	}
	if s.OnLine == nil {
		s.OnLine = func(string) {}
	}
	if s.OnState == nil {
		s.OnState = func(bool, error) {}
	}
	if s.Enumerate == nil {
		// No active USB probe filters: listing ports must never write to
		// a device that might not be ours (serial v1.8 made them variadic).
		s.Enumerate = func() ([]*enumerator.PortDetails, error) { return enumerator.GetDetailedPortsList() }
	}
}

// Run reads the scanner until ctx ends, reopening the port whenever it
// goes away. It returns nil when ctx ends.
func (s *Scanner) Run(ctx context.Context) error {
	s.defaults()
	backoff := s.MinBackoff
	wasUp := false
	reported := false
	for ctx.Err() == nil {
		port, _, err := s.open()
		if err != nil {
			if wasUp || !reported {
				s.OnState(false, err)
				reported, wasUp = true, false
			}
			s.Log.Debug("scanner not available", "scanner", s.Name, "port", s.Port, "err", err, "retry_in", backoff)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, s.MaxBackoff)
			continue
		}
		backoff = s.MinBackoff
		wasUp, reported = true, true
		s.OnState(true, nil)
		err = s.read(ctx, port)
		port.Close()
		if ctx.Err() != nil {
			return nil
		}
		s.Log.Warn("scanner lost", "scanner", s.Name, "port", s.Port, "err", err)
		s.OnState(false, err)
		wasUp = false // reported: the retries that follow stay quiet
	}
	return nil
}

// source is an open scanner: a serial port or an evdev device. A Read
// that times out returns 0, nil.
type source interface {
	Read(p []byte) (int, error)
	SetReadTimeout(t time.Duration) error
	Close() error
}

// open opens the scanner's device, finding it first for PortAuto and
// configuring a GM65 module if asked, and returns the path opened.
func (s *Scanner) open() (source, string, error) {
	path := s.Port
	if path == PortAuto {
		var err error
		if path, err = s.findUSB(); err != nil {
			return nil, path, err
		}
	}
	if s.Kind == KindHID {
		d, err := hidscan.Open(path)
		if err != nil {
			return nil, path, err
		}
		return d, path, nil
	}
	port, err := serial.Open(path, &serial.Mode{BaudRate: s.Baud})
	if err != nil {
		return nil, path, err
	}
	if s.GM65 != nil {
		scanned, err := s.GM65.Apply(port)
		if err != nil {
			// The module may still scan as it was set up before: keep
			// reading, and say so.
			s.Log.Error("scanner set-up failed", "scanner", s.Name, "port", path, "err", err)
		} else {
			s.Log.Info("scanner set up", "scanner", s.Name, "gm65_mode", s.GM65.Mode, "aim_id", s.GM65.AIMID)
		}
		if len(scanned) > 0 {
			return &pendingSource{source: port, pending: scanned}, path, nil
		}
	}
	return port, path, nil
}

// pendingSource hands out bytes already read from the device (a scan
// that arrived during set-up) before reading the device again.
type pendingSource struct {
	source
	pending []byte
}

func (p *pendingSource) Read(b []byte) (int, error) {
	if len(p.pending) > 0 {
		n := copy(b, p.pending)
		p.pending = p.pending[n:]
		return n, nil
	}
	return p.source.Read(b)
}

// findUSB returns the port of the USB device with the configured ids.
func (s *Scanner) findUSB() (string, error) {
	ports, err := s.Enumerate()
	if err != nil {
		return "", fmt.Errorf("list serial ports: %w", err)
	}
	return MatchUSB(ports, s.USBVendor, s.USBProduct, s.USBSerial)
}

// MatchUSB picks the one port whose USB ids match (hex, any case). More
// than one match without a serial number to tell them apart is an error:
// guessing could swap the pickup and return scanners.
func MatchUSB(ports []*enumerator.PortDetails, vid, pid, serialNo string) (string, error) {
	var found []string
	for _, p := range ports {
		if p == nil || !p.IsUSB || !strings.EqualFold(p.VID, vid) || !strings.EqualFold(p.PID, pid) {
			continue
		}
		if serialNo != "" && p.SerialNumber != serialNo {
			continue
		}
		found = append(found, p.Name)
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("no USB serial device %s:%s%s plugged in", vid, pid, serialSuffix(serialNo))
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("%d USB serial devices %s:%s (%s): set usb_serial to pick one", len(found), vid, pid, strings.Join(found, ", "))
}

func serialSuffix(s string) string {
	if s == "" {
		return ""
	}
	return " serial " + s
}

// read reads one open device until it fails or ctx ends.
func (s *Scanner) read(ctx context.Context, port source) error {
	// A short read timeout lets us notice an idle gap and ctx ending.
	if err := port.SetReadTimeout(min(s.IdleGap/2, 20*time.Millisecond)); err != nil {
		return fmt.Errorf("set read timeout: %w", err)
	}
	var sp Splitter
	buf := make([]byte, 512)
	var last time.Time
	dropped := 0
	for ctx.Err() == nil {
		n, err := port.Read(buf)
		if err != nil {
			return err
		}
		now := time.Now()
		if n > 0 {
			last = now
			for _, line := range sp.Feed(buf[:n]) {
				s.OnLine(line)
			}
		} else if sp.Pending() && now.Sub(last) >= s.IdleGap {
			if line, ok := sp.Flush(); ok {
				s.OnLine(line)
			}
		}
		if sp.Dropped != dropped {
			dropped = sp.Dropped
			s.Log.Warn("scan dropped: longer than limit", "scanner", s.Name, "limit", MaxLine)
		}
	}
	return errors.New("stopped")
}

// Probe opens the scanner's device once (finding it, and setting a GM65
// module up, as Run does) and closes it: the self-test's check that the
// scanner is there. It returns the device path opened.
func (s *Scanner) Probe() (string, error) {
	s.defaults()
	src, path, err := s.open()
	if err != nil {
		return path, err
	}
	return path, src.Close()
}
