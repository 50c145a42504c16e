package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lockerd/lockerd/cmd/internal/config"
	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/locker/lockertest"
	"github.com/lockerd/lockerd/sync/brokertest"
	"github.com/lockerd/lockerd/sync/hub"
	"github.com/lockerd/lockerd/sync/hub/api"
	"github.com/lockerd/lockerd/sync/hub/fleet"
	"github.com/lockerd/lockerd/sync/hub/hubtest"
	"github.com/lockerd/lockerd/sync/protocol"
)

// buildVersion builds lockerd stamped with version v into dir, with the
// build tags given (lockerd_schema3: a build of the next store schema).
func buildVersion(t *testing.T, dir, v string, tags ...string) string {
	t.Helper()
	out := filepath.Join(dir, "lockerd-"+v)
	if msg, err := exec.Command("go", "build", "-tags", strings.Join(tags, ","), "-ldflags", "-X main.version="+v, "-o", out, ".").CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", v, err, msg)
	}
	return out
}

func TestStoreSchemas(t *testing.T) {
	for _, tc := range []struct {
		out            string
		newest, oldest int
	}{
		{"0.17.0\nstore schema 3 (runs on 2 to 3)\n", 3, 2},
		{"0.17.0\nstore schema 2 (runs on 2 to 2)", 2, 2},
		{"0.16.3\n", 2, 2}, // before the line: 0.16
		{"0.16.3", 2, 2},   // no new line at all
		{"0.17.0\nstore schema 3 (runs on 4 to 3)\n", 2, 2}, // nonsense: as before the line
		{"0.17.0\nstore schema 3 (runs on 0 to 3)\n", 2, 2},
		{"0.17.0\nstore schema x\n", 2, 2},
	} {
		if n, o := storeSchemas(tc.out); n != tc.newest || o != tc.oldest {
			t.Errorf("storeSchemas(%q) = %d, %d; want %d, %d", tc.out, n, o, tc.newest, tc.oldest)
		}
	}
}

// TestSoftwareUpdate: releases added at the hub (each binary with a
// signed manifest) rolled out to a running locker. A binary altered at
// the hub after it was signed is refused (and its one-stage rollout
// halts); the real one is installed when the locker is idle and runs,
// healthy: update.applied, lockerd says ready as 0.16.1. A lower version
// is refused as a downgrade; a build that does not start is refused
// before anything switches; a rollout whose first stage fails stops by
// itself, never sending the second; and a build that starts and dies is
// rolled back when lockerd is started again (as systemd does).
func TestSoftwareUpdate(t *testing.T) {
	t.Parallel() // self-contained (its own broker, hub and directories), and mostly waiting
	bins := t.TempDir()
	v160, v161 := buildVersion(t, bins, "0.16.0"), buildVersion(t, bins, "0.16.1")
	broken, err := exec.LookPath("false") // exits at once, whatever it is asked
	if err != nil {
		t.Fatal(err)
	}

	mq := brokertest.StartMosquitto(t, brokertest.MosquittoOptions{})
	key, _ := newKey(t)
	h := hubtest.Start(t, hub.Config{Brokers: []string{mq.URL}, SigningKey: key, PickupKey: lockertest.Key,
		Lockers: []string{lockerID, "e2e-02"}, ClientID: "lockerhub", ReleasesDir: filepath.Join(t.TempDir(), "releases")})
	srv := httptest.NewServer(api.New(api.ForHub(h)))
	defer srv.Close()
	pub := base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey))
	apiAddr := fmt.Sprintf("127.0.0.1:%d", brokertest.FreePort(t))
	c := newCabinet(t, "0s", withMQTT(mq.URL, pub, ""), func(c *cabinet) {
		c.Extra += fmt.Sprintf("update: {hub_url: %q, dir: versions, probation: 10s}\n", srv.URL)
	})
	raw, _ := os.ReadFile(c.Config)
	os.WriteFile(c.Config, []byte(strings.Replace(string(raw), `api: {listen: "127.0.0.1:0"}`, `api: {listen: "`+apiAddr+`"}`, 1)), 0o600)
	// The packaged binary, as /usr/bin/lockerd.
	installed := filepath.Join(t.TempDir(), "lockerd")
	if b, err := os.ReadFile(v160); err != nil || os.WriteFile(installed, b, 0o755) != nil {
		t.Fatalf("install 0.16.0: %v", err)
	}
	d := launchBin(t, installed, c.Config, nil)
	until(t, "online", func() bool { li, _ := h.Locker(lockerID); return li.Online })

	addAs := func(v, file string, rollback bool) { t.Helper(); addRelease(t, h, v, "amd64", file, rollback) }
	add := func(v, file string) { t.Helper(); addAs(v, file, false) }
	rollout := func(v string, lockers []string, stages []int) {
		t.Helper()
		if _, err := h.Fleet().StartRollout(fleet.NewRollout{Version: v, Lockers: lockers, Stages: stages}, "test"); err != nil {
			t.Fatal(err)
		}
	}
	result := func(v, want string) fleet.Rollout { t.Helper(); return rolloutResult(t, h, d, v, want) }

	// A binary altered at the hub after it was signed.
	add("0.16.1", v161)
	stored := filepath.Join(h.Fleet().ReleasesDir(), "0.16.1", "amd64")
	f, _ := os.OpenFile(stored, os.O_APPEND|os.O_WRONLY, 0)
	f.Write([]byte("tampered"))
	f.Close()
	rollout("0.16.1", []string{lockerID}, []int{100})
	ro := result("0.16.1", "failed")
	if !strings.Contains(ro.Reasons[lockerID], "does not match its signed manifest") {
		t.Fatalf("tampered: %v", ro.Reasons)
	}
	h.Fleet().WorkRollouts()
	if ros, _ := h.Fleet().Rollouts(); ros[0].State != fleet.RolloutHalted {
		t.Fatalf("a rollout whose only stage failed: %+v", ros[0])
	}

	// The real one: installed, run, healthy.
	add("0.16.1", v161)
	rollout("0.16.1", []string{lockerID}, []int{100})
	d.reattach(2, 60*time.Second)
	result("0.16.1", "applied")
	if !strings.Contains(d.logs(), `"msg":"ready"`) || !strings.Contains(d.logs(), `"version":"0.16.1"`) {
		t.Fatalf("lockerd does not run 0.16.1:\n%s", d.logs())
	}
	if target, err := os.Readlink(filepath.Join(filepath.Dir(c.Config), "versions", "current")); err != nil || !strings.HasSuffix(target, "0.16.1/lockerd") {
		t.Fatalf("current → %q (%v)", target, err)
	}

	// A lower version, not marked as a rollback.
	add("0.16.0", v160)
	rollout("0.16.0", []string{lockerID}, []int{100})
	if ro := result("0.16.0", "failed"); !strings.Contains(ro.Reasons[lockerID], "downgrade from 0.16.1 to 0.16.0") {
		t.Fatalf("downgrade: %v", ro.Reasons)
	}

	// A build that does not start; two stages, the second never sent.
	add("0.16.2", broken)
	rollout("0.16.2", []string{lockerID, "e2e-02"}, []int{50, 100})
	ro = result("0.16.2", "failed")
	if !strings.Contains(ro.Reasons[lockerID], "does not start") {
		t.Fatalf("a build that does not start: %v", ro.Reasons)
	}
	h.Fleet().WorkRollouts()
	for _, r := range mustRollouts(t, h) {
		if r.Version == "0.16.2" && (r.State != fleet.RolloutHalted || r.Results["e2e-02"] != "") {
			t.Fatalf("the rollout went on after its first stage failed: %+v", r)
		}
	}
	// Still 0.16.1, serving.
	if res := d.scan("front", "NOSUCHCODE1"); res.Outcome == "" {
		t.Fatal("lockerd does not answer after the refused updates")
	}

	// A build that starts but cannot be healthy on its probation (the
	// broker is down while it comes up): the previous version runs again
	// by itself, and says so once the broker is back. The locker is kept
	// busy (a door open) until the broker is down, so that the new version
	// starts then. It is a build of the next store schema (3): on
	// probation it leaves the store in schema 2, which 0.16.1 reads again
	// (it would refuse schema 3).
	v164 := buildVersion(t, bins, "0.16.4", "lockerd_schema3")
	add("0.16.4", v164)
	d.sim("open", "C01") // a door open: not idle
	rollout("0.16.4", []string{lockerID}, []int{100})
	until(t, "the update accepted", func() bool { return strings.Contains(d.logs(), "update to 0.16.4 accepted") })
	mq.Stop()
	readies := d.readyCount()
	d.sim("close", "C01")
	d.reattach(readies+2, 90*time.Second) // 0.16.4, then 0.16.1 again
	mq.Start()
	if ro := result("0.16.4", "failed"); !strings.Contains(ro.Reasons[lockerID], "not healthy within 10s") {
		t.Fatalf("an unhealthy version: %v", ro.Reasons)
	}
	if target, _ := os.Readlink(filepath.Join(filepath.Dir(c.Config), "versions", "current")); !strings.HasSuffix(target, "0.16.1/lockerd") {
		t.Fatalf("after the rollback current → %q", target)
	}
	if logs := d.logs(); !strings.Contains(logs, `"msg":"store schema kept during the update's probation: upgraded once this version is healthy","schema":2,"this_version_writes":3`) ||
		strings.Contains(logs, `"msg":"store upgraded"`) || !strings.HasSuffix(lastReady(logs), `"version":"0.16.1","store_schema":2}`) {
		t.Fatalf("the store's schema across an unhealthy update (want kept at 2, 0.16.1 ready on it):\n%s", logs)
	}

	// A build that answers its version but dies when it runs: lockerd is
	// gone; systemd starts the packaged binary again, which finds the
	// probation unfinished, puts 0.16.1 back and runs it; the central
	// hears update.failed (rolled back).
	script := filepath.Join(bins, "lockerd-0.16.3")
	os.WriteFile(script, []byte("#!/bin/sh\nif [ \"$1\" = -version ]; then echo 0.16.3; exit 0; fi\necho 'panic: not today' >&2\nexit 2\n"), 0o755)
	add("0.16.3", script)
	rollout("0.16.3", []string{lockerID}, []int{100})
	select {
	case <-d.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("lockerd did not run the new build\n%s", d.logs())
	}
	d = launchBin(t, installed, c.Config, nil) // systemd's Restart=
	if ro := result("0.16.3", "failed"); !strings.Contains(ro.Reasons[lockerID], "did not come up healthy") {
		t.Fatalf("a build that dies at start: %v", ro.Reasons)
	}
	if target, _ := os.Readlink(filepath.Join(filepath.Dir(c.Config), "versions", "current")); !strings.HasSuffix(target, "0.16.1/lockerd") {
		t.Fatalf("after the rollback current → %q", target)
	}
	if !strings.Contains(d.logs(), `"version":"0.16.1"`) {
		t.Fatalf("not running 0.16.1 after the rollback:\n%s", d.logs())
	}

	// A build of the next store schema, healthy: the store moves to
	// schema 3 only once its probation has ended. Then 0.16.1 again, as a
	// rollback release: 0.17.0 brings the store back to schema 2 before
	// 0.16.1 runs on it.
	v170 := buildVersion(t, bins, "0.17.0", "lockerd_schema3")
	add("0.17.0", v170)
	rollout("0.17.0", []string{lockerID}, []int{100})
	d.reattach(d.readyCount()+1, 60*time.Second)
	result("0.17.0", "applied")
	until(t, "the store upgraded after the probation", func() bool {
		return strings.Contains(d.logs(), `"msg":"store upgraded","schema":3,"from":2`)
	})
	if !strings.HasSuffix(lastReady(d.logs()), `"version":"0.17.0","store_schema":2}`) {
		t.Fatalf("0.17.0 upgraded the store before its probation ended:\n%s", d.logs())
	}
	add("0.16.1", v161) // not a rollback: refused as a downgrade
	rollout("0.16.1", []string{lockerID}, []int{100})
	result("0.16.1", "failed")
	addAs("0.16.1", v161, true)
	readies = d.readyCount()
	rollout("0.16.1", []string{lockerID}, []int{100})
	d.reattach(readies+1, 60*time.Second)
	result("0.16.1", "applied")
	logs := d.logs()
	if !strings.Contains(logs, `"msg":"store brought back to the schema of the older release","schema":2,"from":3,"version":"0.16.1"`) ||
		!strings.HasSuffix(lastReady(logs), `"version":"0.16.1","store_schema":2}`) {
		t.Fatalf("the rollback release to a build of schema 2:\n%s", logs)
	}
}

// lastReady is lockerd's last "ready" log line.
func lastReady(logs string) string {
	i := strings.LastIndex(logs, `"msg":"ready"`)
	if i < 0 {
		return ""
	}
	line, _, _ := strings.Cut(logs[i:], "\n")
	return line
}

// addRelease adds file as version v's binary for arch at the hub.
func addRelease(t *testing.T, h *hub.Hub, v, arch, file string, rollback bool) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := h.Fleet().AddArtifact(v, arch, f, rollback, "test"); err != nil {
		t.Fatal(err)
	}
}

// rolloutResult works the hub's rollouts until version v's has the
// result want for the locker (within a minute).
func rolloutResult(t *testing.T, h *hub.Hub, d *daemon, v, want string) fleet.Rollout {
	t.Helper()
	var ro fleet.Rollout
	deadline := time.Now().Add(60 * time.Second)
	for {
		h.Fleet().WorkRollouts()
		for _, r := range mustRollouts(t, h) {
			if r.Version == v {
				ro = r
			}
		}
		if ro.Results[lockerID] == want {
			return ro
		}
		if time.Now().After(deadline) {
			t.Fatalf("rollout %s: %+v, want %s for %s\n%s", v, ro, want, lockerID, d.logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func mustRollouts(t *testing.T, h *hub.Hub) []fleet.Rollout {
	t.Helper()
	ros, err := h.Fleet().Rollouts()
	if err != nil {
		t.Fatal(err)
	}
	return ros
}

// FuzzStoreSchemas: whatever a binary answers to -version, the schemas
// read from it are a valid range.
func FuzzStoreSchemas(f *testing.F) {
	f.Add("0.17.0\nstore schema 3 (runs on 2 to 3)\n")
	f.Add("0.16.3")
	f.Add("x\nstore schema 99999999999999999999 (runs on 1 to 99999999999999999999)")
	f.Fuzz(func(t *testing.T, out string) {
		n, o := storeSchemas(out)
		if o < 1 || o > n {
			t.Fatalf("storeSchemas(%q) = %d, %d", out, n, o)
		}
	})
}

// TestReleaseKeyPinned: a locker with update.release_key takes a release
// only when its manifest is signed with that key: one signed with the
// central's key (a hub's key, stolen with the hub) is refused at once.
func TestReleaseKeyPinned(t *testing.T) {
	c := lockertest.NewCabinet(t, lockertest.Settings())
	centralPub, centralPriv, _ := ed25519.GenerateKey(rand.Reader)
	releasePub, releasePriv, _ := ed25519.GenerateKey(rand.Reader)
	cfg := &config.Config{CentralKey: centralPub, Update: &config.Update{Dir: t.TempDir(), ReleasePub: releasePub,
		HubURL: "http://127.0.0.1:1"}} // nothing listens: the download fails
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	up, err := newUpdater(cfg, c.L, c.Store, slog.New(slog.DiscardHandler), func() { t.Error("restarted") }, ctx)
	if err != nil {
		t.Fatal(err)
	}
	m := protocol.Manifest{Version: "9.9.9", Arch: myArch(), Size: 10, SHA256: strings.Repeat("ab", 32), Created: time.Now()}
	for _, tc := range []struct {
		name string
		key  ed25519.PrivateKey
		want string
	}{
		{"the central's key", centralPriv, "the manifest's signature does not check"},
		{"the release key", releasePriv, ""},
	} {
		signed, err := protocol.SealManifest(m, tc.key)
		if err != nil {
			t.Fatal(err)
		}
		msg, err := up.Update("9.9.9", map[string]json.RawMessage{myArch(): signed})
		switch {
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Fatalf("%s: %q %v, want %q", tc.name, msg, err, tc.want)
		case tc.want == "" && err != nil:
			t.Fatalf("%s: %v", tc.name, err)
		}
	}
	// Taken: it went on to the download (which fails here).
	c.WaitEvent(t, locker.EvUpdateFailed, map[string]any{"version": "9.9.9"})
	until(t, "the download tried", func() bool {
		for _, e := range c.Events(t) {
			if e.Type == locker.EvUpdateFailed && strings.Contains(string(e.Data), "download from the hub") {
				return true
			}
		}
		return false
	})
}

// TestReleaseKeyKeptOverPushes: a pushed configuration (signed with the
// central's key) may not change or drop the release key a cabinet is
// pinned to, nor drop its update section: the next push could then bring
// the central's key back as the one binaries are taken with.
func TestReleaseKeyKeptOverPushes(t *testing.T) {
	pinned, _, _ := ed25519.GenerateKey(rand.Reader)
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	withKey := func(k ed25519.PublicKey) *config.Config {
		return &config.Config{Update: &config.Update{Dir: "versions", ReleasePub: k}}
	}
	for _, tc := range []struct {
		name      string
		cur, next *config.Config
		refused   bool
	}{
		{"not pinned: a key added", withKey(nil), withKey(pinned), false},
		{"not pinned: no update section", &config.Config{}, &config.Config{}, false},
		{"pinned: the same key", withKey(pinned), withKey(slices.Clone(pinned)), false},
		{"pinned: another key", withKey(pinned), withKey(other), true},
		{"pinned: the key dropped", withKey(pinned), withKey(nil), true},
		{"pinned: the update section dropped", withKey(pinned), &config.Config{}, true},
	} {
		if got := releaseKeyChanged(tc.cur, tc.next); (got != "") != tc.refused || (tc.refused && !strings.Contains(got, "update.release_key")) {
			t.Errorf("%s: %q", tc.name, got)
		}
	}
}

// TestReleaseKeyRotation: a pinned locker takes manifests signed with the
// next release key only once a manifest signed with a key it takes named
// that key (lockerhub release sign --next-key); a next key named in a
// manifest signed with another key (the central's) is not taken; the
// successor is kept across restarts, and a pushed configuration may then
// pin it, and no other.
func TestReleaseKeyRotation(t *testing.T) {
	c := lockertest.NewCabinet(t, lockertest.Settings())
	centralPub, centralPriv, _ := ed25519.GenerateKey(rand.Reader)
	k1pub, k1, _ := ed25519.GenerateKey(rand.Reader)
	k2pub, k2, _ := ed25519.GenerateKey(rand.Reader)
	k3pub, _, _ := ed25519.GenerateKey(rand.Reader)
	b64 := base64.StdEncoding.EncodeToString
	cur := &config.Config{CentralKey: centralPub, Update: &config.Update{Dir: t.TempDir(), ReleasePub: k1pub,
		HubURL: "http://127.0.0.1:1"}} // nothing listens: a taken release fails at its download
	ctx, cancel := context.WithCancel(context.Background())
	var ups []*updater
	// Before the update dir goes (cleanups run last first): no install
	// still writing in it (a release taken fails at its download, but in
	// its own goroutine).
	t.Cleanup(func() {
		cancel()
		until(t, "every install ended", func() bool {
			for _, u := range ups {
				u.mu.Lock()
				working := u.working
				u.mu.Unlock()
				if working {
					return false
				}
			}
			return true
		})
	})
	newUp := func() *updater {
		up, err := newUpdater(cur, c.L, c.Store, slog.New(slog.DiscardHandler), func() { t.Error("restarted") }, ctx)
		if err != nil {
			t.Fatal(err)
		}
		ups = append(ups, up)
		return up
	}
	up := newUp()
	n := 0
	// offer reports whether the manifest's signature was taken (the
	// release then goes on, or waits behind the one under way).
	offer := func(up *updater, key ed25519.PrivateKey, next string) (bool, error) {
		n++
		v := fmt.Sprintf("9.9.%d", n)
		signed, err := protocol.SealManifest(protocol.Manifest{Version: v, Arch: myArch(), Size: 10, SHA256: strings.Repeat("ab", 32),
			Created: time.Now(), NextKey: next}, key)
		if err != nil {
			t.Fatal(err)
		}
		_, err = up.Update(v, map[string]json.RawMessage{myArch(): signed})
		if err == nil || strings.Contains(err.Error(), "under way") {
			return true, nil
		}
		return false, err
	}
	steps := []struct {
		name  string
		up    func() *updater
		key   ed25519.PrivateKey
		next  string
		taken bool
		says  string
	}{
		{"the next key before any rotation", func() *updater { return up }, k2, "", false, "signature does not check"},
		{"the central's key naming a next key", func() *updater { return up }, centralPriv, b64(k2pub), false, "signature does not check"},
		{"still not the next key", func() *updater { return up }, k2, "", false, "signature does not check"},
		{"a malformed next key", func() *updater { return up }, k1, "AAAA", false, "next_key"},
		{"the release key naming its successor", func() *updater { return up }, k1, b64(k2pub), true, ""},
		{"the successor", func() *updater { return up }, k2, "", true, ""},
		{"the successor after a restart", newUp, k2, "", true, ""},
		{"the first key still", newUp, k1, "", true, ""},
	}
	for _, s := range steps {
		taken, err := offer(s.up(), s.key, s.next)
		if taken != s.taken || (!taken && !strings.Contains(err.Error(), s.says)) {
			t.Fatalf("%s: taken %v (%v), want %v (%q)", s.name, taken, err, s.taken, s.says)
		}
	}
	raw, _ := os.ReadFile(filepath.Join(cur.Update.Dir, releaseKeysFile))
	if strings.TrimSpace(string(raw)) != b64(k2pub) {
		t.Fatalf("kept keys: %q", raw)
	}
	pin := func(k ed25519.PublicKey) *config.Config {
		return &config.Config{Update: &config.Update{Dir: "x", ReleasePub: k}}
	}
	if r := releaseKeyChanged(cur, pin(k2pub)); r != "" {
		t.Fatalf("a push pinning the successor: %s", r)
	}
	if r := releaseKeyChanged(cur, pin(k3pub)); r == "" {
		t.Fatal("a push pinning a key no release key named")
	}
}
