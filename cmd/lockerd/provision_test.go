package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/lockerd/lockerd/cmd/internal/hubproc"
	"github.com/lockerd/lockerd/drivers/serialscan/serialtest"
	"github.com/lockerd/lockerd/locker/lockertest"
	"github.com/lockerd/lockerd/sync/brokertest"
	"github.com/lockerd/lockerd/sync/hub"
	"github.com/lockerd/lockerd/sync/hub/hubclient"
	"github.com/lockerd/lockerd/sync/protocol"
)

var (
	lockerctlOnce sync.Once
	lockerctlBin  string
	lockerctlErr  error
)

// lockerctl builds cmd/lockerctl once per test process.
func lockerctl(t *testing.T) string {
	t.Helper()
	lockerctlOnce.Do(func() {
		dir, err := os.MkdirTemp("", "lockerctl-bin")
		if err != nil {
			lockerctlErr = err
			return
		}
		lockerctlBin = filepath.Join(dir, "lockerctl")
		out, err := exec.Command("go", "build", "-o", lockerctlBin, "../lockerctl").CombinedOutput()
		if err != nil {
			lockerctlErr = fmt.Errorf("build lockerctl: %v\n%s", err, out)
		}
	})
	if lockerctlErr != nil {
		t.Fatal(lockerctlErr)
	}
	return lockerctlBin
}

// TestProvisionBlankCabinet: a cabinet with lockerd installed and no
// configuration is provisioned from a one-time token: lockerhub makes it
// (and its QR code), lockerctl provision fetches the cabinet's identity,
// keys, broker password and configuration, writes them (secrets 0600),
// and lockerd on them connects to the hub's embedded broker, whose
// password check the users file alone would fail. The same token again,
// a token for another locker, and a reply altered on the way are each
// refused, with nothing written; every attempt is in the audit log.
func TestProvisionBlankCabinet(t *testing.T) {
	t.Parallel() // self-contained (its own broker, hub and directories), and mostly waiting
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "users"), []byte("lockerhub:central-secret\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "central.pw"), []byte("central-secret\n"), 0o600)
	mqttAddr := fmt.Sprintf("127.0.0.1:%d", brokertest.FreePort(t))
	ph := startProvisioningHub(t, dir, fmt.Sprintf("mqtt: {listen: %q, users_file: users, password_file: central.pw}\n", mqttAddr))
	addr, api, hubCLI, template, raw := ph.addr, ph.api, ph.cli, ph.template, ph.wiring
	out, err := hubCLI("provision", "create", "--locker", lockerID, "--config", template, "--central", "http://"+addr)
	if err != nil {
		t.Fatalf("provision create: %v\n%s", err, out)
	}
	token := regexp.MustCompile(`lhp_[0-9a-f]{16}_[0-9a-f]{64}`).FindString(out)
	if token == "" || !strings.Contains(out, "█") {
		t.Fatalf("no token, or no QR code, in:\n%s", out)
	}
	// A configuration that does not validate is refused at the hub, with
	// lockerd's own FILE:LINE message.
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, bytes.Replace(raw, []byte("size: S"), []byte("size: XXL"), 1), 0o600)
	if out, err := hubCLI("provision", "create", "--locker", "e2e-02", "--config", bad); err == nil || !strings.Contains(out, `"XXL": want S, M, L or XL`) {
		t.Fatalf("a bad configuration: %v\n%s", err, out)
	}

	ctl := lockerctl(t)
	// The service user the secrets are given to: the package's is
	// "lockerd"; here one every Debian system has.
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	provisionWith := func(central, lockerArg, tok, into string) (string, error) {
		out, err := exec.Command(ctl, "provision", "--central", central, "--locker", lockerArg, "--token", tok, "--dir", into, "--owner", "nobody").CombinedOutput()
		return string(out), err
	}
	if out, err := exec.Command(ctl, "provision", "--central", "http://"+addr, "--locker", lockerID, "--token", token, "--dir", filepath.Join(dir, "nouser"), "--owner", "no-such-user").CombinedOutput(); err == nil || !strings.Contains(string(out), `the service user "no-such-user" does not exist`) {
		t.Fatalf("an owner that does not exist: %v\n%s", err, out)
	}
	// A reply altered on the way (a proxy that rewrites the broker) is
	// refused before anything is written.
	target, _ := url.Parse("http://" + addr)
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ModifyResponse = func(r *http.Response) error {
		body, _ := io.ReadAll(r.Body)
		var rep protocol.ProvisionReply
		if json.Unmarshal(body, &rep) == nil && rep.Body != "" {
			inner, _ := base64.StdEncoding.DecodeString(rep.Body)
			inner = bytes.ReplaceAll(inner, []byte(mqttAddr), []byte("203.0.113.9:1883"))
			rep.Body = base64.StdEncoding.EncodeToString(inner)
			body, _ = json.Marshal(rep)
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		r.Header.Del("Content-Length")
		return nil
	}
	mitm := httptest.NewServer(proxy)
	defer mitm.Close()
	tampered := filepath.Join(dir, "tampered")
	if out, err := provisionWith(mitm.URL, lockerID, token, tampered); err == nil || !strings.Contains(out, "does not match the token") {
		t.Fatalf("a tampered reply: %v\n%s", err, out)
	}
	if entries, _ := os.ReadDir(tampered); len(entries) != 0 {
		t.Fatalf("files written from a tampered reply: %v", entries)
	}
	// (That used the token: the hub answered. A new one for the cabinet.)
	out, err = hubCLI("provision", "create", "--locker", lockerID, "--config", template)
	if err != nil {
		t.Fatal(out)
	}
	token = regexp.MustCompile(`lhp_[0-9a-f]{16}_[0-9a-f]{64}`).FindString(out)

	// A token for this locker, presented as another: refused.
	if out, err := provisionWith("http://"+addr, "e2e-99", token, filepath.Join(dir, "other")); err == nil || !strings.Contains(out, "is for locker "+lockerID+", not e2e-99") {
		t.Fatalf("a token for another locker: %v\n%s", err, out)
	}

	// The blank cabinet: lockerd runs unprovisioned (no scanner given:
	// none under /dev/serial/by-id either), and starts serving by itself
	// once lockerctl provision has written its configuration.
	etc := filepath.Join(dir, "etc-lockerd")
	d := startBin(t, lockerdBin, filepath.Join(etc, "lockerd.yaml"), nil)
	until(t, "lockerd unprovisioned", func() bool { return strings.Contains(d.logs(), "not provisioned: scan the provisioning QR code") })
	if out, err := provisionWith("http://"+addr, lockerID, token, etc); err != nil || !strings.Contains(out, "provisioned: locker "+lockerID) {
		t.Fatalf("provision: %v\n%s", err, out)
	}
	// Secrets 0600 and the service user's; the configuration 0640 and
	// its group's; the directory, made here, its group may write in (a
	// pushed configuration is written there).
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	for name, want := range map[string]struct {
		mode     os.FileMode
		uid, gid int
	}{"pickup.key": {0o600, uid, gid}, "mqtt.password": {0o600, uid, gid}, "locker.key": {0o600, uid, gid}, "lockerd.yaml": {0o640, 0, gid}, ".": {0o770 | os.ModeDir, 0, gid}} {
		st, err := os.Stat(filepath.Join(etc, name))
		if err != nil {
			t.Fatal(err)
		}
		sys := st.Sys().(*syscall.Stat_t)
		if st.Mode()&(os.ModePerm|os.ModeDir) != want.mode || int(sys.Uid) != want.uid || int(sys.Gid) != want.gid {
			t.Fatalf("%s: mode %v owner %d:%d, want %v %d:%d", name, st.Mode(), sys.Uid, sys.Gid, want.mode, want.uid, want.gid)
		}
	}
	d.waitReady(30 * time.Second)
	if !strings.Contains(d.logs(), "provisioned (by lockerctl provision): lockerd starts on its configuration") {
		t.Fatalf("lockerd did not take the configuration lockerctl wrote:\n%s", d.logs())
	}
	// Used once: again is refused, saying when.
	if out, err := provisionWith("http://"+addr, lockerID, token, filepath.Join(dir, "again")); err == nil || !strings.Contains(out, "was used at") {
		t.Fatalf("a token used twice: %v\n%s", err, out)
	}

	// lockerd runs on what was written and reaches the hub with its
	// provisioned password.
	servesThroughHub(t, api, d, "the provisioned locker")
	// The audit log has every attempt; the provisioning list says which
	// token was used, when and from where.
	audit, err := api.AuditLog()
	if err != nil {
		t.Fatal(err)
	}
	var refused, used int
	for _, a := range audit {
		if a.Action == "POST /v1/provision" {
			if a.Status == 200 {
				used++
			} else {
				refused++
			}
		}
	}
	if used != 2 || refused < 2 {
		t.Fatalf("audit: %d provisionings, %d refusals", used, refused)
	}
	toks, err := api.ProvisionTokens()
	if err != nil || len(toks) != 2 || toks[0].UsedAt.IsZero() || toks[1].UsedAt.IsZero() {
		t.Fatalf("tokens: %+v %v", toks, err)
	}

	// A second blank cabinet, provisioned by scanning the token's QR code
	// on its scanner while lockerd runs unprovisioned.
	c2 := newCabinet(t, "0s")
	raw2, _ := os.ReadFile(c2.Config)
	template2 := filepath.Join(dir, "cabinet2.yaml")
	os.WriteFile(template2, raw2, 0o600)
	out, err = hubCLI("provision", "create", "--locker", "e2e-02", "--config", template2, "--central", "http://"+addr)
	if err != nil {
		t.Fatal(out)
	}
	// The QR code's text, as lockerhub provision create encodes it.
	token2 := regexp.MustCompile(`lhp_[0-9a-f]{16}_[0-9a-f]{64}`).FindString(out)
	uri := "lockerd-provision:?" + url.Values{"central": {"http://" + addr}, "locker": {"e2e-02"}, "token": {token2}}.Encode()
	etc2 := filepath.Join(dir, "etc2")
	os.MkdirAll(etc2, 0o755)
	qrScanner := filepath.Join(dir, "usb-QR-scanner")
	pty := serialtest.Plug(t, qrScanner)
	stopScanning := make(chan struct{})
	go func() {
		for {
			select {
			case <-stopScanning:
				return
			case <-time.After(300 * time.Millisecond):
				pty.Write([]byte("]Q1" + uri + "\r\n"))
			}
		}
	}()
	d2 := launchBin(t, lockerdBin, filepath.Join(etc2, "lockerd.yaml"), nil,
		"/bin/sh", "-c", `exec "$0" "$@" -provision-scanners `+qrScanner)
	close(stopScanning)
	if !strings.Contains(d2.logs(), "not provisioned: scan the provisioning QR code") || !strings.Contains(d2.logs(), "provisioned: lockerd starts") {
		t.Fatalf("unprovisioned mode:\n%s", d2.logs())
	}
	onlineAtHub(t, api, "e2e-02", "the second cabinet")
}

// TestProvisionBrokerCertificate: against Mosquitto as docs/mosquitto
// sets it up (client certificates, the locker id as username, the ACL),
// a blank cabinet provisioned by a hub with a client CA is issued a
// certificate for a key it made itself, and serves: online at the hub
// (which connects with its own certificate) and taking an order. The key
// is the service user's, 0600.
func TestProvisionBrokerCertificate(t *testing.T) {
	t.Parallel() // self-contained, and mostly waiting
	acl, err := os.ReadFile("../../docs/mosquitto/acl")
	if err != nil {
		t.Fatal(err)
	}
	pki := brokertest.NewPKI(t)
	dir := t.TempDir()
	// The broker's crlfile: the hub writes it (an empty one before it
	// has the broker, as an operator would start them).
	crlFile := filepath.Join(dir, "lockers.crl")
	pki.EmptyCRL(t, crlFile)
	before, _ := os.ReadFile(crlFile)
	mq := brokertest.StartMosquitto(t, brokertest.MosquittoOptions{TLS: pki, ACL: string(acl), CRLFile: crlFile})
	hubCert, hubKey := pki.Client(t, "lockerhub")
	ph := startProvisioningHub(t, dir, fmt.Sprintf(`mqtt:
  broker: %s
  tls: {ca_file: %s, cert_file: %s, key_file: %s}
provision:
  broker_urls: [%s]
  broker_ca_file: %s
  client_ca: {cert_file: %s, key_file: %s, crl_file: %s}
`, mq.URL, pki.CAFile, hubCert, hubKey, mq.URL, pki.CAFile, pki.CAFile, pki.CAKeyFile, crlFile))
	if after, _ := os.ReadFile(crlFile); bytes.Equal(before, after) {
		t.Fatal("the hub did not write its revocation list at start")
	}
	api := ph.api
	out, err := ph.cli("provision", "create", "--locker", lockerID, "--config", ph.template)
	if err != nil {
		t.Fatalf("provision create: %v\n%s", err, out)
	}
	token := regexp.MustCompile(`lhp_[0-9a-f]{16}_[0-9a-f]{64}`).FindString(out)
	etc := filepath.Join(dir, "etc-lockerd")
	// The two arguments: the token names the locker.
	raw, err := exec.Command(lockerctl(t), "provision", "--central", "http://"+ph.addr, "--token", token, "--dir", etc, "--owner", "nobody").CombinedOutput()
	out = string(raw)
	if err != nil || !strings.Contains(out, "broker certificate: ") || !strings.Contains(out, "provisioned: locker "+lockerID) {
		t.Fatalf("provision: %v\n%s", err, out)
	}
	nobody, _ := user.Lookup("nobody")
	uid, _ := strconv.Atoi(nobody.Uid)
	if os.Geteuid() != 0 {
		uid = os.Geteuid() // not root: the files stay the writer's
	}
	for name, want := range map[string]os.FileMode{"mqtt.key": 0o600, "mqtt.crt": 0o644} {
		st, err := os.Stat(filepath.Join(etc, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != want || (name == "mqtt.key" && int(st.Sys().(*syscall.Stat_t).Uid) != uid) {
			t.Fatalf("%s: mode %v owner %d", name, st.Mode(), st.Sys().(*syscall.Stat_t).Uid)
		}
	}
	cfg, _ := os.ReadFile(filepath.Join(etc, "lockerd.yaml"))
	if !strings.Contains(string(cfg), "cert_file: mqtt.crt") || !strings.Contains(string(cfg), "key_file: mqtt.key") {
		t.Fatalf("the configuration does not name the certificate:\n%s", cfg)
	}

	d := startBin(t, lockerdBin, filepath.Join(etc, "lockerd.yaml"), nil)
	d.waitReady(30 * time.Second)
	servesThroughHub(t, api, d, "the locker, through Mosquitto with its certificate,")

	// The cabinet is stolen: revoked at the hub, its certificate on the
	// list the broker rereads, it connects no more; the hub makes it no
	// order.
	if out, err := ph.cli("provision", "revoke", "--locker", lockerID, "--reason", "stolen"); err != nil || !strings.Contains(out, "on the revocation list") {
		t.Fatalf("provision revoke: %v\n%s", err, out)
	}
	mq.Reload()
	cert, err := tls.LoadX509KeyPair(filepath.Join(etc, "mqtt.crt"), filepath.Join(etc, "mqtt.key"))
	if err != nil {
		t.Fatal(err)
	}
	caPEM, _ := os.ReadFile(pki.CAFile)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	var last error
	until(t, "the broker refusing the revoked certificate", func() bool {
		o := mqtt.NewClientOptions().AddBroker(mq.URL).SetClientID(lockerID + "-probe").SetAutoReconnect(false).SetConnectTimeout(3 * time.Second).
			SetTLSConfig(&tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
		cl := mqtt.NewClient(o)
		tok := cl.Connect()
		tok.WaitTimeout(5 * time.Second)
		if last = tok.Error(); last == nil {
			cl.Disconnect(50)
		}
		return last != nil && strings.Contains(last.Error(), "revoked")
	})
	if _, err := api.CreateOrder(hub.NewOrder{Locker: lockerID}); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("an order for the revoked cabinet: %v", err)
	}
}

// provisioningHub is a lockerhub process that provisions cabinets, and
// the wiring of one (a template as the technician writes it: no keys, no
// broker; provisioning fills those in).
type provisioningHub struct {
	addr     string
	api      *hubclient.Client
	cli      func(args ...string) (string, error) // lockerhub's CLI against it
	template string                               // the wiring's file
	wiring   []byte
}

// startProvisioningHub starts lockerhub in dir with a central key, the
// pickup key, its store and API, and rest (its broker sections).
func startProvisioningHub(t *testing.T, dir, rest string) *provisioningHub {
	t.Helper()
	key, _ := newKey(t)
	os.WriteFile(filepath.Join(dir, "central.key"), []byte(hex.EncodeToString(key.Seed())+"\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "pickup.key"), []byte(hex.EncodeToString(lockertest.Key)+"\n"), 0o600)
	ph := &provisioningHub{addr: fmt.Sprintf("127.0.0.1:%d", brokertest.FreePort(t)), template: filepath.Join(dir, "cabinet.yaml")}
	conf := filepath.Join(dir, "lockerhub.yaml")
	os.WriteFile(conf, []byte(fmt.Sprintf("store: {path: hub.db}\nhttp: {listen: %q}\nkeys: {signing_key_file: central.key, pickup_key_file: pickup.key}\n%s", ph.addr, rest)), 0o600)
	bin := hubproc.Build(t)
	hp := hubproc.New(t, "lockerhub", bin, conf, ph.addr, filepath.Join(dir, "lockerhub.log"))
	hp.Start()
	ph.api = hubclient.New(ph.addr)
	ph.api.Token = hp.Token()
	ph.cli = func(args ...string) (string, error) {
		cmd := exec.Command(bin, append([]string{"-hub", ph.addr}, args...)...)
		cmd.Env = append(os.Environ(), "LOCKERHUB_TOKEN="+hp.Token())
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	ph.wiring, _ = os.ReadFile(newCabinet(t, "0s").Config)
	os.WriteFile(ph.template, ph.wiring, 0o600)
	return ph
}

// onlineAtHub waits until the hub says locker id is online.
func onlineAtHub(t *testing.T, api *hubclient.Client, id, what string) {
	t.Helper()
	until(t, what+" online at the hub", func() bool {
		ls, _ := api.Lockers()
		for _, l := range ls {
			if l.ID == id && l.Online {
				return true
			}
		}
		return false
	})
}

// servesThroughHub waits until the provisioned locker d is online at the
// hub and takes an order the hub makes (its first).
func servesThroughHub(t *testing.T, api *hubclient.Client, d *daemon, what string) {
	t.Helper()
	onlineAtHub(t, api, lockerID, what)
	cr, err := api.CreateOrder(hub.NewOrder{Locker: lockerID})
	if err != nil {
		t.Fatal(err)
	}
	until(t, "the order at "+what, func() bool {
		var orders []map[string]any
		d.call("GET", "/v1/orders", nil, &orders)
		return len(orders) == 1 && orders[0]["id"] == cr.Order.ID
	})
}
