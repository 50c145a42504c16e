package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/lockerd/lockerd/drivers/sim"
	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/locker/httpapi"
	"github.com/lockerd/lockerd/locker/lockertest"
)

func ctl(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errw bytes.Buffer
	code := run(args, &out, &errw)
	return out.String(), errw.String(), code
}

// apiRoutes is lockerd's API over a test cabinet, the simulator's routes
// mounted beside it as lockerd mounts them.
func apiRoutes(c *lockertest.Cabinet) http.Handler {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	mux := http.NewServeMux()
	mux.Handle("/v1/", httpapi.New(c.L, log))
	sim.Mount(mux, c.HW, log)
	return mux
}

// serve runs the API of a test cabinet and returns its address.
func serve(t *testing.T) (*lockertest.Cabinet, string) {
	t.Helper()
	c := lockertest.NewCabinet(t, lockertest.Settings())
	srv := httptest.NewServer(apiRoutes(c))
	t.Cleanup(srv.Close)
	return c, strings.TrimPrefix(srv.URL, "http://")
}

func TestCommandsAgainstTheAPI(t *testing.T) {
	c, api := serve(t)
	out, errw, code := ctl(t, "-api", api, "orders", "add", "--size", "M", "--item", "9787020002207:Red Chamber")
	if code != 0 {
		t.Fatalf("orders add: %d %s", code, errw)
	}
	m := regexp.MustCompile(`pickup code: ([A-Z0-9]+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no code printed: %s", out)
	}
	out, _, code = ctl(t, "-api", api, "scan", "--scanner", "front", m[1])
	var res locker.ScanResult
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || res.Outcome != locker.OutcomeOpened || res.Compartments[0] != "M1" {
		t.Fatalf("scan: %d %s", code, out)
	}
	c.WaitEvent(t, locker.EvPickupCompleted, nil)
	out, _, _ = ctl(t, "status", "-api", api) // global flags also after the command
	if !strings.Contains(out, "M1") || !strings.Contains(out, "OPEN") || !strings.Contains(out, "picked_up=1") {
		t.Fatalf("status:\n%s", out)
	}
	out, _, _ = ctl(t, "-api", api, "orders", "list")
	if !strings.Contains(out, "picked_up") {
		t.Fatalf("orders list:\n%s", out)
	}
	out, _, _ = ctl(t, "-api", api, "events", "tail", "--after", "1")
	if !strings.Contains(out, `"type":"pickup.completed"`) || strings.Contains(out, `"seq":1,`) {
		t.Fatalf("events tail:\n%s", out)
	}
	if strings.Contains(out, m[1]) {
		t.Fatal("events carry the pickup code")
	}
	if _, errw, code := ctl(t, "-api", api, "open", "S1"); code == 0 || !strings.Contains(errw, "--reason") {
		t.Fatalf("open without reason: %d %s", code, errw)
	}
	if _, errw, code := ctl(t, "-api", api, "open", "S1", "--reason", "check lock"); code != 0 {
		t.Fatalf("open: %s", errw)
	}
	c.WaitEvent(t, locker.EvMaintenanceOpen, map[string]any{"compartment": "S1", "reason": "check lock"})
	if _, errw, code := ctl(t, "-api", api, "service", "S2", "off", "--reason", "broken hinge"); code != 0 {
		t.Fatalf("service: %s", errw)
	}
	c.WaitEvent(t, locker.EvCompartmentService, map[string]any{"compartment": "S2", "in_service": false, "reason": "broken hinge"})
	if _, errw, code := ctl(t, "-api", api, "sim", "jam", "L1"); code != 0 {
		t.Fatalf("sim jam: %s", errw)
	}
	out, _, _ = ctl(t, "-api", api, "sim")
	if !strings.Contains(out, `"jammed": true`) {
		t.Fatalf("sim state:\n%s", out)
	}
	// The controller falls silent: status says unknown, not closed.
	if _, errw, code := ctl(t, "-api", api, "sim", "offline"); code != 0 {
		t.Fatalf("sim offline: %s", errw)
	}
	c.WaitEvent(t, locker.EvHardwareFault, map[string]any{"device": "sim controller"})
	out, _, _ = ctl(t, "status", "-api", api) // global flags also after the command
	if !regexp.MustCompile(`(?m)^L1 .*unknown \(last closed\)`).MatchString(out) {
		t.Fatalf("status with the controller offline:\n%s", out)
	}
	if _, errw, code := ctl(t, "-api", api, "sim", "online"); code != 0 {
		t.Fatalf("sim online: %s", errw)
	}
	c.WaitEvent(t, locker.EvHardwareRecovered, map[string]any{"device": "sim controller"})
	if out, _, _ = ctl(t, "-api", api, "status"); strings.Contains(out, "unknown") {
		t.Fatalf("status with the controller back:\n%s", out)
	}
	if _, errw, code := ctl(t, "-api", api, "scan", "--scanner", "nope", "X"); code != 1 || !strings.Contains(errw, "unknown input device") {
		t.Fatalf("unknown scanner: %d %s", code, errw)
	}
}

func TestOfflineCommands(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "k")
	os.WriteFile(key, []byte("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n"), 0o600)
	// The protocol test vector: "]Q1k7q2m9" normalises to K7Q2M9.
	out, errw, code := ctl(t, "hash-code", "--key-file", key, "]Q1k7q2m9")
	if code != 0 || strings.TrimSpace(out) != "1fb9a746502e9b209fcf53259758464e082410ac39fdb541c923b52cda32facb" {
		t.Fatalf("hash-code: %d %q %s", code, out, errw)
	}
	if _, errw, code := ctl(t, "hash-code", "--key-file", key, "AB!"); code == 0 || strings.Contains(errw, "AB!") {
		t.Fatalf("bad code: %d %s", code, errw)
	}
	if out, errw, code := ctl(t, "validate", "../../configs/demo.yaml"); code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("validate demo: %d %s %s", code, out, errw)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("locker: {id: x}\nstore: {path: s.db}\nsecurity: {pickup_key_file: k}\ncompartments: []\nfoo: 1\n"), 0o600)
	_, errw, code = ctl(t, "validate", bad)
	if code != 1 || !strings.Contains(errw, bad+":5: foo: unknown key") || !strings.Contains(errw, "compartments: at least one") {
		t.Fatalf("validate bad: %d\n%s", code, errw)
	}
	if _, _, code := ctl(t, "frobnicate"); code != 2 {
		t.Fatalf("unknown command exit %d", code)
	}
	if _, errw, code := ctl(t, "-api", "127.0.0.1:1", "status"); code != 1 || !strings.Contains(errw, "not reachable") {
		t.Fatalf("no daemon: %d %s", code, errw)
	}
}

// lockerctl finds lockerd's API token (-token-file, or api.token_file of
// -config) and sends it; without it, acting commands are refused and
// reading ones still work.
func TestAPIToken(t *testing.T) {
	c := lockertest.NewCabinet(t, lockertest.Settings())
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "api.token")
	tok, err := httpapi.NewToken(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	ln := httptest.NewUnstartedServer(nil)
	guard, err := httpapi.NewGuard(apiRoutes(c),
		httpapi.GuardConfig{Listen: ln.Listener.Addr(), Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	ln.Config.Handler = guard
	ln.Start()
	defer ln.Close()
	api := strings.TrimPrefix(ln.URL, "http://")
	cfg := filepath.Join(dir, "lockerd.yaml")
	os.WriteFile(filepath.Join(dir, "pickup.key"), []byte(strings.Repeat("ab", 32)+"\n"), 0o600)
	os.WriteFile(cfg, []byte("locker: {id: t}\nstore: {path: x.db}\nsecurity: {pickup_key_file: pickup.key}\n"+
		"compartments: [{id: S1, size: S, lock: L1, sensor: D1}]\napi: {listen: \""+api+"\", token_file: api.token}\n"), 0o600)
	t.Setenv("LOCKERD_TOKEN_FILE", "")

	if _, errw, code := ctl(t, "-api", api, "-token-file", filepath.Join(dir, "none"), "service", "S1", "off"); code == 0 || !strings.Contains(errw, "token") {
		t.Fatalf("service without a token: %d %s", code, errw)
	}
	if _, errw, code := ctl(t, "-api", api, "-token-file", filepath.Join(dir, "none"), "status"); code != 0 {
		t.Fatalf("status without a token: %s", errw)
	}
	if _, errw, code := ctl(t, "service", "S1", "off", "-token-file", tokenFile, "-api", api); code != 0 {
		t.Fatalf("service with -token-file: %s", errw)
	}
	// -config alone gives the address and the token file.
	if _, errw, code := ctl(t, "-config", cfg, "service", "S1", "on"); code != 0 {
		t.Fatalf("service with -config: %s", errw)
	}
}
