package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"time"

	"github.com/lockerd/lockerd/drivers/sim"
	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/locker/boltstore"
	"github.com/lockerd/lockerd/locker/lockertest"
	"github.com/lockerd/lockerd/sync/hub"
	"github.com/lockerd/lockerd/sync/linkstore"
	"github.com/lockerd/lockerd/sync/mqttlink"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// rig is one in-process locker: a bbolt store in dir, the sim, the core.
// linkState is the MQTT link's state in the rig's store file, as lockerd
// keeps it.
func (r *rig) linkState() (mqttlink.State, error) { return linkstore.New(r.store.DB()) }

type rig struct {
	dir   string
	store *boltstore.Store
	hw    *sim.Hardware
	l     *locker.Locker
	stop  context.CancelFunc
	done  chan struct{}
}

func rigSettings(id string) locker.Settings {
	p := locker.DefaultPolicy()
	p.MaxFailedCodes = 100
	return locker.Settings{LockerID: id, Policy: p, LockPulse: locker.MinLockPulse, MaxConcurrentPulses: 2,
		Compartments: []locker.Compartment{{ID: "S1", Size: locker.SizeS, Lock: "L1", Sensor: "D1"}},
		Devices:      []locker.Device{{Name: "front", Role: locker.RolePickup}, {Name: "returns", Role: locker.RoleReturn}},
		Return:       &locker.ReturnSlot{Lock: "LR", Sensor: "DR", Pattern: regexp.MustCompile(`^[0-9]{8,14}$`)}}
}

func newRig(dir, id string) (*rig, error) {
	set := rigSettings(id)
	hw, err := sim.New(sim.Config{Doors: []sim.Door{{ID: "S1", Lock: "L1", Sensor: "D1"}, {ID: locker.ReturnSlotID, Lock: "LR", Sensor: "DR"}},
		OpenDelay: time.Millisecond, AutoClose: 5 * time.Millisecond, RelayActiveLow: true})
	if err != nil {
		return nil, err
	}
	st, err := boltstore.Open(filepath.Join(dir, "lockerd.db"), boltstore.Options{})
	if err != nil {
		return nil, err
	}
	l, err := locker.New(set, st, hw, lockertest.Key, locker.SystemClock{}, quiet)
	if err != nil {
		return nil, err
	}
	if err := l.Start("bench"); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &rig{dir: dir, store: st, hw: hw, l: l, stop: cancel, done: make(chan struct{})}
	go func() { l.Run(ctx); close(r.done) }()
	return r, nil
}

func (r *rig) close() {
	r.stop()
	<-r.done
	r.hw.Close()
	r.store.Close()
}

// startMosquitto runs a broker on a free loopback port for the bench.
func startMosquitto(dir string) (string, func(), error) {
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		if _, e := os.Stat("/usr/sbin/mosquitto"); e != nil {
			return "", nil, fmt.Errorf("mosquitto not installed (apt-get install -y mosquitto)")
		}
		bin = "/usr/sbin/mosquitto"
	}
	port, err := freePort()
	if err != nil {
		return "", nil, err
	}
	conf := filepath.Join(dir, "mosquitto.conf")
	user := ""
	if os.Getuid() == 0 {
		user = "user root\n"
	}
	os.WriteFile(conf, []byte(fmt.Sprintf("%slistener %d 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\nmax_inflight_messages 0\nset_tcp_nodelay true\n", user, port)), 0o644)
	cmd := exec.Command(bin, "-c", conf)
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	url := fmt.Sprintf("tcp://127.0.0.1:%d", port)
	if err := waitPort(port); err != nil {
		cmd.Process.Kill()
		return "", nil, err
	}
	return url, func() { cmd.Process.Kill(); cmd.Wait() }, nil
}

// withBroker makes a temporary directory with a Mosquitto running in it
// for one bench, and removes both afterwards.
func withBroker(name string, f func(dir, url string) error) error {
	dir, err := os.MkdirTemp("", "lockerbench-"+name)
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	url, stop, err := startMosquitto(dir)
	if err != nil {
		return err
	}
	defer stop()
	return f(dir, url)
}

// startHub runs a lockerhub serving lockers on url with a fresh signing
// key until stop.
func startHub(dir, url string, lockers ...string) (h *hub.Hub, key ed25519.PrivateKey, stop func(), err error) {
	_, key, _ = ed25519.GenerateKey(rand.Reader)
	h, err = hub.New(hub.Config{Brokers: []string{url}, SigningKey: key, StorePath: filepath.Join(dir, "hub.db"), Lockers: lockers, Log: quiet})
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	for !h.Connected() {
		time.Sleep(5 * time.Millisecond)
	}
	return h, key, func() { cancel(); <-done; h.Close() }, nil
}
