package main

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/lockerd/lockerd/cmd/internal/hubconfig"
	"github.com/lockerd/lockerd/cmd/internal/hubproc"
	"github.com/lockerd/lockerd/locker/lockertest"
	"github.com/lockerd/lockerd/sync/brokertest"
	"github.com/lockerd/lockerd/sync/hub"
	"github.com/lockerd/lockerd/sync/hub/api"
	"github.com/lockerd/lockerd/sync/hub/hubtest"
	"github.com/lockerd/lockerd/sync/protocol"
)

func cli(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errw bytes.Buffer
	code := run(args, &out, &errw)
	return out.String(), errw.String(), code
}

func TestKeygen(t *testing.T) {
	dir := t.TempDir()
	out, errw, code := cli(t, "keygen", "-out", dir)
	if code != 0 {
		t.Fatalf("keygen: %s", errw)
	}
	priv, err := hubconfig.ReadSigningKey(filepath.Join(dir, "central.key"))
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := os.ReadFile(filepath.Join(dir, "central.pub"))
	if _, err := protocol.ParsePublicKey(strings.TrimSpace(string(pub))); err != nil || !strings.Contains(out, strings.TrimSpace(string(pub))) {
		t.Fatalf("public key: %v\n%s", err, out)
	}
	body := []byte(`{"v":1}`)
	env, _ := protocol.Seal(body, priv)
	pk, _ := protocol.ParsePublicKey(strings.TrimSpace(string(pub)))
	if _, err := protocol.Open(env, pk); err != nil {
		t.Fatalf("written keys do not pair: %v", err)
	}
	if info, _ := os.Stat(filepath.Join(dir, "central.key")); info.Mode().Perm() != 0o600 {
		t.Fatalf("signing key mode %v", info.Mode())
	}
	if _, errw, code := cli(t, "keygen", "-out", dir); code == 0 || !strings.Contains(errw, "not overwriting") {
		t.Fatalf("second keygen: %d %s", code, errw)
	}
}

// runHub runs a hub on an embedded broker with its API on a test server
// until the test ends; it returns the hub, its API address and its dir.
func runHub(t *testing.T) (*hub.Hub, string, string) {
	t.Helper()
	url := brokertest.StartEmbedded(t, protocol.DefaultPrefix, "lockerhub")
	dir := t.TempDir()
	cli(t, "keygen", "-out", dir)
	priv, _ := hubconfig.ReadSigningKey(filepath.Join(dir, "central.key"))
	h := hubtest.Start(t, hub.Config{Brokers: []string{url}, SigningKey: priv, PickupKey: lockertest.Key, Lockers: []string{"nb-1"}})
	srv := httptest.NewServer(api.New(api.ForHub(h)))
	t.Cleanup(srv.Close)
	t.Setenv("LOCKERHUB_TOKEN", hubtest.Token(t, h))
	return h, strings.TrimPrefix(srv.URL, "http://"), dir
}

func TestClientCommands(t *testing.T) {
	h, api, dir := runHub(t)

	qr := filepath.Join(dir, "o.png")
	out, errw, code := cli(t, "order", "add", "-hub", api, "--locker", "nb-1", "--size", "m", "--item", "9787532736744:Fortress",
		"--qr", qr, "--pickup-url", "https://library.example/pickup")
	if code != 0 {
		t.Fatalf("order add: %s", errw)
	}
	m := regexp.MustCompile(`order (\S+) .*\npickup code: ([A-Z0-9]{8})`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("order add output:\n%s", out)
	}
	png, err := os.ReadFile(qr)
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("QR file: %v", err)
	}
	orders, _ := h.Orders("nb-1")
	if len(orders) != 1 || orders[0].CodeHash != lockertest.Key.Hash(m[2]) || orders[0].Code != "" {
		t.Fatalf("stored order must carry the code's hash only: %+v", orders)
	}
	if out, _, _ := cli(t, "orders", "-hub", api, "--locker", "nb-1"); !strings.Contains(out, m[1]) || !strings.Contains(out, "assigned") {
		t.Fatalf("orders:\n%s", out)
	}
	if out, errw, code := cli(t, "order", "cancel", "-hub", api, "--locker", "nb-1", m[1]); code != 0 || !strings.Contains(out, "rev 2") {
		t.Fatalf("cancel: %s %s", out, errw)
	}
	if out, errw, code := cli(t, "snapshot", "-hub", api, "--locker", "nb-1"); code != 0 || !strings.Contains(out, "1 parts") {
		t.Fatalf("snapshot: %s %s", out, errw)
	}
	if _, errw, code := cli(t, "order", "add", "-hub", api); code == 0 || !strings.Contains(errw, "--locker") {
		t.Fatalf("order add without locker: %d %s", code, errw)
	}
	// The global -hub stands before or after the command (make demo uses
	// the first form); both reach the hub.
	for _, args := range [][]string{{"-hub", api, "lockers"}, {"lockers", "-hub", api}, {"--hub=" + api, "orders", "--locker", "nb-1"}} {
		if out, errw, code := cli(t, args...); code != 0 || !strings.Contains(out, "LOCKER") && !strings.Contains(out, "ORDER") {
			t.Fatalf("%v: %d %s %s", args, code, out, errw)
		}
	}
	if _, errw, code := cli(t, "lockers", "-hub"); code != 2 || !strings.Contains(errw, "needs a value") {
		t.Fatalf("-hub without a value: %d %s", code, errw)
	}
	if _, _, code := cli(t, "frob"); code != 2 {
		t.Fatal("unknown command accepted")
	}
}

// lockerhub refuses to open its HTTP API to the network without TLS (its
// tokens would travel in clear), or an embedded broker without
// passwords, and says why.
func TestServeRefusesOpenListeners(t *testing.T) {
	dir := t.TempDir()
	cli(t, "keygen", "-out", dir)
	key := filepath.Join(dir, "central.key")
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-http", "0.0.0.0:0"}, "beyond loopback the API needs TLS"},
		{[]string{"-http", ":0"}, "beyond loopback the API needs TLS"},
		{[]string{"-http", "127.0.0.1:0", "-mqtt-listen", "0.0.0.0:0"}, "-broker-users"},
	}
	for _, tt := range tests {
		args := append([]string{"serve", "-store", filepath.Join(dir, "hub.db"), "-key", key}, tt.args...)
		if _, errw, code := cli(t, args...); code != 1 || !strings.Contains(errw, tt.want) {
			t.Errorf("%v: exit %d, %s; want a refusal naming %q", tt.args, code, errw, tt.want)
		}
	}
}

// lockerhub refuses locker ids that are not valid topic levels in every
// supported broker, as lockerd's config does.
func TestBadLockerIDsRefused(t *testing.T) {
	h, api, _ := runHub(t)
	for _, id := range []string{"nb/main", "nb+1", "nb#1", "nb.main", "nb main", "宁波01", "-nb", strings.Repeat("x", 65)} {
		if _, errw, code := cli(t, "order", "add", "-hub", api, "--locker", id); code == 0 || !strings.Contains(errw, "locker id") {
			t.Errorf("order for locker %q: exit %d %s", id, code, errw)
		}
		if _, err := h.Open(id, "A01", "x"); err == nil {
			t.Errorf("open on locker %q accepted", id)
		}
	}
}

// A locker is served once added (lockerhub locker add, POST /v1/lockers);
// an id that is no valid topic level is refused there too.
func TestLockerAdd(t *testing.T) {
	_, api, _ := runHub(t)
	if _, errw, code := cli(t, "order", "add", "-hub", api, "--locker", "nb-2"); code == 0 || !strings.Contains(errw, "unknown locker") {
		t.Fatalf("order for a locker not served: %d %s", code, errw)
	}
	if out, errw, code := cli(t, "locker", "add", "nb-2", "-hub", api); code != 0 || !strings.Contains(out, "nb-2 added") {
		t.Fatalf("locker add: %d %s %s", code, out, errw)
	}
	if _, errw, code := cli(t, "order", "add", "-hub", api, "--locker", "nb-2"); code != 0 {
		t.Fatalf("order for a locker added: %s", errw)
	}
	for _, bad := range []string{"a/+/#", "nb 3", ""} {
		if _, _, code := cli(t, "locker", "add", bad, "-hub", api); code == 0 {
			t.Errorf("locker add %q accepted", bad)
		}
	}
}

// lockerhub validate checks a config file and the files it names; serve
// -config takes everything from the file and refuses flags beside it.
func TestConfigFile(t *testing.T) {
	dir := t.TempDir()
	cli(t, "keygen", "-out", dir)
	good := filepath.Join(dir, "lockerhub.yaml")
	os.WriteFile(good, []byte("store: {path: hub.db}\nkeys: {signing_key_file: central.key}\nlockers: [nb-1]\n"), 0o600)
	if out, errw, code := cli(t, "validate", good); code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("validate a good file: %d %s %s", code, out, errw)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("store: {path: hub.db}\nkeys: {signing_key_file: none.key}\nhttp: {listen: \"0.0.0.0:1\"}\n"), 0o600)
	_, errw, code := cli(t, "validate", bad)
	if code != 1 || !strings.Contains(errw, "bad.yaml:2: keys.signing_key_file:") || !strings.Contains(errw, "bad.yaml:3: http.listen:") {
		t.Fatalf("validate a bad file: %d %s", code, errw)
	}
	if _, errw, code := cli(t, "serve", "-config", good, "-http", "127.0.0.1:0"); code != 1 || !strings.Contains(errw, "-http with -config") {
		t.Fatalf("serve -config with a flag beside it: %d %s", code, errw)
	}
	if _, errw, code := cli(t, "serve", "-config", bad); code != 1 || !strings.Contains(errw, "bad.yaml:3: http.listen:") {
		t.Fatalf("serve -config with a bad file: %d %s", code, errw)
	}
}

// Tokens from the command line: created with a scope and shown once, used
// within their scope only, revoked; without one the CLI says how to get
// one; state-changing calls land in the audit log.
func TestTokensFromTheCLI(t *testing.T) {
	_, api, _ := runHub(t)
	out, errw, code := cli(t, "token", "create", "-hub", api, "--name", "ordering-platform", "--scope", "orders")
	if code != 0 {
		t.Fatalf("token create: %s", errw)
	}
	secret := regexp.MustCompile(`lht_\S+`).FindString(out)
	if secret == "" || !strings.Contains(out, "shown this once") {
		t.Fatalf("token create printed:\n%s", out)
	}
	admin := os.Getenv("LOCKERHUB_TOKEN")
	t.Setenv("LOCKERHUB_TOKEN", secret)
	if _, errw, code := cli(t, "order", "add", "-hub", api, "--locker", "nb-1", "--patron", "21000001"); code != 0 {
		t.Fatalf("order add with an orders token: %s", errw)
	}
	if _, errw, code := cli(t, "open", "-hub", api, "--locker", "nb-1", "A01", "--reason", "x"); code == 0 || !strings.Contains(errw, `lacks the scope "open"`) {
		t.Fatalf("open with an orders token: %d %s", code, errw)
	}
	t.Setenv("LOCKERHUB_TOKEN", admin)
	if out, errw, code := cli(t, "token", "list", "-hub", api); code != 0 || !strings.Contains(out, "ordering-platform") || strings.Contains(out, secret) {
		t.Fatalf("token list: %s %s", out, errw)
	}
	if _, errw, code := cli(t, "token", "revoke", "-hub", api, "ordering-platform"); code != 0 {
		t.Fatalf("revoke: %s", errw)
	}
	t.Setenv("LOCKERHUB_TOKEN", secret)
	if _, errw, code := cli(t, "lockers", "-hub", api); code == 0 || !strings.Contains(errw, "unknown or revoked token") {
		t.Fatalf("a revoked token: %d %s", code, errw)
	}
	t.Setenv("LOCKERHUB_TOKEN", "")
	if _, errw, code := cli(t, "lockers", "-hub", api); code == 0 || !strings.Contains(errw, "no API token: set LOCKERHUB_TOKEN") {
		t.Fatalf("no token: %d %s", code, errw)
	}
	t.Setenv("LOCKERHUB_TOKEN", admin)
	out, errw, code = cli(t, "audit", "-hub", api)
	if code != 0 || !strings.Contains(out, "POST /v1/orders") || !strings.Contains(out, "ordering-platform") || !strings.Contains(out, "POST /v1/tokens/ordering-platform/revoke") {
		t.Fatalf("audit: %s %s", out, errw)
	}
}

// Beyond loopback with TLS: lockerhub serves its API over HTTPS, the CLI
// reaches it at https://ADDR with its token, and plain HTTP gets nowhere.
func TestServeOverTLS(t *testing.T) {
	dir := t.TempDir()
	cli(t, "keygen", "-out", dir)
	pki := brokertest.NewPKI(t)
	addr := fmt.Sprintf("127.0.0.1:%d", brokertest.FreePort(t))
	conf := filepath.Join(dir, "lockerhub.yaml")
	os.WriteFile(conf, []byte(fmt.Sprintf("store: {path: hub.db}\nhttp: {listen: %q, tls: {cert_file: %q, key_file: %q}}\nmqtt: {listen: \"127.0.0.1:%d\"}\nlockers: [nb-1]\n",
		addr, pki.ServerCert, pki.ServerKey, brokertest.FreePort(t))), 0o600)
	bin := hubproc.Build(t)
	h := hubproc.New(t, "lockerhub", bin, conf, addr, filepath.Join(dir, "lockerhub.log"))
	h.CAFile = pki.CAFile
	h.Start()
	cmd := exec.Command(bin, "-hub", "https://"+addr, "-token-file", filepath.Join(dir, "admin.token"), "lockers")
	cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+pki.CAFile)
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "LOCKER") {
		t.Fatalf("lockers over TLS: %v\n%s", err, out)
	}
	resp, err := http.Get("http://" + addr + "/v1/lockers")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("plain HTTP to the TLS port: %d", resp.StatusCode)
		}
	}
}

// TestReleaseSignAndAdd: a release key made with keygen -name release
// signs binaries where it is kept (release sign, no hub); release add
// sends each FILE.manifest with its binary, and a hub with that key takes
// them and no binary without, nor one altered after signing.
func TestReleaseSignAndAdd(t *testing.T) {
	keys := t.TempDir()
	out, errw, code := cli(t, "keygen", "-name", "release", "-out", keys)
	if code != 0 || !strings.Contains(out, "release_key:") || !strings.Contains(out, "public_key:") {
		t.Fatalf("keygen -name release: %d %s %s", code, out, errw)
	}
	raw, _ := os.ReadFile(filepath.Join(keys, "release.pub"))
	pub, err := protocol.ParsePublicKey(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}

	url := brokertest.StartEmbedded(t, protocol.DefaultPrefix, "lockerhub")
	dir := t.TempDir()
	cli(t, "keygen", "-out", dir)
	priv, _ := hubconfig.ReadSigningKey(filepath.Join(dir, "central.key"))
	h := hubtest.Start(t, hub.Config{Brokers: []string{url}, SigningKey: priv, PickupKey: lockertest.Key,
		ReleaseKey: pub, ReleasesDir: filepath.Join(dir, "releases")})
	srv := httptest.NewServer(api.New(api.ForHub(h)))
	defer srv.Close()
	t.Setenv("LOCKERHUB_TOKEN", hubtest.Token(t, h))
	api := strings.TrimPrefix(srv.URL, "http://")

	arm64, armv7 := filepath.Join(dir, "lockerd-linux-arm64"), filepath.Join(dir, "lockerd-linux-armv7")
	os.WriteFile(arm64, []byte("an arm64 build"), 0o755)
	os.WriteFile(armv7, []byte("an armv7 build"), 0o755)
	if _, errw, code := cli(t, "release", "add", "-hub", api, "--version", "0.17.0", arm64); code == 0 || !strings.Contains(errw, "only releases signed with the release key") {
		t.Fatalf("unsigned, to a hub with a release key: %d %s", code, errw)
	}
	if out, errw, code := cli(t, "release", "sign", "--key", filepath.Join(keys, "release.key"), "--version", "0.17.0", arm64, armv7); code != 0 || !strings.Contains(out, "lockerd-linux-armv7.manifest: 0.17.0 armv7") {
		t.Fatalf("release sign: %d %s %s", code, out, errw)
	}
	os.WriteFile(armv7, []byte("an armv7 build, altered"), 0o755)
	if _, errw, code := cli(t, "release", "add", "-hub", api, "--version", "0.17.0", armv7); code == 0 || !strings.Contains(errw, "is not the one the manifest was signed for") {
		t.Fatalf("altered after signing: %d %s", code, errw)
	}
	if out, errw, code := cli(t, "release", "add", "-hub", api, "--version", "0.17.0", arm64); code != 0 || !strings.Contains(out, "its manifest signed with the release key") {
		t.Fatalf("release add: %d %s %s", code, out, errw)
	}
	rels, err := h.Fleet().Releases()
	if err != nil || len(rels) != 1 || len(rels[0].Artifacts) != 1 {
		t.Fatalf("releases: %+v %v", rels, err)
	}
	if m, err := protocol.OpenManifest(rels[0].Artifacts["arm64"], []ed25519.PublicKey{pub}); err != nil || m.Size != int64(len("an arm64 build")) || m.NextKey != "" {
		t.Fatalf("the stored manifest: %+v %v", m, err)
	}

	// A rotation: the release key names its successor in the manifest
	// it signs; the key itself, or no key, is refused.
	next := t.TempDir()
	cli(t, "keygen", "-name", "release", "-out", next)
	nextPub, _ := os.ReadFile(filepath.Join(next, "release.pub"))
	for _, bad := range []string{filepath.Join(keys, "release.pub"), filepath.Join(next, "release.key")} {
		if _, errw, code := cli(t, "release", "sign", "--key", filepath.Join(keys, "release.key"), "--version", "0.17.1", "--next-key", bad, arm64); code == 0 || !strings.Contains(errw, "--next-key") {
			t.Fatalf("--next-key %s: %d %s", bad, code, errw)
		}
	}
	if out, errw, code := cli(t, "release", "sign", "--key", filepath.Join(keys, "release.key"), "--version", "0.17.1", "--next-key", filepath.Join(next, "release.pub"), arm64); code != 0 || !strings.Contains(out, "with the next release key") {
		t.Fatalf("release sign --next-key: %d %s %s", code, out, errw)
	}
	signed, _ := os.ReadFile(arm64 + ".manifest")
	if m, err := protocol.OpenManifest(signed, []ed25519.PublicKey{pub}); err != nil || m.NextKey != strings.TrimSpace(string(nextPub)) {
		t.Fatalf("the rotation manifest: %+v %v", m, err)
	}
}

// Every client command's help is printed without a token and without a
// hub (nothing listens at -hub 127.0.0.1:1).
func TestClientHelpNeedsNoToken(t *testing.T) {
	t.Setenv("LOCKERHUB_TOKEN", "")
	t.Setenv("LOCKERHUB_TOKEN_FILE", "")
	for _, args := range [][]string{
		{"webhooks", "-h"}, {"order", "add", "--help"}, {"circ", "-help"}, {"token", "help"}, {"-hub", "127.0.0.1:1", "provision", "-h"},
		{"alarms", "-h"}, {"release", "list", "-h"}, {"rollout", "-h"}, {"users", "-h"}, {"events", "--locker", "x", "-h"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			out, errw, code := cli(t, args...)
			cmd := args[0]
			if cmd == "-hub" {
				cmd = args[2]
			}
			if code != 0 || errw != "" || !strings.Contains(out, "lockerhub "+cmd) || !strings.Contains(out, "-token-file") {
				t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errw)
			}
		})
	}
	// Without -h, the token is still demanded.
	if _, errw, code := cli(t, "webhooks", "list"); code == 0 || !strings.Contains(errw, "no API token") {
		t.Fatalf("webhooks list without a token: %d %s", code, errw)
	}
}
