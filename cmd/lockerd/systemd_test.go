package main

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSystemdNotifyAndWatchdog runs lockerd as systemd would (Type=notify,
// WatchdogSec=2): it says READY=1 once serving and feeds the watchdog.
func TestSystemdNotifyAndWatchdog(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := newCabinet(t, "1s")
	d := launch(t, c.Config, []string{"NOTIFY_SOCKET=" + sock, "WATCHDOG_USEC=2000000"})
	want := map[string]bool{"READY=1": false, "WATCHDOG=1": false}
	buf := make([]byte, 4096)
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for !want["READY=1"] || !want["WATCHDOG=1"] {
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("systemd notifications %v: %v", want, err)
		}
		for _, line := range strings.Split(string(buf[:n]), "\n") {
			if _, ok := want[line]; ok {
				want[line] = true
			}
		}
	}
	d.stop()
}
