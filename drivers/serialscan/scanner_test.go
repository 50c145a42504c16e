package serialscan

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lockerd/lockerd/drivers/serialscan/serialtest"
)

type state struct {
	up  bool
	err error
}

func TestScannerOverPseudoTerminal(t *testing.T) {
	link := filepath.Join(t.TempDir(), "scanner")
	master := serialtest.Plug(t, link)
	lines := make(chan string, 16)
	states := make(chan state, 16)
	s := &Scanner{Name: "front", Port: link, Baud: 9600, IdleGap: 50 * time.Millisecond,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		Log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnLine:  func(l string) { lines <- l },
		OnState: func(up bool, err error) { states <- state{up, err} }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	wantState := func(up bool) {
		t.Helper()
		select {
		case st := <-states:
			if st.up != up {
				t.Fatalf("scanner state up=%v (%v), want up=%v", st.up, st.err, up)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no scanner state change to up=%v", up)
		}
	}
	wantState(true)
	master.Write([]byte("K7Q2M9\r\n]Q1abcd\r"))
	wantLine(t, lines, "K7Q2M9")
	wantLine(t, lines, "]Q1abcd")
	master.Write([]byte("NOSUFFIX")) // ended by the idle gap
	wantLine(t, lines, "NOSUFFIX")
	master.Write([]byte("\x00\x01\xfe garbage \x7f\n"))
	wantLine(t, lines, " garbage ")

	// Unplug: the device goes away.
	master.Close()
	os.Remove(link)
	wantState(false)
	// Plug back in: a new device node behind the same name.
	master = serialtest.Plug(t, link)
	defer master.Close()
	wantState(true)
	master.Write([]byte("AFTER123\r"))
	wantLine(t, lines, "AFTER123")
}

func TestScannerAbsentAtStartIsReportedOnce(t *testing.T) {
	states := make(chan state, 16)
	s := &Scanner{Name: "x", Port: filepath.Join(t.TempDir(), "none"), Baud: 9600,
		MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond,
		Log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnState: func(up bool, err error) { states <- state{up, err} }}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	s.Run(ctx)
	close(states)
	var n int
	for st := range states {
		if st.up || st.err == nil {
			t.Fatalf("absent scanner reported up: %+v", st)
		}
		n++
	}
	if n != 1 {
		t.Fatalf("absent scanner reported %d times, want once", n)
	}
}
