package main

// A configuration pushed by the central (cmd.config): checked here as a
// technician's would be, written beside the running one, and run by
// lockerd re-executing itself. The new configuration is on probation
// until the locker is healthy on it (store, hardware, broker) within
// mqtt.config_probation; a start that fails, or no health in time, puts
// the previous configuration back and records config.rejected. Files
// beside the configuration (PATH):
//
//	PATH.prev      the configuration before the last push
//	PATH.pending   the push on probation: {version, tries}
//	PATH.rejected  a push that was rolled back, to be recorded

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lockerd/lockerd/cmd/internal/atomicfile"
	"github.com/lockerd/lockerd/cmd/internal/config"
	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/sync/mqttlink"
)

// pendingConfig is PATH.pending.
type pendingConfig struct {
	Version uint64 `json:"version"`
	Tries   int    `json:"tries"`
}

// rejectedConfig is PATH.rejected.
type rejectedConfig struct {
	Version uint64   `json:"version"`
	Reasons []string `json:"reasons"`
}

// errRestart asks main to run lockerd again on its (new) configuration.
var errRestart = errors.New("restarting on a new configuration")

// settleConfig is the first thing lockerd does with its configuration:
// a pushed configuration that already had its start (and did not end
// its probation) is rolled back. It returns the push on probation now,
// if any.
func settleConfig(path string) (*pendingConfig, error) {
	raw, err := os.ReadFile(path + ".pending")
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	var p pendingConfig
	if err == nil {
		err = json.Unmarshal(raw, &p)
	}
	if err != nil {
		return nil, rollbackConfig(path, p.Version, "its probation record is unreadable")
	}
	if p.Tries >= 1 {
		// This configuration started once and did not prove itself healthy
		// (lockerd died, or was stopped, before its probation ended).
		return nil, rollbackConfig(path, p.Version, "lockerd did not come up healthy on it (it stopped or crashed during its probation)")
	}
	p.Tries++
	if err := writeJSONFile(path+".pending", p); err != nil {
		return nil, err
	}
	return &p, nil
}

// rollbackConfig puts PATH.prev back and notes why, for the event.
func rollbackConfig(path string, version uint64, reason string) error {
	raw, err := os.ReadFile(path + ".prev")
	if err != nil {
		return fmt.Errorf("configuration %d must be rolled back (%s), but the previous one is not there: %w", version, reason, err)
	}
	if err := atomicfile.Write(path, raw, 0o640); err != nil {
		return err
	}
	if err := writeJSONFile(path+".rejected", rejectedConfig{Version: version, Reasons: []string{reason}}); err != nil {
		return err
	}
	return os.Remove(path + ".pending")
}

// remoteConfig applies pushed configurations (it is the sync link's
// Configurer) and watches a probation.
type remoteConfig struct {
	path      string
	cur       *config.Config
	l         *locker.Locker
	log       *slog.Logger
	probation time.Duration
	restart   func() // stops lockerd, which main then runs again

	mu       sync.Mutex
	applying bool
}

var _ mqttlink.Configurer = (*remoteConfig)(nil)

// ApplyConfig implements mqttlink.Configurer.
func (rc *remoteConfig) ApplyConfig(version uint64, raw []byte) (string, error) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.applying {
		return "", errors.New("a configuration is being applied already")
	}
	reject := func(reasons ...string) (string, error) {
		rc.l.RecordConfigRejected(locker.ConfigRejected{Version: version, Reasons: reasons})
		rc.log.Warn("pushed configuration refused", "version", version, "reasons", reasons)
		return "", errors.New(strings.Join(reasons, "; "))
	}
	tmp := rc.path + ".new"
	if err := atomicfile.Write(tmp, raw, 0o640); err != nil {
		return "", err
	}
	next, err := config.Load(tmp)
	if err != nil {
		os.Remove(tmp)
		var ps config.Problems
		if errors.As(err, &ps) {
			var reasons []string
			for _, p := range ps {
				reasons = append(reasons, p.String())
			}
			return reject(reasons...)
		}
		return reject(err.Error())
	}
	if next.Locker.ID != rc.cur.Locker.ID {
		os.Remove(tmp)
		return reject(fmt.Sprintf("locker.id %q: this locker is %q", next.Locker.ID, rc.cur.Locker.ID))
	}
	if reasons := droppedInUse(rc.l, rc.cur, next); len(reasons) > 0 {
		os.Remove(tmp)
		return reject(reasons...)
	}
	if reason := releaseKeyChanged(rc.cur, next); reason != "" {
		os.Remove(tmp)
		return reject(reason)
	}
	cur, err := os.ReadFile(rc.path)
	if err != nil {
		return "", err
	}
	if err := atomicfile.Write(rc.path+".prev", cur, 0o640); err != nil {
		return "", err
	}
	if err := writeJSONFile(rc.path+".pending", pendingConfig{Version: version}); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, rc.path); err != nil {
		return "", err
	}
	rc.applying = true
	rc.log.Info("pushed configuration written: restarting on it", "version", version)
	// After the answer is on its way.
	time.AfterFunc(500*time.Millisecond, rc.restart)
	return fmt.Sprintf("configuration %d written; lockerd restarts on it (probation %v)", version, rc.probation), nil
}

// releaseKeyChanged says why next may not be taken when it changes or
// drops the release key the running configuration pins. A pushed
// configuration is signed with the central's key; the release key is
// kept off the hub so that the central's key (stolen with the hub) does
// not choose the binaries: a push must not undo that, neither at once nor
// by dropping the pin (or the update section) now and adding another key
// in a later push. It changes at the cabinet, or by provisioning again.
//
// A successor the release key itself handed over (a signed manifest's
// next_key) may be pinned instead: that is how a rotation ends.
func releaseKeyChanged(cur, next *config.Config) string {
	accepted := acceptedReleaseKeys(cur.Update)
	if accepted == nil {
		return ""
	}
	if next.Update != nil && next.Update.ReleasePub != nil && hasKey(accepted, next.Update.ReleasePub) {
		return ""
	}
	return "update.release_key: this cabinet is pinned to its release key, which a pushed configuration may not change or drop (the central's key would then choose the binaries): change it at the cabinet (lockerctl provision --force, or its configuration file)"
}

// droppedInUse lists the compartments next leaves out that hold an order
// (or are open, or reserved for one): a push may not forget them.
func droppedInUse(l *locker.Locker, cur, next *config.Config) []string {
	keep := map[string]bool{}
	for _, c := range next.Compartments {
		keep[c.ID] = true
	}
	st, err := l.LiveStatus()
	if err != nil {
		return []string{"the store cannot be read to check the compartments: " + err.Error()}
	}
	var out []string
	for _, c := range st.Compartments {
		if keep[c.ID] || !slices.ContainsFunc(cur.Compartments, func(cc config.Comp) bool { return cc.ID == c.ID }) {
			continue
		}
		if c.OrderID != "" || c.State == locker.CompLoaded || c.State == locker.CompOpen || c.State == locker.CompReserved {
			out = append(out, fmt.Sprintf("compartment %s would be dropped, but it is %s (order %s)", c.ID, c.State, c.OrderID))
		}
	}
	return out
}

// settleAtStart records the outcome of the last push once lockerd runs:
// a rollback (config.rejected), or, on probation, health within the bound
// (config.applied) or a rollback and another restart.
func (rc *remoteConfig) settleAtStart(pending *pendingConfig, healthy func() error, done <-chan struct{}) {
	if raw, err := os.ReadFile(rc.path + ".rejected"); err == nil {
		var r rejectedConfig
		if json.Unmarshal(raw, &r) == nil {
			rc.l.RecordConfigRejected(locker.ConfigRejected{Version: r.Version, Reasons: r.Reasons, RolledBack: true})
			rc.log.Error("a pushed configuration was rolled back", "version", r.Version, "reasons", r.Reasons)
		}
		os.Remove(rc.path + ".rejected")
	}
	if pending == nil {
		return
	}
	deadline := time.Now().Add(rc.probation)
	var last error
	for time.Now().Before(deadline) {
		if last = healthy(); last == nil {
			os.Remove(rc.path + ".pending")
			rc.l.RecordConfigApplied(locker.ConfigApplied{Version: pending.Version})
			rc.log.Info("pushed configuration applied", "version", pending.Version)
			return
		}
		select {
		case <-done:
			return // stopped during the probation: the next start rolls back
		case <-time.After(250 * time.Millisecond):
		}
	}
	reason := fmt.Sprintf("not healthy within %v: %v", rc.probation, last)
	if err := rollbackConfig(rc.path, pending.Version, reason); err != nil {
		rc.log.Error("rollback failed", "err", err)
		return
	}
	rc.log.Error("pushed configuration not healthy: the previous one is restored", "version", pending.Version, "reason", reason)
	rc.restart()
}

func writeJSONFile(path string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return atomicfile.Write(path, raw, 0o640)
}

// healthyOn is what a pushed configuration must reach in its probation:
// the core healthy (store, run loop), every door readable (the lock
// hardware answers), and, with a central, the broker connected.
func healthyOn(l *locker.Locker, link *mqttlink.Link) error {
	if err := l.Healthy(5 * time.Second); err != nil {
		return err
	}
	st, err := l.LiveStatus()
	if err != nil {
		return err
	}
	for _, c := range st.Compartments {
		if c.DoorUnknown {
			return fmt.Errorf("door %s cannot be read (its lock hardware does not answer)", c.ID)
		}
	}
	if link != nil && !link.Connected() {
		return errors.New("not connected to the broker")
	}
	return nil
}
