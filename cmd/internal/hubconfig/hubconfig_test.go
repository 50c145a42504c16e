package hubconfig

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Every problem is reported as FILE:LINE: key: what, all at once.
func TestProblems(t *testing.T) {
	tests := []struct {
		name, text string
		want       []string
	}{
		{"unknown key", "store: {path: x.db}\nstor: 1\n", []string{"hub.yaml:2: stor: unknown key"}},
		{"wrong type", "lockers: e2e-01\n", []string{"hub.yaml:1: lockers: want a list"}},
		{"duplicate", "http: {listen: 127.0.0.1:1}\nhttp: {listen: 127.0.0.1:2}\n", []string{"hub.yaml:2: http: given twice (first on line 1)"}},
		{"driver", "store:\n  driver: mysql\n", []string{"hub.yaml:2: store.driver: \"mysql\": known drivers: bolt, postgres"}},
		{"half a client CA", "provision:\n  client_ca: {cert_file: ca.crt}\n", []string{"hub.yaml:2: provision.client_ca: give both cert_file and key_file"}},
		{"client certificate TTL", "provision:\n  client_ca: {cert_file: ca.crt, key_file: ca.key, ttl: 1h}\n", []string{"hub.yaml:2: provision.client_ca.ttl: 1h0m0s: want 24h to 87600h"}},
		{"a revocation list without a CA", "provision:\n  client_ca: {crl_file: lockers.crl}\n", []string{"hub.yaml:2: provision.client_ca.crl_file: with cert_file and key_file"}},
		{"TLS to the embedded broker", "mqtt:\n  tls: {ca_file: ca.crt}\n", []string{"hub.yaml:2: mqtt.tls: for an external broker"}},
		{"release key", "releases:\n  public_key: AAAA\n", []string{"hub.yaml:2: releases.public_key: an Ed25519 public key has 32 bytes, this one 3"}},
		{"postgres without a DSN file", "store:\n  driver: postgres\n", []string{"hub.yaml:1: store.dsn_file: required with driver postgres"}},
		{"postgres with a path", "store:\n  driver: postgres\n  dsn_file: dsn\n  path: x.db\n", []string{"hub.yaml:4: store.path: for driver bolt"}},
		{"bolt with a DSN file", "store:\n  dsn_file: dsn\n", []string{"hub.yaml:2: store.dsn_file: for driver postgres"}},
		{"open API without TLS", "http:\n  listen: 0.0.0.0:8490\n", []string{"hub.yaml:2: http.listen:", "needs TLS (http.tls.cert_file and key_file) or http.behind_proxy: true"}},
		{"half a TLS pair", "http:\n  listen: 0.0.0.0:8490\n  tls: {cert_file: c.pem}\n", []string{"hub.yaml:3: http.tls: give both cert_file and key_file"}},
		{"open broker", "mqtt:\n  listen: 0.0.0.0:1883\n", []string{"hub.yaml:2: mqtt.listen:", "users_file"}},
		{"broker URL", "mqtt: {broker: \"mqtt.example:1883\"}\n", []string{"hub.yaml:1: mqtt.broker:"}},
		{"broker and brokers", "mqtt:\n  broker: tcp://a:1883\n  brokers: [tcp://b:1883]\n", []string{"hub.yaml:3: mqtt.brokers: give mqtt.broker (one) or mqtt.brokers"}},
		{"a cluster node's URL", "mqtt:\n  brokers: [tcp://b:1883, \"b:1884\"]\n", []string{"hub.yaml:2: mqtt.brokers[1]:"}},
		{"prefix NATS cannot carry", "mqtt: {topic_prefix: lockers/v1.1}\n", []string{"hub.yaml:1: mqtt.topic_prefix:", "NATS"}},
		{"locker id", "lockers:\n  - ok-1\n  - \"bad/id\"\n", []string{"hub.yaml:3: lockers[1]:"}},
		{"lease", "lease_ttl: 1s\n", []string{"hub.yaml:1: lease_ttl: 1s: want 3s to 5m"}},
		{"webhook event", "webhooks:\n  - name: platform\n    url: https://ils.example/hooks\n    events: [order.loaded, order.opened]\n    secret_file: s\n", []string{"hub.yaml:4: webhooks[0].events[1]: \"order.opened\": known:"}},
		{"webhook url", "webhooks:\n  - name: platform\n    url: ftp://x\n    events: [order.loaded]\n    secret_file: s\n", []string{"hub.yaml:3: webhooks[0].url:"}},
		{"webhook to loopback", "webhooks:\n  - name: platform\n    url: http://127.0.0.1:8490/v1/open\n    events: [order.loaded]\n    secret_file: s\n", []string{"hub.yaml:3: webhooks[0].url: refused by the hub's egress policy: 127.0.0.1 is loopback"}},
		{"sip2 alarm after", "sip2: {address: 127.0.0.1:6001, user: u, password_file: p, institution: I, alarm_after: 5s}\n", []string{"hub.yaml:1: sip2.alarm_after: 5s: want 30s to 24h"}},
		{"egress allow", "egress_allow: [10.20.0.0/16, library-net]\n", []string{"hub.yaml:1: egress_allow[1]: \"library-net\": want an address or a prefix"}},
		{"webhook secret", "webhooks:\n  - name: platform\n    url: https://x/\n    events: [order.loaded]\n", []string{"hub.yaml:2: webhooks[0].secret_file: required"}},
		{"offline after", "alarms:\n  offline_after: 1s\n", []string{"hub.yaml:2: alarms.offline_after: 1s: want 30s to 168h"}},
		{"resend", "resend_after: 0s\n", []string{"hub.yaml:1: resend_after: 0s: want 1s to 1h"}},
		{"notices without a key", "notices:\n  email: {address: \"smtp.example.org:587\", from: lockers@library.example.org}\n", []string{"hub.yaml:1: notices.key_file: required with a channel"}},
		{"notice sender", "notices:\n  key_file: notice.key\n  email:\n    address: \"smtp.example.org:587\"\n    from: \"Library <lockers@library.example.org>\"\n", []string{"hub.yaml:5: notices.email.from:"}},
		{"notice password in the clear", "notices:\n  key_file: notice.key\n  email:\n    address: \"smtp.example.org:25\"\n    from: lockers@library.example.org\n    tls: none\n    username: lockers\n    password_file: pw\n", []string{"hub.yaml:8: notices.email.password_file: a password is not sent without TLS"}},
		{"notice relay", "notices:\n  key_file: notice.key\n  email: {address: smtp.example.org, from: a@b.org}\n", []string{"hub.yaml:3: notices.email.address:"}},
		{"delivery locker", "notices:\n  delivery_locker: \"not a locker!\"\n", []string{"hub.yaml:2: notices.delivery_locker:"}},
		{"notice gateway to loopback", "notices:\n  key_file: notice.key\n  gateway:\n    url: http://127.0.0.1:9000/sms\n    secret_file: s\n", []string{"hub.yaml:4: notices.gateway.url: refused by the hub's egress policy"}},
		{"place language", "places:\n  gulou-1:\n    name: {zh: 鼓楼, fr: Gulou}\n", []string{"hub.yaml:3: places.gulou-1.name.fr: want zh or en"}},
		{"ttl", "command_ttl: 2h\n", []string{"hub.yaml:1: command_ttl: 2h0m0s: want 5s to 1h"}},
		{"sip2 without an address", "sip2:\n  user: locker\n", []string{"hub.yaml:1: sip2.address: required with the sip2 section"}},
		{"sip2 address", "sip2:\n  address: ils.example\n  user: u\n  password_file: pw\n  institution: LIB\n", []string{"hub.yaml:2: sip2.address: \"ils.example\": want host:port"}},
		{"sip2 what it needs", "sip2:\n  address: ils:6001\n", []string{"sip2.user: required", "sip2.password_file: required", "sip2.institution: required"}},
		{"sip2 encoding", "sip2:\n  address: ils:6001\n  user: u\n  password_file: pw\n  institution: LIB\n  encoding: big5\n", []string{"hub.yaml:6: sip2.encoding: encoding \"big5\": known: utf-8, gb18030, cp850, latin1"}},
		{"sip2 ca without tls", "sip2:\n  address: ils:6001\n  user: u\n  password_file: pw\n  institution: LIB\n  ca_file: ca.pem\n", []string{"hub.yaml:6: sip2.ca_file: only with tls: true"}},
		{"sip2 timeout", "sip2:\n  address: ils:6001\n  user: u\n  password_file: pw\n  institution: LIB\n  timeout: 10m\n", []string{"hub.yaml:6: sip2.timeout: 10m0s: want 1s to 2m"}},
		{"sip2 field separator", "sip2:\n  address: ils:6001\n  user: \"a|b\"\n  password_file: pw\n  institution: LIB\n", []string{"hub.yaml:3: sip2.user:", "no '|'"}},
		{"sip2 unknown key", "sip2:\n  address: ils:6001\n  pasword_file: pw\n", []string{"hub.yaml:3: sip2.pasword_file: unknown key"}},
		{"sip2 location of a locker", "sip2:\n  address: ils:6001\n  user: u\n  password_file: pw\n  institution: LIB\n  locations:\n    \"bad/id\": X\n", []string{"sip2.locations.bad/id:"}},
		{"not YAML", "store: [\n", []string{"hub.yaml:", "not valid YAML"}},
		{"empty", "", []string{"hub.yaml:1:", "file is empty"}},
		{"two at once", "stor: 1\nlockers: x\n", []string{"hub.yaml:1: stor:", "hub.yaml:2: lockers:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("hub.yaml", []byte(tt.text), false)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// A whole config: defaults filled in, paths taken from the file's folder,
// the files it names read (and a missing one reported at its key).
func TestLoad(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "central.key"), []byte(strings.Repeat("ab", 32)+"\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "pickup.key"), []byte(strings.Repeat("cd", 32)+"\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "users"), []byte("lockerhub:pw0\nnb-1:pw1\n"), 0o600)
	path := filepath.Join(dir, "lockerhub.yaml")
	os.WriteFile(path, []byte(`store: {path: hub.db}
mqtt:
  listen: 0.0.0.0:1883
  users_file: users
keys:
  signing_key_file: central.key
  pickup_key_file: pickup.key
lockers: [nb-2]
`), 0o600)
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Store.Driver != "bolt" || c.Store.Path != filepath.Join(dir, "hub.db") || c.HTTP.Listen != "127.0.0.1:8490" ||
		len(c.SigningKey) == 0 || len(c.PickupKey) == 0 || c.Users["nb-1"] != "pw1" || c.CommandTTL.D().Seconds() != 60 {
		t.Fatalf("config %+v", c)
	}
	os.Remove(filepath.Join(dir, "pickup.key"))
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "lockerhub.yaml:7: keys.pickup_key_file:") {
		t.Fatalf("a missing key file: %v", err)
	}
}

// driver postgres reads its DSN from the file dsn_file names; a file
// without one is reported at the key.
func TestPostgresDSNFile(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "central.key"), []byte(strings.Repeat("ab", 32)+"\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "hub.dsn"), []byte("postgres://hub:pw@db.example:5432/lockerhub\n"), 0o600)
	path := filepath.Join(dir, "lockerhub.yaml")
	os.WriteFile(path, []byte("store:\n  driver: postgres\n  dsn_file: hub.dsn\n"), 0o600)
	c, err := Load(path)
	if err != nil || c.DSN != "postgres://hub:pw@db.example:5432/lockerhub" || c.Store.Path != "" {
		t.Fatalf("config %+v %v", c, err)
	}
	os.WriteFile(filepath.Join(dir, "hub.dsn"), []byte("\n"), 0o600)
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "lockerhub.yaml:3: store.dsn_file:") || !strings.Contains(err.Error(), "no DSN") {
		t.Fatalf("an empty DSN file: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("store: {path: x.db}\nlockers: [a]\n"))
	f.Add([]byte("mqtt:\n  listen: 0.0.0.0:1\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := Parse("fuzz.yaml", raw, false)
		if (c == nil) == (err == nil) {
			t.Fatalf("config %v and error %v", c, err)
		}
	})
}

// The sip2 section: defaults, files read from the config's folder, a
// missing password file reported at its key.
func TestLoadSIP2(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "central.key"), []byte(strings.Repeat("ab", 32)+"\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "sip2.pw"), []byte("s3cret\n"), 0o600)
	path := filepath.Join(dir, "lockerhub.yaml")
	os.WriteFile(path, []byte("sip2:\n  address: ils.example:6001\n  user: locker\n  password_file: sip2.pw\n  institution: NBLIB\n  encoding: gb18030\n  locations: {nb-1: NB-COMMUNITY-3}\n"), 0o600)
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	s := c.SIP2
	if s.Password != "s3cret" || !s.ErrorDetection || !s.VerifyChecksums || s.Timeout.D() != 10*time.Second || s.Heartbeat.D() != time.Minute ||
		s.MaxAttempts != 5 || s.Encoding != "gb18030" || s.Locations["nb-1"] != "NB-COMMUNITY-3" || s.CheckinOnLoad {
		t.Fatalf("sip2: %+v", s)
	}
	os.Remove(filepath.Join(dir, "sip2.pw"))
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "lockerhub.yaml:4: sip2.password_file:") {
		t.Fatalf("missing password file: %v", err)
	}
}

// Beyond loopback the API is accepted behind a TLS-terminating proxy.
func TestAPIBehindProxy(t *testing.T) {
	c, err := Parse("hub.yaml", []byte("http: {listen: \"0.0.0.0:8490\", behind_proxy: true}\n"), false)
	if err != nil {
		t.Fatal(err)
	}
	if !c.HTTP.BehindProxy || c.HTTP.AdminTokenFile != "admin.token" {
		t.Fatalf("http: %+v", c.HTTP)
	}
}

// A secret file that is not one (a wrong path to something large) is
// refused at its key, not read whole.
func TestSecretFilesBounded(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "central.key"), []byte(strings.Repeat("ab", 32)+"\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "big"), make([]byte, maxSmallFile+1), 0o600)
	path := filepath.Join(dir, "lockerhub.yaml")
	os.WriteFile(path, []byte("sip2:\n  address: ils:6001\n  user: u\n  password_file: big\n  institution: LIB\n"), 0o600)
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "lockerhub.yaml:4: sip2.password_file:") || !strings.Contains(err.Error(), "over 65536 bytes") {
		t.Fatalf("an oversized password file: %v", err)
	}
}

// provision.client_ca: a CA certificate and its key are read; a key that
// is not the certificate's, or a certificate that is no CA, is reported
// at the key. mqtt.tls is read for an external broker.
func TestClientCA(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "central.key"), []byte(strings.Repeat("ab", 32)+"\n"), 0o600)
	writeCA := func(name string, isCA bool) *ecdsa.PrivateKey {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: isCA, BasicConstraintsValid: true}
		der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		kder, _ := x509.MarshalPKCS8PrivateKey(key)
		os.WriteFile(filepath.Join(dir, name+".crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
		os.WriteFile(filepath.Join(dir, name+".key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
		return key
	}
	caKey := writeCA("ca", true)
	writeCA("leaf", false)
	writeCA("other", true)
	path := filepath.Join(dir, "lockerhub.yaml")
	load := func(certName, keyName string) (*Config, error) {
		os.WriteFile(path, []byte(fmt.Sprintf(`mqtt:
  broker: ssl://broker.example:8883
  tls: {ca_file: ca.crt, cert_file: leaf.crt, key_file: leaf.key}
provision:
  client_ca: {cert_file: %s.crt, key_file: %s.key, ttl: 17520h}
`, certName, keyName)), 0o600)
		return Load(path)
	}
	c, err := load("ca", "ca")
	if err != nil {
		t.Fatal(err)
	}
	if c.ClientCA == nil || !caKey.PublicKey.Equal(c.ClientCA.Key.Public()) || c.ClientCA.TTL != 2*365*24*time.Hour ||
		c.MQTTTLS == nil || c.MQTTTLS.RootCAs == nil || len(c.MQTTTLS.Certificates) != 1 {
		t.Fatalf("client CA %+v, mqtt TLS %+v", c.ClientCA, c.MQTTTLS)
	}
	for _, tt := range []struct{ cert, key, says string }{
		{"ca", "other", "lockerhub.yaml:5: provision.client_ca:"},
		{"leaf", "leaf", "not a CA certificate"},
	} {
		if _, err := load(tt.cert, tt.key); err == nil || !strings.Contains(err.Error(), tt.says) {
			t.Errorf("%s with %s's key: %v", tt.cert, tt.key, err)
		}
	}
}
