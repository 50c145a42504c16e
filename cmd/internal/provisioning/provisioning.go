package provisioning

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lockerd/lockerd/cmd/internal/atomicfile"
	"github.com/lockerd/lockerd/cmd/internal/config"
	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/sync/protocol"
)

// Args is what provisioning needs: the hub, the locker id and the token
// (or the text of the token's QR code), where to write, and a CA for the
// hub's HTTPS certificate.
type Args struct {
	Central, Locker, Token, URI, Dir, CA string
	Force                                bool
	// Owner is the service user lockerd runs as (the .deb's "lockerd"):
	// written as root, the secrets are made its own (0600) and the
	// configuration its group's (0640). Empty: the files stay the
	// writer's (lockerd provisioning itself, as that user).
	Owner string
}

// owner is who the written files belong to: -1 for as written.
type owner struct{ uid, gid int }

// lookupOwner resolves a.Owner, before anything is asked of the hub (a
// token is used up by its first answer).
func lookupOwner(name string) (owner, error) {
	if name == "" || os.Geteuid() != 0 {
		return owner{-1, -1}, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return owner{}, fmt.Errorf("the service user %q does not exist (the lockerd package makes it: install it first, or give --owner root when lockerd runs as root): %w", name, err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return owner{}, fmt.Errorf("the service user %q has no numeric ids (%s:%s)", name, u.Uid, u.Gid)
	}
	return owner{uid, gid}, nil
}

// maxProvisionReply bounds the hub's answer (a configuration, keys).
const maxProvisionReply = 1 << 20

// Run provisions this cabinet: it fetches its identity from the hub with
// the one-time token and writes it to a.Dir (the configuration last). It
// returns the configuration's path.
func Run(a Args, out io.Writer) (string, error) {
	return filepath.Join(a.Dir, filepath.Base(config.DefaultPath)), run(a, out)
}

func run(a Args, out io.Writer) error {
	if a.URI != "" {
		u, err := url.Parse(strings.TrimSpace(a.URI))
		if err != nil || u.Scheme != "lockerd-provision" {
			return errors.New("--uri: not a provisioning QR code (lockerd-provision:?…)")
		}
		q := u.Query()
		a.Central, a.Locker, a.Token = q.Get("central"), q.Get("locker"), q.Get("token")
	}
	if a.Central == "" || a.Token == "" {
		return errors.New("want --central URL --token TOKEN [--locker ID] (or --uri QR-TEXT)")
	}
	own, err := lookupOwner(a.Owner)
	if err != nil {
		return err
	}
	_, secret, err := protocol.SplitProvisionToken(a.Token)
	if err != nil {
		return err
	}
	cfgPath := filepath.Join(a.Dir, filepath.Base(config.DefaultPath))
	if _, err := os.Stat(cfgPath); err == nil && !a.Force {
		return fmt.Errorf("%s exists: this cabinet is provisioned already (--force to replace it)", cfgPath)
	}
	// The cabinet's own key pair: its identity from now on (the hub keeps
	// the public key with its credentials).
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	// The key of its broker connection (P-256: what every broker's TLS
	// takes), with a certificate request a hub with a client CA issues a
	// certificate for. The private key never leaves the cabinet.
	tlsKey, csr, err := certificateRequest()
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: 30 * time.Second}
	if a.CA != "" {
		pem, err := os.ReadFile(a.CA)
		if err != nil {
			return err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("--ca %s: no PEM certificate in it", a.CA)
		}
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	}
	reqBody, _ := json.Marshal(protocol.ProvisionRequest{Locker: a.Locker, Token: a.Token, PublicKey: base64.StdEncoding.EncodeToString(pub),
		CSR: base64.StdEncoding.EncodeToString(csr)})
	resp, err := client.Post(strings.TrimSuffix(a.Central, "/")+"/v1/provision", "application/json", bytes.NewReader(reqBody))
	if err != nil {
		return fmt.Errorf("the hub cannot be reached: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxProvisionReply+1))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Error != "" {
			return fmt.Errorf("refused by the hub (%d): %s", resp.StatusCode, e.Error)
		}
		return fmt.Errorf("refused by the hub: %s", resp.Status)
	}
	if len(raw) > maxProvisionReply {
		return errors.New("the hub's answer is over 1 MB: not installed")
	}
	var rep protocol.ProvisionReply
	if err := json.Unmarshal(raw, &rep); err != nil {
		return fmt.Errorf("the hub's answer is not readable: %w", err)
	}
	bodyRaw, err := base64.StdEncoding.DecodeString(rep.Body)
	mac, merr := hex.DecodeString(rep.MAC)
	want, _ := hex.DecodeString(protocol.ProvisionMAC(secret, bodyRaw))
	if err != nil || merr != nil || !hmac.Equal(mac, want) {
		return errors.New("the hub's answer does not match the token (altered on the way, or not from the hub that made the token): nothing installed")
	}
	var body protocol.ProvisionBody
	if err := json.Unmarshal(bodyRaw, &body); err != nil {
		return fmt.Errorf("the hub's answer: %w", err)
	}
	if a.Locker != "" && body.Locker != a.Locker {
		return fmt.Errorf("the hub's answer is for locker %q, not %q: nothing installed", body.Locker, a.Locker)
	}
	// Without --locker the token's locker is this cabinet's: the answer
	// names it, under the token's MAC.
	a.Locker = body.Locker
	if err := locker.CheckLockerID(a.Locker); err != nil {
		return fmt.Errorf("the hub's answer: %w: nothing installed", err)
	}
	if _, err := os.Stat(a.Dir); errors.Is(err, os.ErrNotExist) {
		// Made here: the service user's group may write in it (a
		// configuration the central pushes is written beside this one).
		if err := os.MkdirAll(a.Dir, 0o770); err != nil {
			return err
		}
		if err := os.Chmod(a.Dir, 0o770); err != nil { // whatever the umask
			return err
		}
		if err := os.Chown(a.Dir, -1, own.gid); err != nil {
			return err
		}
	}
	// Secrets 0600 and the service user's, the configuration 0640 and its
	// group's, the CA 0644; each written whole (a temporary file renamed),
	// the configuration last: a cabinet with a configuration has
	// everything it names.
	type file struct {
		name     string
		data     []byte
		mode     os.FileMode
		uid, gid int
	}
	files := []file{
		{protocol.ProvIdentityFile, []byte(hex.EncodeToString(priv.Seed()) + "\n"), 0o600, own.uid, own.gid},
		{protocol.ProvPickupKeyFile, []byte(body.PickupKeyHex + "\n"), 0o600, own.uid, own.gid},
		{protocol.ProvPasswordFile, []byte(body.Password + "\n"), 0o600, own.uid, own.gid},
	}
	if body.BrokerCA != "" {
		files = append(files, file{protocol.ProvBrokerCAFile, []byte(body.BrokerCA), 0o644, -1, -1})
	}
	if body.ClientCert != "" {
		if err := checkClientCert(body.ClientCert, a.Locker, &tlsKey.PublicKey); err != nil {
			return fmt.Errorf("the hub's broker certificate: %w: nothing installed", err)
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(tlsKey)
		if err != nil {
			return err
		}
		files = append(files,
			file{protocol.ProvClientKey, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600, own.uid, own.gid},
			file{protocol.ProvClientCert, []byte(body.ClientCert), 0o644, -1, -1})
	}
	for _, f := range files {
		if err := atomicfile.WriteOwned(filepath.Join(a.Dir, f.name), f.data, f.mode, f.uid, f.gid); err != nil {
			return err
		}
	}
	tmpCfg := cfgPath + ".new"
	if err := atomicfile.WriteOwned(tmpCfg, []byte(body.Config), 0o640, -1, own.gid); err != nil {
		return err
	}
	cfg, err := config.Load(tmpCfg)
	if err != nil {
		os.Remove(tmpCfg)
		return fmt.Errorf("the configuration from the hub does not validate here: %w", err)
	}
	if err := os.Rename(tmpCfg, cfgPath); err != nil {
		return err
	}
	if body.ClientCert != "" {
		fmt.Fprintf(out, "broker certificate: %s (CN %s)\n", filepath.Join(a.Dir, protocol.ProvClientCert), a.Locker)
	}
	fmt.Fprintf(out, "provisioned: locker %s, %d compartments, broker %s\nwritten: %s and its keys in %s\nstart lockerd: systemctl restart lockerd (or lockerd -config %s)\n",
		cfg.Locker.ID, len(cfg.Compartments), strings.Join(body.BrokerURLs, ", "), cfgPath, a.Dir, cfgPath)
	return nil
}

// certificateRequest makes the cabinet's broker key and a certificate
// request for it. It names nobody: the hub names the certificate after
// the token's locker.
func certificateRequest() (*ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	return key, csr, err
}

// checkClientCert checks that the certificate the hub issued is for this
// cabinet's key and names this locker, for client authentication.
func checkClientCert(certPEM, lockerID string, pub *ecdsa.PublicKey) error {
	block, _ := pem.Decode([]byte(certPEM))
	if block == nil || block.Type != "CERTIFICATE" {
		return errors.New("not a PEM certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return err
	}
	if !pub.Equal(cert.PublicKey) {
		return errors.New("not for the key this cabinet made")
	}
	if cert.Subject.CommonName != lockerID {
		return fmt.Errorf("for %q, not locker %q", cert.Subject.CommonName, lockerID)
	}
	if !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		return errors.New("not for client authentication")
	}
	return nil
}
