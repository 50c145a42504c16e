package main

import (
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/locker/httpapi"
)

// TestSystemdNotifyAndWatchdog runs lockerd as systemd would (Type=notify,
// WatchdogSec=2): it says READY=1 once serving and feeds the watchdog.
func TestSystemdNotifyAndWatchdog(t *testing.T) {
	sock, conn := notifySocket(t)
	c := newCabinet(t, "1s")
	d := launch(t, c.Config, []string{"NOTIFY_SOCKET=" + sock, "WATCHDOG_USEC=2000000"})
	awaitNotifications(t, conn, "READY=1", "WATCHDOG=1")
	d.stop()
}

// TestSystemdUnprovisioned: a blank cabinet's lockerd under systemd
// (the package starts it with no configuration) says it is up, what it
// waits for, and feeds the watchdog while it waits, so that systemd
// neither times its start out nor kills it as hung.
func TestSystemdUnprovisioned(t *testing.T) {
	sock, conn := notifySocket(t)
	d := startBin(t, lockerdBin, filepath.Join(t.TempDir(), "lockerd.yaml"), []string{"NOTIFY_SOCKET=" + sock, "WATCHDOG_USEC=2000000"})
	awaitNotifications(t, conn, "READY=1", "STATUS=not provisioned: scan the provisioning QR code, or run lockerctl provision", "WATCHDOG=1")
	select {
	case <-d.done:
		t.Fatalf("unprovisioned lockerd exited: %v\n%s", d.err, d.logs())
	default:
	}
}

// notifySocket is a systemd notification socket (NOTIFY_SOCKET) for the
// test, closed at its end.
func notifySocket(t *testing.T) (string, *net.UnixConn) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return sock, conn
}

// awaitNotifications reads systemd notifications from conn until each
// of want has come (within 10 s).
func awaitNotifications(t *testing.T, conn *net.UnixConn, want ...string) {
	t.Helper()
	seen := map[string]bool{}
	buf := make([]byte, 4096)
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for len(seen) < len(want) {
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("systemd notifications: want %q, have %v: %v", want, seen, err)
		}
		for _, line := range strings.Split(string(buf[:n]), "\n") {
			if slices.Contains(want, line) {
				seen[line] = true
			}
		}
	}
}

// TestMetricsAndHealth: /metrics counts what happened, /healthz answers.
func TestMetricsAndHealth(t *testing.T) {
	c := newCabinet(t, "50ms")
	d := start(t, c.Config)
	rep := d.addOrder(httpapi.AddOrderRequest{Compartment: "A01"})
	d.scan("keypad", rep.Code)
	d.scan("keypad", "WRONG123")
	d.waitEvent(locker.EvPickupDenied, nil)
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + d.api + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/healthz"); code != 200 || strings.TrimSpace(body) != "ok" {
		t.Fatalf("healthz: %d %s", code, body)
	}
	code, body := get("/metrics")
	for _, want := range []string{"lockerd_pickups_total 1", `lockerd_pickup_denials_total{reason="unknown"} 1`,
		"lockerd_relay_pulses_total 1", "lockerd_mqtt_connected 0", "lockerd_store_healthy 1", `lockerd_scanner_up{scanner="front"}`} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}
