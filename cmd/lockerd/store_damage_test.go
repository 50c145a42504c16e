package main

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/locker/boltstore"
	"github.com/lockerd/lockerd/locker/boltstore/boltstoretest"
	"github.com/lockerd/lockerd/locker/httpapi"
)

// runToExit runs lockerd on cfg until it exits by itself and returns its
// exit status and stderr.
func runToExit(t *testing.T, cfg string) (int, string) {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(lockerdBin, "-config", cfg)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatal(err)
		}
		return cmd.ProcessState.ExitCode(), stderr.String()
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done // its output copied to the end before it is read
		t.Fatalf("lockerd did not exit:\n%s", stderr.String())
		return 0, ""
	}
}

// TestDamagedStoreIsMovedAsideNotReplaced: an empty, a truncated and a
// store with damaged pages each stop lockerd with exit status 65 (the
// unit's RestartPreventExitStatus) and a message saying what and how to
// recover; the file is moved aside; the next start refuses to make a new
// empty store in its place; after recovery lockerd serves the orders it
// had.
func TestDamagedStoreIsMovedAsideNotReplaced(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, path string)
		says   string
		orders bool // orders come back after recovery
	}{
		{"zero length", func(t *testing.T, p string) { os.Truncate(p, 0) }, "is empty", false},
		{"truncated to half", func(t *testing.T, p string) { boltstoretest.Truncate(t, p, 0.5) }, "is truncated", false},
		{"damaged pages", func(t *testing.T, p string) { boltstoretest.CorruptPages(t, p, 0.3) }, "store damaged", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCabinet(t, "0s")
			d := start(t, c.Config)
			for i := 0; i < 300; i++ {
				d.addOrder(httpapi.AddOrderRequest{Size: "S", TTL: "72h", Assigned: true,
					Items: []locker.Item{{Barcode: "9787532736744", Title: strings.Repeat("A long title ", 8)}}})
			}
			d.stop()
			tt.damage(t, c.Store)

			code, stderr := runToExit(t, c.Config)
			if code != 65 || !strings.Contains(stderr, tt.says) || !strings.Contains(stderr, "lockerctl store recover") {
				t.Fatalf("exit %d, want 65 saying %q and how to recover:\n%s", code, tt.says, stderr)
			}
			aside, ok := boltstore.PendingDamaged(c.Store)
			if _, err := os.Stat(c.Store); !ok || err == nil {
				t.Fatalf("damaged store not moved aside (aside %q, store still there: %v)", aside, err == nil)
			}
			// Again: no new, empty store in its place.
			code, stderr = runToExit(t, c.Config)
			if code != 65 || !strings.Contains(stderr, "does not start on a new, empty store") {
				t.Fatalf("second start: exit %d:\n%s", code, stderr)
			}
			if _, err := os.Stat(c.Store); err == nil {
				t.Fatal("a new store was made in place of the damaged one")
			}

			rep, err := boltstore.Recover(aside, c.Store) // what lockerctl store recover runs
			if err != nil {
				t.Fatal(err)
			}
			os.Rename(aside, aside+boltstore.RecoveredSuffix)
			t.Logf("recovered: %d orders, %d events, lost %d", rep.Orders, rep.Events, len(rep.Lost))
			d = start(t, c.Config)
			if tt.orders && rep.Orders == 0 {
				t.Fatal("no order recovered from a store with damaged pages")
			}
			if st := d.status(); st.Orders[locker.OrderAssigned] != rep.Orders {
				t.Fatalf("lockerd serves %d orders, %d were recovered", st.Orders[locker.OrderAssigned], rep.Orders)
			}
		})
	}
}

// TestPanicTurnsHealthRed: the store is damaged under a running lockerd.
// Reading it panics inside bbolt; the panic is caught (lockerd keeps
// running), /healthz turns red with the reason, the kiosk goes out of
// service and no door opens.
func TestPanicTurnsHealthRed(t *testing.T) {
	c := newCabinet(t, "0s")
	d := start(t, c.Config)
	code := d.addOrder(httpapi.AddOrderRequest{Size: "S", TTL: "72h"}).Code
	for i := 0; i < 100; i++ {
		d.addOrder(httpapi.AddOrderRequest{Size: "S", TTL: "72h", Assigned: true})
	}
	boltstoretest.CorruptPages(t, c.Store, 0.9)
	var body string
	until(t, "/healthz red", func() bool {
		d.call("GET", "/v1/orders", nil, nil) // reads the damaged pages, if the run loop has not yet
		resp, err := http.Get("http://" + d.api + "/healthz")
		if err != nil {
			t.Fatalf("lockerd stopped answering: %v\n%s", err, d.logs())
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(raw)
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	if !strings.Contains(body, "panic") {
		t.Fatalf("/healthz says %q", body)
	}
	if res, err := d.client().Scan("keypad", code); err == nil && res.Outcome == locker.OutcomeOpened {
		t.Fatal("a door opened on a faulted locker")
	}
	// The kiosk's state: out of service (or the request itself failing on
	// the damaged store), never serving.
	var st struct{ Serving bool }
	if err := d.call("GET", "/kiosk/state", nil, &st); err == nil && st.Serving {
		t.Fatal("kiosk serving on a faulted locker")
	}
	if !strings.Contains(d.logs(), "locker faulted") {
		t.Fatal("the fault is not in the log")
	}
}
