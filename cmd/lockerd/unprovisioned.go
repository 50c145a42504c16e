package main

// A cabinet with lockerd installed and no configuration yet runs in its
// unprovisioned mode: it reads the serial scanners it is given (or finds
// under /dev/serial/by-id) for a provisioning QR code (lockerhub
// provision create prints one), provisions itself with it, and runs on
// what was written. Nothing else is served meanwhile: no door can open.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"

	"github.com/lockerd/lockerd/cmd/internal/provisioning"
	"github.com/lockerd/lockerd/drivers/serialscan"
	"github.com/lockerd/lockerd/locker"
)

// errProvisioned: the cabinet was provisioned; lockerd runs again on it.
var errProvisioned = errors.New("provisioned")

// provisionPrefix starts the text of a provisioning QR code.
const provisionPrefix = "lockerd-provision:"

// unprovisioned waits for the cabinet to be provisioned: a provisioning
// QR code scanned on one of ports (by default every serial scanner under
// /dev/serial/by-id, one plugged in later too), or its configuration
// written meanwhile by lockerctl provision. Either way lockerd then runs
// on it. Under systemd it says it is up (Type=notify) and feeds the
// watchdog while it waits, so that waiting is not taken for a hang.
func unprovisioned(ctx context.Context, cfgPath string, ports []string, log *slog.Logger) error {
	if filepath.Base(cfgPath) != "lockerd.yaml" {
		return fmt.Errorf("%s does not exist; provisioning writes lockerd.yaml: give -config DIR/lockerd.yaml", cfgPath)
	}
	fixed := len(ports) > 0
	lines := make(chan string, 4)
	reading := map[string]bool{}
	read := func(port string) {
		if reading[port] {
			return
		}
		reading[port] = true
		s := &serialscan.Scanner{Name: filepath.Base(port), Port: port, Baud: 9600, Log: log}
		s.OnLine = func(line string) {
			select {
			case lines <- line:
			default: // one at a time
			}
		}
		go s.Run(ctx)
	}
	findScanners := func() {
		if !fixed {
			ports, _ = filepath.Glob("/dev/serial/by-id/*")
		}
		for _, p := range ports {
			if !reading[p] {
				log.Info("reading a scanner for the provisioning QR code", "scanner", p)
				read(p)
			}
		}
	}
	findScanners()
	log.Warn("not provisioned: scan the provisioning QR code on a scanner, or run lockerctl provision", "config", cfgPath, "scanners", ports)
	notifyReady(log)
	sd.SdNotify(false, "STATUS=not provisioned: scan the provisioning QR code, or run lockerctl provision")
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			sd.SdNotify(false, sd.SdNotifyWatchdog) // nothing outside systemd
			if _, err := os.Stat(cfgPath); err == nil {
				log.Info("provisioned (by lockerctl provision): lockerd starts on its configuration", "config", cfgPath)
				return errProvisioned
			}
			findScanners()
		case line := <-lines:
			text := locker.CleanScan(line)
			if !strings.HasPrefix(text, provisionPrefix) {
				// Never logged: it may be anything (a pickup code).
				log.Info("not a provisioning code: ignored")
				continue
			}
			path, err := provisioning.Run(provisioning.Args{URI: text, Dir: filepath.Dir(cfgPath), Owner: serviceOwner()}, io.Discard)
			if err != nil {
				log.Error("provisioning failed: scan a new code", "err", err)
				continue
			}
			if _, err := os.Stat(cfgPath); err != nil {
				return fmt.Errorf("provisioned, but %s is not there: %w", path, err)
			}
			log.Info("provisioned: lockerd starts on its configuration", "config", path)
			return errProvisioned
		}
	}
}

// serviceOwner is the user a provisioning by lockerd gives its secrets
// to: under systemd lockerd is that user already (the files are its
// own); run as root by hand, the package's service user, when there is
// one, so that the service can read them.
func serviceOwner() string {
	if os.Geteuid() != 0 {
		return ""
	}
	if _, err := user.Lookup("lockerd"); err != nil {
		return ""
	}
	return "lockerd"
}
