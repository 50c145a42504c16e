package main

// Software updates (cmd.update). The manifest of this locker's
// architecture is checked against the central's key and the running
// version (a lower one only when the release says it is a rollback); when
// the locker is idle the binary is downloaded from the configured hub
// (resuming a partial download), checked against the manifest's size and
// SHA-256, installed beside the running one under update.dir, and asked
// for its version (a build that does not start is refused there). Then
// update.dir/current points at it (a symlink replaced in one rename),
// and lockerd runs it in its own process. The new version is on
// probation: healthy within update.probation is update.applied;
// otherwise current points back at the previous binary, which runs again
// and records update.failed. A start during the probation (lockerd
// stopped or crashed, and systemd started the packaged binary) rolls
// back as well. The store's schema moves forward only once the new
// version is healthy (until then it runs on the schema the version before
// left, boltstore.Options.KeepSchema), and a rollback release to a build
// of an older schema gets the store brought back to it before it runs
// (storeSchemas, from the new binary's -version). Files in update.dir:
//
//	VERSION/lockerd   each version's binary
//	current           → the binary to run
//	update.pending    the version on probation: {from, to, tries}
//	update.rejected   a version rolled back, to be recorded

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"crypto/ed25519"

	"github.com/lockerd/lockerd/cmd/internal/atomicfile"
	"github.com/lockerd/lockerd/cmd/internal/config"
	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/locker/boltstore"
	"github.com/lockerd/lockerd/sync/mqttlink"
	"github.com/lockerd/lockerd/sync/protocol"
)

// pendingUpdate is update.pending.
type pendingUpdate struct {
	From     string `json:"from"`      // the version before
	FromPath string `json:"from_path"` // its binary
	To       string `json:"to"`
	ToPath   string `json:"to_path"`
	Tries    int    `json:"tries"`
}

// updateOnProbation reports whether this version is a software update on
// its probation: it then runs on the store without upgrading its schema
// (boltstore.Options.KeepSchema), so that a rollback finds it as it was.
func updateOnProbation(u *config.Update) bool {
	if u == nil {
		return false
	}
	raw, err := os.ReadFile(filepath.Join(u.Dir, "update.pending"))
	if err != nil {
		return false
	}
	var p pendingUpdate
	return json.Unmarshal(raw, &p) == nil && p.To == version
}

// schemaStore is what an update asks of the store: the schema it is in,
// the upgrade once healthy, and the way back for an older release.
type schemaStore interface {
	Schema() int
	Upgrade() error
	Downgrade(to int) error
}

// storeSchemas reads the store schemas a build says it runs on, from the
// second line of its -version (main.go): the schema it writes, and the
// oldest it runs on without upgrading. A build from before that line
// (lockerd 0.16) writes and reads schema 2 only.
func storeSchemas(out string) (newest, oldest int) {
	lines := strings.SplitN(out, "\n", 3)
	if len(lines) >= 2 {
		var n, o, n2 int
		if k, _ := fmt.Sscanf(strings.TrimSpace(lines[1]), "store schema %d (runs on %d to %d)", &n, &o, &n2); k == 3 && o <= n && n == n2 && o >= 1 {
			return n, o
		}
	}
	return 2, 2
}

// rejectedUpdate is update.rejected.
type rejectedUpdate struct {
	Version string   `json:"version"`
	Reasons []string `json:"reasons"`
}

// myArch is this binary's architecture as releases name it.
func myArch() string {
	if runtime.GOARCH != "arm" {
		return runtime.GOARCH
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "GOARM" {
				return "armv" + strings.TrimSuffix(s.Value, ",softfloat")
			}
		}
	}
	return "armv7"
}

// compareVersions compares MAJOR.MINOR.PATCH versions (an optional v, a
// -suffix ignored); ok is false when either is not one ("dev").
func compareVersions(a, b string) (int, bool) {
	pa, oka := parseVersion(a)
	pb, okb := parseVersion(b)
	if !oka || !okb {
		return 0, false
	}
	for i := range pa {
		if pa[i] != pb[i] {
			if pa[i] < pb[i] {
				return -1, true
			}
			return 1, true
		}
	}
	return 0, true
}

func parseVersion(v string) ([3]int, bool) {
	v = strings.TrimPrefix(v, "v")
	if i := strings.IndexAny(v, "-+"); i >= 0 {
		v = v[:i]
	}
	parts := strings.Split(v, ".")
	var out [3]int
	if len(parts) != 3 {
		return out, false
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return out, false
		}
		out[i] = n
	}
	return out, true
}

// followCurrent is the launcher's part, before anything else: when
// update.dir/current points at another binary than this one, that one
// runs instead (the active version); a version that had its start and did
// not end its probation is rolled back first.
func followCurrent(u *config.Update) {
	if u == nil {
		return
	}
	self, err := os.Executable()
	if err != nil {
		return
	}
	self, _ = filepath.EvalSymlinks(self)
	target, err := filepath.EvalSymlinks(filepath.Join(u.Dir, "current"))
	if err != nil || target == self {
		return
	}
	if raw, err := os.ReadFile(filepath.Join(u.Dir, "update.pending")); err == nil {
		// Tries counts the launches of the new version: it has one.
		var p pendingUpdate
		if json.Unmarshal(raw, &p) != nil || p.Tries >= 1 {
			// It was launched and did not end its probation (it stopped,
			// or crashed, and systemd started the packaged binary).
			rollbackUpdate(u.Dir, p, "lockerd did not come up healthy on it (it stopped or crashed during its probation)")
			if target, err = filepath.EvalSymlinks(filepath.Join(u.Dir, "current")); err != nil || target == self {
				return
			}
		} else if target == p.ToPath {
			p.Tries++
			if err := writeJSONFile(filepath.Join(u.Dir, "update.pending"), p); err != nil {
				return // not launched without the record that lets it be rolled back
			}
		}
	}
	if err := execBinary(target); err != nil {
		fmt.Fprintf(os.Stderr, "lockerd: the active version %s does not run (%v): running this one\n", target, err)
	}
}

// rollbackUpdate points current back at the previous binary and notes why.
func rollbackUpdate(dir string, p pendingUpdate, reason string) {
	if p.FromPath != "" {
		setCurrent(dir, p.FromPath)
	}
	writeJSONFile(filepath.Join(dir, "update.rejected"), rejectedUpdate{Version: p.To, Reasons: []string{reason}})
	os.Remove(filepath.Join(dir, "update.pending"))
}

// setCurrent points dir/current at target in one rename.
func setCurrent(dir, target string) error {
	tmp := filepath.Join(dir, ".current.new")
	os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, "current"))
}

// execBinary runs path in this process, with this process's arguments.
func execBinary(path string) error {
	return syscall.Exec(path, os.Args, os.Environ())
}

// updater takes releases (it is the sync link's Updater).
type updater struct {
	u        *config.Update
	keys     []ed25519.PublicKey
	l        *locker.Locker
	store    schemaStore
	log      *slog.Logger
	client   *http.Client
	restart  func()
	ctx      context.Context
	idleWait time.Duration

	mu      sync.Mutex
	working bool
}

var _ mqttlink.Updater = (*updater)(nil)

func newUpdater(cfg *config.Config, l *locker.Locker, store schemaStore, log *slog.Logger, restart func(), ctx context.Context) (*updater, error) {
	u := cfg.Update
	up := &updater{u: u, l: l, store: store, log: log, restart: restart, ctx: ctx, idleWait: time.Hour,
		client: &http.Client{Timeout: 10 * time.Minute}}
	if u.ReleasePub != nil {
		// Releases are signed where the release key is kept, never by
		// the hub: a hub's key (stolen with the hub) does not do. Its
		// successors, which it signed, do.
		up.keys = acceptedReleaseKeys(u)
	} else {
		for _, k := range []ed25519.PublicKey{cfg.CentralKey, cfg.CentralNextKey} {
			if k != nil {
				up.keys = append(up.keys, k)
			}
		}
	}
	if u.CAFile != "" {
		pem, err := os.ReadFile(u.CAFile)
		if err != nil {
			return nil, fmt.Errorf("update.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("update.ca_file: no PEM certificate in %s", u.CAFile)
		}
		up.client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	}
	return up, os.MkdirAll(u.Dir, 0o750)
}

// Update implements mqttlink.Updater: the manifest is checked now; the
// rest happens when the locker is idle.
func (up *updater) Update(v string, artifacts map[string]json.RawMessage) (string, error) {
	fail := func(reasons ...string) (string, error) {
		up.l.RecordUpdateFailed(locker.UpdateFailed{Version: v, Reasons: reasons})
		up.log.Warn("software update refused", "version", v, "reasons", reasons)
		return "", errors.New(strings.Join(reasons, "; "))
	}
	arch := myArch()
	raw, ok := artifacts[arch]
	if !ok {
		return fail("the release has no binary for " + arch)
	}
	up.mu.Lock()
	keys := slices.Clone(up.keys)
	up.mu.Unlock()
	m, err := protocol.OpenManifest(raw, keys)
	if err != nil {
		return fail("the manifest's signature does not check: " + err.Error())
	}
	if m.NextKey != "" && up.u.ReleasePub != nil {
		// Signed with a release key this locker takes: its successor is
		// authorized, whatever becomes of this release.
		if err := up.takeNextKey(m.NextKey); err != nil {
			return fail("the manifest's next release key cannot be kept: " + err.Error())
		}
	}
	if m.Version != v || m.Arch != arch {
		return fail("the manifest is not this release's " + arch + " binary")
	}
	switch c, ok := compareVersions(m.Version, version); {
	case ok && c == 0:
		return fail("version " + m.Version + " runs already")
	case ok && c < 0 && !m.Rollback:
		return fail(fmt.Sprintf("a downgrade from %s to %s: refused (the release is not marked as a rollback)", version, m.Version))
	}
	up.mu.Lock()
	defer up.mu.Unlock()
	if up.working {
		return "", errors.New("an update is under way")
	}
	up.working = true
	go up.install(m)
	return fmt.Sprintf("update to %s accepted: installed when the locker is idle", m.Version), nil
}

// releaseKeysFile, in update.dir, keeps the successors of the pinned
// release key that signed manifests handed over (a key rotation), a base64
// key a line, the newest last.
const (
	releaseKeysFile = "release-keys"
	maxReleaseKeys  = 8
)

// acceptedReleaseKeys is what a pinned locker takes manifests signed with:
// its release key, and the successors kept in update.dir (nil when it is
// not pinned). A file that does not read leaves only the pinned key.
func acceptedReleaseKeys(u *config.Update) []ed25519.PublicKey {
	if u == nil || u.ReleasePub == nil {
		return nil
	}
	keys := []ed25519.PublicKey{u.ReleasePub}
	f, err := os.Open(filepath.Join(u.Dir, releaseKeysFile))
	if err != nil {
		return keys
	}
	defer f.Close()
	raw, _ := io.ReadAll(io.LimitReader(f, 4<<10)) // maxReleaseKeys lines of 45 bytes
	for _, line := range strings.Fields(string(raw)) {
		if k, err := protocol.ParsePublicKey(line); err == nil && !hasKey(keys, k) {
			keys = append(keys, k)
		}
	}
	return keys
}

func hasKey(keys []ed25519.PublicKey, k ed25519.PublicKey) bool {
	return slices.ContainsFunc(keys, func(kk ed25519.PublicKey) bool { return kk.Equal(k) })
}

// takeNextKey keeps b64, a release key's successor a manifest signed with
// a key this locker takes named, and takes manifests signed with it.
func (up *updater) takeNextKey(b64 string) error {
	k, err := protocol.ParsePublicKey(b64)
	if err != nil {
		return err
	}
	up.mu.Lock()
	defer up.mu.Unlock()
	if hasKey(up.keys, k) {
		return nil
	}
	var lines []string
	for _, kk := range up.keys[1:] { // the pinned key is the configuration's
		lines = append(lines, base64.StdEncoding.EncodeToString(kk))
	}
	lines = append(lines, b64)
	if len(lines) > maxReleaseKeys {
		lines = lines[len(lines)-maxReleaseKeys:]
	}
	if err := atomicfile.Write(filepath.Join(up.u.Dir, releaseKeysFile), []byte(strings.Join(lines, "\n")+"\n"), 0o640); err != nil {
		return err
	}
	up.keys = append(up.keys, k)
	up.log.Info("release key rotation: manifests signed with the next release key are taken from now on", "next_key", b64)
	return nil
}

// install waits for idle, downloads, checks, and runs the new version.
func (up *updater) install(m protocol.Manifest) {
	defer func() { up.mu.Lock(); up.working = false; up.mu.Unlock() }()
	fail := func(reasons ...string) {
		up.l.RecordUpdateFailed(locker.UpdateFailed{Version: m.Version, Reasons: reasons})
		up.log.Error("software update failed", "version", m.Version, "reasons", reasons)
	}
	deadline := time.Now().Add(up.idleWait)
	for !up.l.Idle() {
		if time.Now().After(deadline) {
			fail(fmt.Sprintf("the locker was not idle within %v", up.idleWait))
			return
		}
		select {
		case <-up.ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
	dir := filepath.Join(up.u.Dir, m.Version)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		fail(err.Error())
		return
	}
	bin := filepath.Join(dir, "lockerd")
	if err := up.download(m, bin); err != nil {
		fail(err.Error())
		return
	}
	// Asked for its version: a build that does not start says so here,
	// before anything is switched.
	ctx, cancel := context.WithTimeout(up.ctx, 20*time.Second)
	out, err := exec.CommandContext(ctx, bin, "-version").Output()
	cancel()
	if got, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n"); err != nil || strings.TrimPrefix(got, "v") != strings.TrimPrefix(m.Version, "v") {
		os.Remove(bin)
		fail(fmt.Sprintf("the new binary does not start (asked for its version: %q, %v)", got, err))
		return
	}
	// The store must be in a schema the new version runs on: one it
	// writes or keeps (it upgrades only once healthy), or, for an older
	// release, one this build brings the store back to before it hands
	// over.
	newest, oldest := storeSchemas(string(out))
	cur := up.store.Schema()
	switch {
	case cur < oldest:
		fail(fmt.Sprintf("version %s runs on store schema %d or newer and this store is in schema %d: update through a version between (one that runs on schema %d)", m.Version, oldest, cur, cur))
		return
	case cur > newest && newest < boltstore.OldestSchema():
		fail(fmt.Sprintf("version %s reads store schema %d at most and this store is in schema %d; this lockerd can bring it back only to schema %d: refused", m.Version, newest, cur, boltstore.OldestSchema()))
		return
	}
	self, err := os.Executable()
	if err == nil {
		self, err = filepath.EvalSymlinks(self)
	}
	if err != nil {
		fail(err.Error())
		return
	}
	if err := writeJSONFile(filepath.Join(up.u.Dir, "update.pending"), pendingUpdate{From: version, FromPath: self, To: m.Version, ToPath: bin}); err != nil {
		fail(err.Error())
		return
	}
	if cur > newest {
		// Brought back now; this build runs on it until it hands over
		// (and upgrades it again at its next start, should it run again).
		if err := up.store.Downgrade(newest); err != nil {
			os.Remove(filepath.Join(up.u.Dir, "update.pending"))
			fail(err.Error())
			return
		}
		up.log.Info("store brought back to the schema of the older release", "schema", newest, "from", cur, "version", m.Version)
	}
	if err := setCurrent(up.u.Dir, bin); err != nil {
		os.Remove(filepath.Join(up.u.Dir, "update.pending"))
		fail(err.Error())
		return
	}
	up.log.Info("software update installed: running it", "version", m.Version, "binary", bin)
	up.restart()
}

// download fetches the binary of m from the hub into path, resuming a
// partial download, and checks its size and SHA-256.
func (up *updater) download(m protocol.Manifest, path string) error {
	part := path + ".part"
	url := strings.TrimSuffix(up.u.HubURL, "/") + "/v1/releases/" + m.Version + "/" + m.Arch + "/binary"
	f, err := os.OpenFile(part, os.O_CREATE|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	defer f.Close()
	have, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	if have > m.Size {
		if err := f.Truncate(0); err != nil {
			return err
		}
		have, _ = f.Seek(0, io.SeekStart)
	}
	if have < m.Size {
		req, err := http.NewRequestWithContext(up.ctx, "GET", url, nil)
		if err != nil {
			return err
		}
		if have > 0 {
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-", have))
		}
		resp, err := up.client.Do(req)
		if err != nil {
			return fmt.Errorf("download from the hub: %w", err)
		}
		defer resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusPartialContent:
		case http.StatusOK:
			// The whole file (no range support): start again.
			if err := f.Truncate(0); err != nil {
				return err
			}
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return err
			}
		default:
			return fmt.Errorf("download from the hub: %s", resp.Status)
		}
		if _, err := io.Copy(f, io.LimitReader(resp.Body, m.Size+1)); err != nil {
			return fmt.Errorf("download from the hub (resumed next time): %w", err)
		}
		if err := f.Sync(); err != nil {
			return err
		}
	}
	n, sum, err := protocol.DigestFile(part)
	if err != nil {
		return err
	}
	if n != m.Size || sum != m.SHA256 {
		os.Remove(part)
		return fmt.Errorf("the downloaded binary does not match its signed manifest (%d bytes, sha256 %.12s…): refused", n, sum)
	}
	if err := os.Chmod(part, 0o755); err != nil {
		return err
	}
	return os.Rename(part, path)
}

// settleUpdate records the outcome of the last update once lockerd runs:
// a rollback (update.failed), or, on probation, health in time
// (update.applied) or a rollback and the previous version run again.
func (up *updater) settleUpdate(healthy func() error, done <-chan struct{}) {
	dir := up.u.Dir
	if raw, err := os.ReadFile(filepath.Join(dir, "update.rejected")); err == nil {
		var r rejectedUpdate
		if json.Unmarshal(raw, &r) == nil {
			up.l.RecordUpdateFailed(locker.UpdateFailed{Version: r.Version, Reasons: r.Reasons, RolledBack: true})
			up.log.Error("a software update was rolled back", "version", r.Version, "reasons", r.Reasons)
		}
		os.Remove(filepath.Join(dir, "update.rejected"))
	}
	raw, err := os.ReadFile(filepath.Join(dir, "update.pending"))
	if err != nil {
		return
	}
	var p pendingUpdate
	if json.Unmarshal(raw, &p) != nil || p.To != version {
		return
	}
	deadline := time.Now().Add(up.u.Probation.D())
	var last error
	for time.Now().Before(deadline) {
		if last = healthy(); last == nil {
			os.Remove(filepath.Join(dir, "update.pending"))
			up.l.RecordUpdateApplied(locker.UpdateApplied{Version: p.To, From: p.From})
			up.log.Info("software update applied", "version", p.To, "from", p.From)
			// Only now forward: the version before can no longer be
			// rolled back to (a rollback release brings it back down).
			if from := up.store.Schema(); from < boltstore.NewestSchema() {
				if err := up.store.Upgrade(); err != nil {
					// Still running on the kept schema; the next start
					// upgrades it or says why it cannot.
					up.log.Error("store not upgraded after the update", "err", err)
				} else {
					up.log.Info("store upgraded", "schema", boltstore.NewestSchema(), "from", from)
				}
			}
			return
		}
		select {
		case <-done:
			return
		case <-time.After(250 * time.Millisecond):
		}
	}
	rollbackUpdate(dir, p, fmt.Sprintf("not healthy within %v: %v", up.u.Probation.D(), last))
	up.log.Error("new version not healthy: the previous one runs again", "version", p.To, "previous", p.From)
	up.restart()
}
