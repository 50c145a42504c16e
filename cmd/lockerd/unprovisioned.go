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
	"path/filepath"
	"strings"

	"github.com/lockerd/lockerd/cmd/internal/provisioning"
	"github.com/lockerd/lockerd/drivers/serialscan"
	"github.com/lockerd/lockerd/locker"
)

// errProvisioned: the cabinet was provisioned; lockerd runs again on it.
var errProvisioned = errors.New("provisioned")

// provisionPrefix starts the text of a provisioning QR code.
const provisionPrefix = "lockerd-provision:"

// unprovisioned waits for a provisioning QR code on one of ports and
// provisions the cabinet, writing its configuration as cfgPath.
func unprovisioned(ctx context.Context, cfgPath string, ports []string, log *slog.Logger) error {
	if filepath.Base(cfgPath) != "lockerd.yaml" {
		return fmt.Errorf("%s does not exist; provisioning writes lockerd.yaml: give -config DIR/lockerd.yaml", cfgPath)
	}
	if len(ports) == 0 {
		ports, _ = filepath.Glob("/dev/serial/by-id/*")
	}
	if len(ports) == 0 {
		return fmt.Errorf("%s does not exist and no serial scanner was found: provision this cabinet with lockerctl provision (docs/fleet.md)", cfgPath)
	}
	log.Warn("not provisioned: scan the provisioning QR code on a scanner, or run lockerctl provision", "config", cfgPath, "scanners", ports)
	lines := make(chan string, 4)
	for _, port := range ports {
		s := &serialscan.Scanner{Name: filepath.Base(port), Port: port, Baud: 9600, Log: log}
		s.OnLine = func(line string) {
			select {
			case lines <- line:
			default: // one at a time
			}
		}
		go s.Run(ctx)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case line := <-lines:
			text := locker.CleanScan(line)
			if !strings.HasPrefix(text, provisionPrefix) {
				// Never logged: it may be anything (a pickup code).
				log.Info("not a provisioning code: ignored")
				continue
			}
			path, err := provisioning.Run(provisioning.Args{URI: text, Dir: filepath.Dir(cfgPath)}, io.Discard)
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
