package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/locker/httpapi"
)

// TestPiBuildsUnderQemu cross-builds lockerd for the Raspberry Pi (arm64,
// and armv7 for 32-bit Raspberry Pi OS), runs each under qemu-user on a sim
// cabinet, and serves a pickup through the API: proof that the Pi builds
// work.
func TestPiBuildsUnderQemu(t *testing.T) {
	for _, target := range []struct{ arch, arm, qemu string }{
		{"arm64", "", "qemu-aarch64-static"},
		{"arm", "7", "qemu-arm-static"},
	} {
		t.Run(target.arch+target.arm, func(t *testing.T) {
			qemu, err := exec.LookPath(target.qemu)
			if err != nil {
				t.Fatalf("%s is not installed: the Pi builds are run under qemu-user (Debian: apt-get install -y qemu-user-static; `make test` installs it as root)", target.qemu)
			}
			bin := filepath.Join(t.TempDir(), "lockerd")
			build := exec.Command("go", "build", "-trimpath", "-o", bin, ".")
			build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+target.arch, "GOARM="+target.arm)
			if out, err := build.CombinedOutput(); err != nil {
				t.Fatalf("cross build: %v\n%s", err, out)
			}
			c := newCabinet(t, "50ms")
			d := launchBin(t, bin, c.Config, nil, qemu)
			rep := d.addOrder(httpapi.AddOrderRequest{Compartment: "A01"})
			if res := d.scan("keypad", rep.Code); res.Outcome != locker.OutcomeOpened || res.Compartments[0] != "A01" {
				t.Fatalf("pickup under qemu: %+v", res)
			}
			d.waitEvent(locker.EvPickupCompleted, map[string]any{"order_id": rep.Order.ID})
			d.stop()

			// The same build on lock boards: the serial port's termios
			// set-up and the bus run in the arm binary.
			c = newCabinet(t, "0s")
			boards := onLockBoards(t, c)
			d = launchBin(t, bin, c.Config, nil, qemu)
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
