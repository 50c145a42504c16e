package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/lockerd/lockerd/cmd/internal/fleetsim"
	"github.com/lockerd/lockerd/locker/loopback"
	"github.com/lockerd/lockerd/sync/hub"
	"github.com/lockerd/lockerd/sync/hub/hubbolt"
)

var quiet = fleetsim.Quiet

// startMosquitto runs a broker on a free loopback port for the bench.
func startMosquitto(dir string) (string, int, func(), error) {
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		if _, e := os.Stat("/usr/sbin/mosquitto"); e != nil {
			return "", 0, nil, fmt.Errorf("mosquitto not installed (apt-get install -y mosquitto)")
		}
		bin = "/usr/sbin/mosquitto"
	}
	port, err := loopback.FreePort()
	if err != nil {
		return "", 0, nil, err
	}
	conf := filepath.Join(dir, "mosquitto.conf")
	user := ""
	if os.Getuid() == 0 {
		user = "user root\n"
	}
	os.WriteFile(conf, []byte(fmt.Sprintf("%slistener %d 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\nmax_inflight_messages 0\nset_tcp_nodelay true\n", user, port)), 0o644)
	cmd := exec.Command(bin, "-c", conf)
	if err := cmd.Start(); err != nil {
		return "", 0, nil, err
	}
	url := fmt.Sprintf("tcp://127.0.0.1:%d", port)
	if err := waitPort(port); err != nil {
		cmd.Process.Kill()
		return "", 0, nil, err
	}
	return url, cmd.Process.Pid, func() { cmd.Process.Kill(); cmd.Wait() }, nil
}

// withBroker makes a temporary directory with a Mosquitto running in it
// for one bench, and removes both afterwards.
func withBroker(name string, f func(dir, url string) error) error {
	dir, err := os.MkdirTemp("", "lockerbench-"+name)
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	url, _, stop, err := startMosquitto(dir)
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
	st, err := hubbolt.Open(filepath.Join(dir, "hub.db"))
	if err != nil {
		return nil, nil, nil, err
	}
	h, err = hub.New(hub.Config{Brokers: []string{url}, SigningKey: key, Store: st, Lockers: lockers, Log: quiet})
	if err != nil {
		return nil, nil, nil, err
	}
	return h, key, runHub(h), nil
}
