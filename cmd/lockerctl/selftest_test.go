package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lockerd/lockerd/drivers/lockboard/lockboardtest"
	"github.com/lockerd/lockerd/drivers/serialscan/serialtest"
	"github.com/lockerd/lockerd/locker/boltstore"
)

// cabinetFile writes a config for a small cabinet on backend hw (YAML for
// the hardware section and pins) and returns its path.
func cabinetFile(t *testing.T, hardware, comps, scanners string) string {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "pickup.key"), []byte(strings.Repeat("ab", 32)+"\n"), 0o600)
	text := fmt.Sprintf(`locker: {id: nb-test-01}
store: {path: lockerd.db}
security: {pickup_key_file: pickup.key}
policy: {door_open_confirm: 1s}
hardware:
%s
scanners:
%s
compartments:
%s
`, hardware, scanners, comps)
	p := filepath.Join(dir, "lockerd.yaml")
	os.WriteFile(p, []byte(text), 0o600)
	return p
}

func TestSelftestOnSim(t *testing.T) {
	dir := t.TempDir()
	front := filepath.Join(dir, "scanner-front")
	serialtest.Plug(t, front)
	cfg := cabinetFile(t, "  backend: sim\n  lock_pulse: 50ms\n  sim: {open_delay: 5ms, auto_close: 150ms}",
		"  - {id: A01, size: S, lock: GPIO4, sensor: GPIO17}\n  - {id: A02, size: M, lock: GPIO5, sensor: GPIO18}",
		"  - {name: front, port: "+front+", role: pickup}\n  - {name: side, port: "+filepath.Join(dir, "absent")+", role: pickup}")
	out, errw, code := ctl(t, "-config", cfg, "selftest", "--close-timeout", "5s")
	if code != 1 {
		t.Fatalf("exit %d, want 1 (the absent scanner)\n%s%s", code, out, errw)
	}
	for _, want := range []string{
		"A01: pulsing GPIO4 ... open. Close door A01 now.",
		"COMPARTMENT", "opened and closed",
		"scanner front", "serial, opens", "scanner side", "FAIL",
		"self-test: 1 of 4 checks FAILED",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if !regexp.MustCompile(`A01\s+GPIO4\s+GPIO17\s+ok\s+opened and closed`).MatchString(out) {
		t.Errorf("no passing row for A01:\n%s", out)
	}
	if strings.Count(out, "opened and closed") != 2 {
		t.Errorf("both doors should pass:\n%s", out)
	}
}

// On lock boards: a dry run pulses nothing and forgives a lost first
// reply; a board that does not answer fails its doors and the test exits 1.
func TestSelftestOnLockBoards(t *testing.T) {
	adapter := filepath.Join(t.TempDir(), "usb-FTDI-if00-port0")
	boards := lockboardtest.NewBus("cu", 1, 2)
	boards.AutoClose = 100 * time.Millisecond
	// Board 1's first reply is lost on the line: one missed poll is noise,
	// and the dry run must still pass.
	boards.DropReplies(1)
	go boards.Serve(serialtest.PlugListening(t, adapter))
	cfg := cabinetFile(t, "  backend: lockboard\n  lockboard: {port: "+adapter+", reply_timeout: 200ms, poll: 50ms}",
		"  - {id: A01, size: S, lock: B1/L1, sensor: B1/S1}\n  - {id: B01, size: M, lock: B2/L1, sensor: B2/S1}", "  []")

	out, errw, code := ctl(t, "-config", cfg, "selftest", "--dry-run")
	if code != 0 || !strings.Contains(out, "dry run (nothing pulsed): all 2 checks passed") || !strings.Contains(out, "reads closed") {
		t.Fatalf("dry run: exit %d\n%s%s", code, out, errw)
	}
	if n := len(boards.Unlocks()); n != 0 {
		t.Fatalf("dry run sent %d unlock frames", n)
	}

	boards.Mute(2, true)
	out, errw, code = ctl(t, "-config", cfg, "selftest", "--close-timeout", "2s")
	if code != 1 {
		t.Fatalf("exit %d with board 2 silent\n%s%s", code, out, errw)
	}
	if !strings.Contains(out, "opened and closed") || !strings.Contains(out, "B01") || !strings.Contains(out, "1 of 2 checks FAILED") {
		t.Fatalf("output:\n%s", out)
	}
	if u := boards.Unlocks(); len(u) != 1 || u[0].Board != 1 {
		t.Fatalf("unlocks %+v: board 1's door once", u)
	}
}

// An adapter that reads back what it sends, on 8a boards (where an echo
// reads as a reply): with hardware.lockboard.echo the self-test passes;
// without it the echo is found at the first poll, said, and dropped, and
// the self-test passes too; with it set on an adapter that does not echo,
// the detail points at the setting (docs/lockboard.md).
func TestSelftestFindsAnEchoingAdapter(t *testing.T) {
	for _, tc := range []struct {
		adapterEchoes bool
		echo          string
		code          int
		wantText      string
	}{
		{true, "true", 0, "opened and closed"},
		{true, "false", 0, "adapter echoes what it sends"},
		{false, "true", 1, "hardware.lockboard.echo"},
	} {
		adapter := filepath.Join(t.TempDir(), "usb-CH340-if00-port0")
		boards := lockboardtest.NewBus("8a", 1)
		boards.Echo = tc.adapterEchoes
		boards.AutoClose = 100 * time.Millisecond
		go boards.Serve(serialtest.PlugListening(t, adapter))
		cfg := cabinetFile(t, "  backend: lockboard\n  lockboard: {port: "+adapter+", protocol: 8a, reply_timeout: 200ms, poll: 50ms, echo: "+tc.echo+"}",
			"  - {id: A01, size: S, lock: B1/L1, sensor: B1/S1}", "  []")
		out, errw, code := ctl(t, "-config", cfg, "selftest", "--close-timeout", "2s")
		if code != tc.code || !strings.Contains(out+errw, tc.wantText) {
			t.Errorf("adapter echoes %v, echo %s: exit %d, want %d and %q\n%s%s", tc.adapterEchoes, tc.echo, code, tc.code, tc.wantText, out, errw)
		}
	}
}

// With lockerd running on the cabinet (its store open), the self-test
// refuses: two programs would fight over the lines and the bus.
func TestSelftestRefusesWhileLockerdRuns(t *testing.T) {
	cfg := cabinetFile(t, "  backend: sim\n  lock_pulse: 50ms\n  sim: {open_delay: 5ms, auto_close: 50ms}",
		"  - {id: A01, size: S, lock: GPIO4, sensor: GPIO17}", "  []")
	// A store that does not exist yet, or is closed, is no obstacle.
	if _, errw, code := ctl(t, "-config", cfg, "selftest", "--dry-run"); code != 0 {
		t.Fatalf("no store yet: exit %d %s", code, errw)
	}
	store := filepath.Join(filepath.Dir(cfg), "lockerd.db")
	st, err := boltstore.Open(store, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, errw, code := ctl(t, "-config", cfg, "selftest", "--dry-run")
	if code != 2 || !strings.Contains(errw, "lockerd is running") || !strings.Contains(errw, "systemctl stop lockerd") {
		t.Fatalf("store held: exit %d\n%s", code, errw)
	}
	st.Close()
	if _, errw, code := ctl(t, "-config", cfg, "selftest", "--dry-run"); code != 0 {
		t.Fatalf("store closed again: exit %d %s", code, errw)
	}
}
