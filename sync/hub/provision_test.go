package hub_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockerd/lockerd/locker/lockertest"
	"github.com/lockerd/lockerd/sync/brokertest"
	"github.com/lockerd/lockerd/sync/hub"
	"github.com/lockerd/lockerd/sync/hub/alarm"
	"github.com/lockerd/lockerd/sync/hub/fleet"
	"github.com/lockerd/lockerd/sync/hub/hubtest"
	"github.com/lockerd/lockerd/sync/protocol"
)

// TestProvisionTokens: a token is checked for its form, its secret, its
// use, its expiry and its locker, in that order of what is told; the
// reply's MAC is the token secret's; the credentials it issues are what
// the broker accepts, and nothing else.
func TestProvisionTokens(t *testing.T) {
	url := brokertest.StartEmbedded(t, protocol.DefaultPrefix, "lockerhub")
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	var validated []string
	h := hubtest.Start(t, hub.Config{Brokers: []string{url}, SigningKey: priv, PickupKey: lockertest.Key,
		Provisioning: fleet.Provisioning{
			Validate: func(name string, raw []byte) error {
				validated = append(validated, name)
				if strings.Contains(string(raw), "bad") {
					return errors.New(name + ":3: compartments[0].size: bad")
				}
				return nil
			},
			Render: func(raw []byte, p fleet.ProvisionedLocker) ([]byte, error) {
				return []byte(string(raw) + "\nid: " + p.Locker + "\nkey: " + p.CentralPublicKey), nil
			}}})
	if _, err := h.Fleet().CreateProvisionToken(fleet.NewProvisionToken{Locker: "nb-7", Config: "bad"}, "admin"); err == nil || !strings.Contains(err.Error(), "nb-7.yaml:3") {
		t.Fatalf("a bad configuration: %v", err)
	}
	if _, err := h.Fleet().CreateProvisionToken(fleet.NewProvisionToken{Locker: "nb-7"}, "admin"); err == nil {
		t.Fatal("a token without a configuration")
	}
	if _, err := h.Fleet().CreateProvisionToken(fleet.NewProvisionToken{Locker: "nb/7", Config: "x"}, "admin"); err == nil {
		t.Fatal("a token for a locker id with a slash")
	}
	created, err := h.Fleet().CreateProvisionToken(fleet.NewProvisionToken{Locker: "nb-7", Config: "wiring", TTL: "2h"}, "admin")
	if err != nil {
		t.Fatal(err)
	}
	if created.Record.Hash != "" {
		t.Fatal("the hash left the hub")
	}
	id, secret, err := protocol.SplitProvisionToken(created.Token)
	if err != nil || id != created.Record.ID {
		t.Fatalf("split: %v", err)
	}
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	pk := base64.StdEncoding.EncodeToString(pub)
	now := time.Now()
	other := "lhp_" + id + "_" + strings.Repeat("0", 64)
	tests := []struct {
		name   string
		req    protocol.ProvisionRequest
		at     time.Time
		status int
		says   string
	}{
		{"not a token", protocol.ProvisionRequest{Locker: "nb-7", Token: "hello", PublicKey: pk}, now, 403, "not a provisioning token"},
		{"wrong secret", protocol.ProvisionRequest{Locker: "nb-7", Token: other, PublicKey: pk}, now, 403, "unknown provisioning token"},
		{"no public key", protocol.ProvisionRequest{Locker: "nb-7", Token: created.Token}, now, 400, "public_key"},
		{"expired", protocol.ProvisionRequest{Locker: "nb-7", Token: created.Token, PublicKey: pk}, now.Add(3 * time.Hour), 410, "expired at"},
		{"another locker", protocol.ProvisionRequest{Locker: "nb-8", Token: created.Token, PublicKey: pk}, now, 403, "is for locker nb-7, not nb-8"},
	}
	for _, tt := range tests {
		_, err := h.Fleet().Provision(tt.req, "192.0.2.1", tt.at)
		var pe *fleet.ProvisionError
		if !errors.As(err, &pe) || pe.Status != tt.status || !strings.Contains(pe.Msg, tt.says) {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
	rep, err := h.Fleet().Provision(protocol.ProvisionRequest{Locker: "nb-7", Token: created.Token, PublicKey: pk}, "192.0.2.1", now)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := base64.StdEncoding.DecodeString(rep.Body)
	if rep.MAC != protocol.ProvisionMAC(secret, body) {
		t.Fatal("the reply's MAC is not the token's")
	}
	var b protocol.ProvisionBody
	if err := json.Unmarshal(body, &b); err != nil || b.Locker != "nb-7" || b.Username != "nb-7" || len(b.Password) != 64 ||
		!strings.Contains(b.Config, "id: nb-7") || len(b.PickupKeyHex) != 64 || b.CentralPublicKey == "" {
		t.Fatalf("body: %+v %v", b, err)
	}
	if _, err := h.Fleet().Provision(protocol.ProvisionRequest{Locker: "nb-7", Token: created.Token, PublicKey: pk}, "192.0.2.1", now); err == nil || !strings.Contains(err.Error(), "was used at") {
		t.Fatalf("used twice: %v", err)
	}
	if !h.Fleet().BrokerPasswordOK("nb-7", []byte(b.Password)) || h.Fleet().BrokerPasswordOK("nb-7", []byte(b.Password+"x")) || h.Fleet().BrokerPasswordOK("nb-8", []byte(b.Password)) {
		t.Fatal("the broker password check")
	}
	if known, _ := h.KnownLockers(); len(known) == 0 {
		t.Fatal("the provisioned locker is not served")
	}
}

// TestProvisionClientCertificate: a hub with a client CA issues the
// cabinet a broker certificate for the key of its request, named after
// the locker (whatever the request says), for client authentication,
// that the CA verifies; a request without a certificate request, or with
// one whose signature fails, is refused and leaves the token usable; a
// pushed configuration names the certificate's files again.
func TestProvisionClientCertificate(t *testing.T) {
	url := brokertest.StartEmbedded(t, protocol.DefaultPrefix, "lockerhub")
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	now := time.Now()
	caCert, caKey := newClientCA(t, x509.KeyUsageCertSign)
	if err := fleet.CheckClientCA(caCert, caKey, false); err != nil {
		t.Fatal(err)
	}
	if err := fleet.CheckClientCA(caCert, caKey, true); err == nil || !strings.Contains(err.Error(), "cRLSign") {
		t.Fatalf("a CA without cRLSign for a revocation list: %v", err)
	}
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err := fleet.CheckClientCA(caCert, otherKey, false); err == nil {
		t.Fatal("a CA with another key than its certificate's")
	}
	var rendered []fleet.ProvisionedLocker
	h := hubtest.Start(t, hub.Config{Brokers: []string{url}, SigningKey: priv, PickupKey: lockertest.Key,
		Provisioning: fleet.Provisioning{
			ClientCA: &fleet.ClientCA{Cert: caCert, Key: caKey}, // default TTL: 5 years, cut at the CA's end
			Validate: func(string, []byte) error { return nil },
			Render: func(raw []byte, p fleet.ProvisionedLocker) ([]byte, error) {
				rendered = append(rendered, p)
				return raw, nil
			}}})
	created, err := h.Fleet().CreateProvisionToken(fleet.NewProvisionToken{Locker: "nb-7", Config: "wiring"}, "admin")
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	pk := base64.StdEncoding.EncodeToString(pub)
	tlsKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	// The request asks for another name: the certificate is the hub's.
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "lockerhub"}}, tlsKey)
	forged := bytes.Clone(csr)
	forged[len(forged)-3] ^= 1 // in the signature
	for _, tt := range []struct{ name, csr, says string }{
		{"no request", "", "want a certificate request"},
		{"not base64", "!!", "want a certificate request"},
		{"a broken signature", base64.StdEncoding.EncodeToString(forged), "csr:"},
		{"too long", base64.StdEncoding.EncodeToString(make([]byte, 5000)), "1 to 4096 bytes"},
	} {
		_, err := h.Fleet().Provision(protocol.ProvisionRequest{Locker: "nb-7", Token: created.Token, PublicKey: pk, CSR: tt.csr}, "192.0.2.1", now)
		var pe *fleet.ProvisionError
		if !errors.As(err, &pe) || pe.Status != 400 || !strings.Contains(pe.Msg, tt.says) {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
	// No locker id in the request (lockerctl provision without
	// --locker): the token's.
	rep, err := h.Fleet().Provision(protocol.ProvisionRequest{Token: created.Token, PublicKey: pk, CSR: base64.StdEncoding.EncodeToString(csr)}, "192.0.2.1", now)
	if err != nil {
		t.Fatalf("the token after refused requests: %v", err)
	}
	body, _ := base64.StdEncoding.DecodeString(rep.Body)
	var b protocol.ProvisionBody
	if json.Unmarshal(body, &b); b.Locker != "nb-7" {
		t.Fatalf("the answer is for %q", b.Locker)
	}
	block, _ := pem.Decode([]byte(b.ClientCert))
	if block == nil {
		t.Fatalf("no certificate: %+v", b)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(caCert)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("the CA does not verify it for client authentication: %v", err)
	}
	if cert.Subject.CommonName != "nb-7" || !tlsKey.PublicKey.Equal(cert.PublicKey) || cert.IsCA || !cert.NotAfter.Equal(caCert.NotAfter) {
		t.Fatalf("certificate: CN %q, its key ours %v, CA %v, until %v (the CA's end %v)",
			cert.Subject.CommonName, tlsKey.PublicKey.Equal(cert.PublicKey), cert.IsCA, cert.NotAfter, caCert.NotAfter)
	}
	if p := rendered[len(rendered)-1]; p.ClientCertFile != protocol.ProvClientCert || p.ClientKeyFile != protocol.ProvClientKey {
		t.Fatalf("the provisioned configuration does not name the certificate: %+v", p)
	}
	if _, err := h.Fleet().PushConfig("nb-7", []byte("wiring v2"), "admin", ""); err != nil {
		t.Fatal(err)
	}
	if p := rendered[len(rendered)-1]; p.ClientCertFile != protocol.ProvClientCert || p.ClientKeyFile != protocol.ProvClientKey {
		t.Fatalf("a pushed configuration drops the certificate: %+v", p)
	}

	// Near its end an alarm says so, once; provisioning the cabinet again
	// resolves it.
	openCertAlarms := func() (n int, detail string) {
		as, err := h.Alarms(0)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range as {
			if a.Type == alarm.CertExpiring && a.State != alarm.Resolved {
				n, detail = n+1, a.Detail
			}
		}
		return n, detail
	}
	h.Fleet().SweepCertificates(now)
	if n, _ := openCertAlarms(); n != 0 {
		t.Fatal("an alarm for a certificate years from its end")
	}
	soon := cert.NotAfter.Add(-10 * 24 * time.Hour)
	h.Fleet().SweepCertificates(soon)
	h.Fleet().SweepCertificates(soon.Add(time.Hour))
	if n, detail := openCertAlarms(); n != 1 || !strings.Contains(detail, "ends at "+cert.NotAfter.UTC().Format(time.RFC3339)) {
		t.Fatalf("%d alarms: %s", n, detail)
	}
	again, err := h.Fleet().CreateProvisionToken(fleet.NewProvisionToken{Locker: "nb-7", Config: "wiring"}, "admin")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Fleet().Provision(protocol.ProvisionRequest{Token: again.Token, PublicKey: pk, CSR: base64.StdEncoding.EncodeToString(csr)}, "192.0.2.1", now); err != nil {
		t.Fatal(err)
	}
	if n, _ := openCertAlarms(); n != 0 {
		t.Fatal("the alarm outlived the new certificate")
	}
}

// newClientCA makes a CA certificate (3 years) and its key, with usage.
func newClientCA(t *testing.T, usage x509.KeyUsage) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "library broker CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(3 * 365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: usage}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert, key
}

// provisionWithCSR provisions lockerID on h with a new token and a
// certificate request for key, and returns what the cabinet is given.
func provisionWithCSR(t *testing.T, h *hub.Hub, lockerID string, key *ecdsa.PrivateKey, now time.Time) protocol.ProvisionBody {
	t.Helper()
	created, err := h.Fleet().CreateProvisionToken(fleet.NewProvisionToken{Locker: lockerID, Config: "wiring"}, "admin")
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	rep, err := h.Fleet().Provision(protocol.ProvisionRequest{Token: created.Token, PublicKey: base64.StdEncoding.EncodeToString(pub),
		CSR: base64.StdEncoding.EncodeToString(csr)}, "192.0.2.1", now)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(rep.Body)
	var b protocol.ProvisionBody
	if err := json.Unmarshal(raw, &b); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRevokeLocker: a revoked cabinet's password no longer passes the
// embedded broker, its certificate is on the CA's revocation list, and
// the hub makes it no order; provisioning a cabinet again puts its
// previous certificate on the list as well, and serves it again.
func TestRevokeLocker(t *testing.T) {
	url := brokertest.StartEmbedded(t, protocol.DefaultPrefix, "lockerhub")
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	caCert, caKey := newClientCA(t, x509.KeyUsageCertSign|x509.KeyUsageCRLSign)
	var mu sync.Mutex
	var published []byte
	h := hubtest.Start(t, hub.Config{Brokers: []string{url}, SigningKey: priv, PickupKey: lockertest.Key,
		Provisioning: fleet.Provisioning{
			ClientCA: &fleet.ClientCA{Cert: caCert, Key: caKey, PublishCRL: func(pem []byte) error {
				mu.Lock()
				defer mu.Unlock()
				published = pem
				return nil
			}},
			Validate: func(string, []byte) error { return nil },
			Render:   func(raw []byte, _ fleet.ProvisionedLocker) ([]byte, error) { return raw, nil }}})
	revokedSerials := func() map[string]bool {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		block, _ := pem.Decode(published)
		if block == nil || block.Type != "X509 CRL" {
			t.Fatalf("no CRL published: %q", published)
		}
		crl, err := x509.ParseRevocationList(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if err := crl.CheckSignatureFrom(caCert); err != nil {
			t.Fatalf("the CRL is not the CA's: %v", err)
		}
		if time.Until(crl.NextUpdate) < 300*24*time.Hour {
			t.Fatalf("the CRL ends at %v: a broker would refuse every certificate after", crl.NextUpdate)
		}
		out := map[string]bool{}
		for _, e := range crl.RevokedCertificateEntries {
			out[e.SerialNumber.Text(16)] = true
		}
		return out
	}
	serialOf := func(b protocol.ProvisionBody) string {
		block, _ := pem.Decode([]byte(b.ClientCert))
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return cert.SerialNumber.Text(16)
	}
	now := time.Now()
	if err := h.Fleet().WriteCRL(now); err != nil {
		t.Fatal(err)
	}
	if len(revokedSerials()) != 0 {
		t.Fatal("an empty hub revokes something")
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	first := provisionWithCSR(t, h, "nb-7", key, now)
	if !h.Fleet().BrokerPasswordOK("nb-7", []byte(first.Password)) {
		t.Fatal("the password before the revocation")
	}
	for _, reason := range []string{"", strings.Repeat("x", 501)} {
		if _, err := h.Fleet().RevokeLocker("nb-7", "admin", reason, now); err == nil || !strings.Contains(err.Error(), "a reason of 1 to 500 bytes") {
			t.Fatalf("a revocation with a reason of %d bytes: %v", len(reason), err)
		}
	}
	if _, err := h.Fleet().RevokeLocker("nb-8", "admin", "stolen", now); err == nil || !strings.Contains(err.Error(), "not provisioned") {
		t.Fatalf("a locker never provisioned: %v", err)
	}
	cred, err := h.Fleet().RevokeLocker("nb-7", "admin", "stolen", now)
	if err != nil || cred.Revoked.IsZero() || cred.RevokeReason != "stolen" {
		t.Fatalf("revoke: %+v %v", cred, err)
	}
	if h.Fleet().BrokerPasswordOK("nb-7", []byte(first.Password)) {
		t.Fatal("a revoked password passes the broker")
	}
	h.Fleet().SweepCertificates(now.Add(3 * 365 * 24 * time.Hour)) // past the revoked certificate's end
	if as, _ := h.Alarms(0); len(as) != 0 {
		t.Fatalf("an alarm to renew a revoked certificate: %+v", as)
	}
	if !revokedSerials()[serialOf(first)] {
		t.Fatal("the revoked certificate is not on the list")
	}
	if _, err := h.CreateOrder(hub.NewOrder{Locker: "nb-7", Size: "S"}); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("an order for a revoked locker: %v", err)
	}
	if _, err := h.Fleet().RevokeLocker("nb-7", "admin", "stolen", now); err == nil || !strings.Contains(err.Error(), "were revoked at") {
		t.Fatalf("revoked twice: %v", err)
	}

	// The cabinet replaced: provisioned again, served again; the old
	// certificate stays on the list, the new one is not on it.
	second := provisionWithCSR(t, h, "nb-7", key, now)
	if !h.Fleet().BrokerPasswordOK("nb-7", []byte(second.Password)) {
		t.Fatal("the new password")
	}
	if _, err := h.CreateOrder(hub.NewOrder{Locker: "nb-7", Size: "S"}); err != nil {
		t.Fatalf("an order after provisioning again: %v", err)
	}
	// Provisioned again without a revocation (a new SD card): the
	// certificate before is revoked by it.
	third := provisionWithCSR(t, h, "nb-7", key, now)
	got := revokedSerials()
	if !got[serialOf(first)] || !got[serialOf(second)] || got[serialOf(third)] || len(got) != 2 {
		t.Fatalf("the list %v: want %s and %s, not %s", got, serialOf(first), serialOf(second), serialOf(third))
	}
	// A certificate past its end leaves the list.
	if err := h.Fleet().WriteCRL(now.Add(4 * 365 * 24 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n := len(revokedSerials()); n != 0 {
		t.Fatalf("%d certificates past their end still listed", n)
	}
}
