package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/lockerd/lockerd/drivers/hidscan"
	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/locker/httpapi"
)

// TestPiBuildsUnderQemu cross-builds lockerd for the Raspberry Pi (arm64,
// and armv7 for 32-bit Raspberry Pi OS), runs each under qemu-user on a sim
// cabinet, and serves a pickup through the API and one typed by a
// keyboard-wedge scanner (evdev records are 24 bytes to a 64-bit process,
// 16 to a 32-bit one), then one on simulated lock boards: proof that the
// Pi builds work.
func TestPiBuildsUnderQemu(t *testing.T) {
	for _, target := range []struct {
		arch, arm, qemu string
		eventSize       int
		cpu             string // qemu -cpu: the oldest the build must run on
	}{
		{"arm64", "", "qemu-aarch64-static", 24, ""},
		{"arm", "7", "qemu-arm-static", 16, ""},
		// The armhf package's build (GOARM=6) on the Pi Zero's and Pi 1's
		// ARM1176, which has no ARMv7 instructions.
		{"arm", "6", "qemu-arm-static", 16, "arm1176"},
	} {
		t.Run(target.arch+target.arm, func(t *testing.T) {
			qemu, err := exec.LookPath(target.qemu)
			if err != nil {
				t.Fatalf("%s is not installed: the Pi builds are run under qemu-user (Debian: apt-get install -y qemu-user-static; `make test` installs it as root)", target.qemu)
			}
			wrapper := []string{qemu}
			if target.cpu != "" {
				wrapper = append(wrapper, "-cpu", target.cpu)
			}
			bin := filepath.Join(t.TempDir(), "lockerd")
			build := exec.Command("go", "build", "-trimpath", "-o", bin, ".")
			build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+target.arch, "GOARM="+target.arm)
			if out, err := build.CombinedOutput(); err != nil {
				t.Fatalf("cross build: %v\n%s", err, out)
			}
			c := newCabinet(t, "50ms")
			wedge := hidFront(t, c)
			d := launchBin(t, bin, c.Config, nil, wrapper...)
			rep := d.addOrder(httpapi.AddOrderRequest{Compartment: "A01"})
			if res := d.scan("keypad", rep.Code); res.Outcome != locker.OutcomeOpened || res.Compartments[0] != "A01" {
				t.Fatalf("pickup under qemu: %+v", res)
			}
			d.waitEvent(locker.EvPickupCompleted, map[string]any{"order_id": rep.Order.ID})
			rep = d.addOrder(httpapi.AddOrderRequest{Compartment: "A02"})
			if _, err := wedge.Write(hidscan.KeystrokesFor(target.eventSize, rep.Code+"\r")); err != nil {
				t.Fatal(err)
			}
			d.waitEvent(locker.EvPickupCompleted, map[string]any{"order_id": rep.Order.ID})
			d.stop()

			// The same build on lock boards: the serial port's termios
			// set-up and the bus run in the arm binary.
			c = newCabinet(t, "0s")
			boards := onLockBoards(t, c)
			d = launchBin(t, bin, c.Config, nil, wrapper...)
			rep = d.addOrder(httpapi.AddOrderRequest{Compartment: "B01"})
			if res := d.scan("keypad", rep.Code); res.Outcome != locker.OutcomeOpened {
				t.Fatalf("pickup on lock boards under qemu: %+v", res)
			}
			if u := boards.Unlocks(); len(u) != 1 || u[0].Board != 1 || u[0].Channel != 4 {
				t.Fatalf("unlock frames %+v, want one for board 1 channel 4", u)
			}
			boards.SetDoor(1, 4, false)
			d.waitEvent(locker.EvPickupCompleted, map[string]any{"order_id": rep.Order.ID})
			d.stop()
		})
	}
}

// hidFront makes the cabinet's front scanner a keyboard-wedge one read
// from a FIFO, and returns the FIFO's writing end (held open read-write,
// so neither side waits for the other to open it).
func hidFront(t *testing.T, c *cabinet) *os.File {
	t.Helper()
	fifo := filepath.Join(c.Dir, "usb-Scanner-event-kbd")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	w, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	raw, err := os.ReadFile(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	old := "{name: front, port: " + c.Front + ", baud: 9600, role: pickup}"
	if !strings.Contains(string(raw), old) {
		t.Fatalf("front scanner not found in the config:\n%s", raw)
	}
	text := strings.Replace(string(raw), old, "{name: front, type: hid, port: "+fifo+", role: pickup}", 1)
	if err := os.WriteFile(c.Config, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return w
}
