package serialscan

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.bug.st/serial"
)

// Defaults of Scanner.
const (
	DefaultIdleGap    = 50 * time.Millisecond
	DefaultMinBackoff = 100 * time.Millisecond
	DefaultMaxBackoff = 5 * time.Second
)

// Scanner reads one serial scanner.
type Scanner struct {
	Name string
	Port string
	Baud int
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
}

// Run reads the scanner until ctx ends, reopening the port whenever it
// goes away. It returns nil when ctx ends.
func (s *Scanner) Run(ctx context.Context) error {
	s.defaults()
	backoff := s.MinBackoff
	wasUp := false
	reported := false
	for ctx.Err() == nil {
		port, err := serial.Open(s.Port, &serial.Mode{BaudRate: s.Baud})
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

// read reads one open port until it fails or ctx ends.
func (s *Scanner) read(ctx context.Context, port serial.Port) error {
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
