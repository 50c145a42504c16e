package main

import (
	"bytes"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lockerd/lockerd/drivers/hidscan"
	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/locker/httpapi"
	"github.com/lockerd/lockerd/locker/lockertest"
	"github.com/lockerd/lockerd/sync/brokertest"
	"github.com/lockerd/lockerd/sync/hub"
	"github.com/lockerd/lockerd/sync/hub/api"
	"github.com/lockerd/lockerd/sync/hub/fleet"
	"github.com/lockerd/lockerd/sync/hub/hubtest"
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

// TestPiUpdateUnderQemu: the Pi builds (arm64, armv7) take a software
// update under qemu-user. From a release carrying both Pi binaries, each
// takes its own architecture's, refuses it while it has been altered at
// the hub after signing, and installs, runs and confirms it once it is
// the signed one. The new binary asked for its version, and lockerd
// running itself again, are ARM binaries started by an ARM binary:
// binfmt_misc hands them to qemu, as it would on the Pi to the CPU.
func TestPiUpdateUnderQemu(t *testing.T) {
	t.Parallel() // self-contained (its own broker, hub and directories), and mostly waiting
	for _, name := range []string{"qemu-arm", "qemu-aarch64"} {
		if b, err := os.ReadFile("/proc/sys/fs/binfmt_misc/" + name); err != nil || !strings.HasPrefix(string(b), "enabled") {
			t.Fatalf("%s is not registered with binfmt_misc (%v): an updating Pi build starts ARM binaries itself. `make test` registers it as root (.ci/test-deps); by hand: mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc && cat /usr/lib/binfmt.d/%s.conf > /proc/sys/fs/binfmt_misc/register", name, err, name)
		}
	}
	targets := []struct{ name, goarch, goarm, qemu string }{
		{"arm64", "arm64", "", "qemu-aarch64-static"},
		{"armv7", "arm", "7", "qemu-arm-static"},
	}
	bins := t.TempDir()
	cross := func(goarch, goarm, v string) string {
		out := filepath.Join(bins, "lockerd-"+goarch+goarm+"-"+v)
		build := exec.Command("go", "build", "-trimpath", "-ldflags", "-X main.version="+v, "-o", out, ".")
		build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch, "GOARM="+goarm)
		if msg, err := build.CombinedOutput(); err != nil {
			t.Fatalf("cross build %s%s %s: %v\n%s", goarch, goarm, v, err, msg)
		}
		return out
	}
	older, newer := map[string]string{}, map[string]string{}
	for _, tg := range targets {
		older[tg.name], newer[tg.name] = cross(tg.goarch, tg.goarm, "0.16.0"), cross(tg.goarch, tg.goarm, "0.16.1")
	}

	mq := brokertest.StartMosquitto(t, brokertest.MosquittoOptions{})
	key, pub := newKey(t)
	h := hubtest.Start(t, hub.Config{Brokers: []string{mq.URL}, SigningKey: key, PickupKey: lockertest.Key,
		Lockers: []string{lockerID}, ClientID: "lockerhub", ReleasesDir: filepath.Join(t.TempDir(), "releases")})
	srv := httptest.NewServer(api.New(api.ForHub(h)))
	defer srv.Close()
	for _, tg := range targets {
		addRelease(t, h, "0.16.1", tg.name, newer[tg.name], false)
	}

	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			qemu, err := exec.LookPath(tg.qemu)
			if err != nil {
				t.Fatalf("%s is not installed (Debian: apt-get install -y qemu-user-static; `make test` installs it as root)", tg.qemu)
			}
			c := newCabinet(t, "0s", withMQTT(mq.URL, pub, ""), func(c *cabinet) {
				c.Extra += fmt.Sprintf("update: {hub_url: %q, dir: versions, probation: 30s}\n", srv.URL)
			})
			installed := filepath.Join(t.TempDir(), "lockerd") // the packaged binary
			if b, err := os.ReadFile(older[tg.name]); err != nil || os.WriteFile(installed, b, 0o755) != nil {
				t.Fatalf("install 0.16.0: %v", err)
			}
			d := launchBin(t, installed, c.Config, nil, qemu)
			until(t, "online", func() bool { li, _ := h.Locker(lockerID); return li.Online && li.Version == "0.16.0" })
			start := func() {
				t.Helper()
				if _, err := h.Fleet().StartRollout(fleet.NewRollout{Version: "0.16.1", Lockers: []string{lockerID}, Stages: []int{100}}, "test"); err != nil {
					t.Fatal(err)
				}
			}

			// Altered after it was signed: refused after the download.
			stored := filepath.Join(h.Fleet().ReleasesDir(), "0.16.1", tg.name)
			f, err := os.OpenFile(stored, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Write([]byte("tampered"))
			f.Close()
			start()
			if ro := rolloutResult(t, h, d, "0.16.1", "failed"); !strings.Contains(ro.Reasons[lockerID], "does not match its signed manifest") {
				t.Fatalf("tampered %s binary: %v", tg.name, ro.Reasons)
			}

			// Signed again as it was built: installed and run.
			addRelease(t, h, "0.16.1", tg.name, newer[tg.name], false)
			start()
			d.reattach(2, 3*time.Minute)
			rolloutResult(t, h, d, "0.16.1", "applied")
			if !strings.Contains(lastReady(d.logs()), `"version":"0.16.1"`) {
				t.Fatalf("not running 0.16.1:\n%s", d.logs())
			}
			current := filepath.Join(filepath.Dir(c.Config), "versions", "current")
			got, err := os.ReadFile(current)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := os.ReadFile(newer[tg.name])
			if !bytes.Equal(got, want) {
				t.Fatalf("versions/current is not the %s build of 0.16.1", tg.name)
			}
			// Still a working locker.
			rep := d.addOrder(httpapi.AddOrderRequest{Compartment: "A01"})
			if res := d.scan("keypad", rep.Code); res.Outcome != locker.OutcomeOpened {
				t.Fatalf("pickup after the update: %+v", res)
			}
			d.stop()
		})
	}
}
