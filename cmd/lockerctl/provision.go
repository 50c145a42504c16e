package main

// lockerctl provision: a blank cabinet (lockerd installed, no
// configuration yet) gets its identity from the hub with a one-time token.

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lockerd/lockerd/cmd/internal/atomicfile"
	"github.com/lockerd/lockerd/cmd/internal/cliflag"
	"github.com/lockerd/lockerd/cmd/internal/config"
	"github.com/lockerd/lockerd/sync/hub"
)

func provision(args []string, out, errw io.Writer) int {
	fs := flag.NewFlagSet("provision", flag.ContinueOnError)
	fs.SetOutput(errw)
	central := fs.String("central", "", "the hub: https://HOST:PORT (as lockerhub provision create printed it)")
	lockerID := fs.String("locker", "", "this cabinet's locker id (the token is bound to it)")
	token := fs.String("token", "", "the one-time provisioning token (lhp_…)")
	uri := fs.String("uri", "", "instead of the three above: the text of the token's QR code (lockerd-provision:?…)")
	dir := fs.String("dir", filepath.Dir(config.DefaultPath), "where to write the configuration and its keys")
	caFile := fs.String("ca", "", "a CA (PEM) to verify the hub's HTTPS certificate with (default: the system's)")
	force := fs.Bool("force", false, "replace an existing configuration (a cabinet provisioned again)")
	if _, err := cliflag.Parse(fs, args); err != nil {
		return 2
	}
	if err := runProvision(provisionArgs{central: *central, locker: *lockerID, token: *token, uri: *uri, dir: *dir, ca: *caFile, force: *force}, out); err != nil {
		fmt.Fprintf(errw, "lockerctl provision: %v\n", err)
		return 1
	}
	return 0
}

type provisionArgs struct {
	central, locker, token, uri, dir, ca string
	force                                bool
}

// maxProvisionReply bounds the hub's answer (a configuration, keys).
const maxProvisionReply = 1 << 20

func runProvision(a provisionArgs, out io.Writer) error {
	if a.uri != "" {
		u, err := url.Parse(strings.TrimSpace(a.uri))
		if err != nil || u.Scheme != "lockerd-provision" {
			return errors.New("--uri: not a provisioning QR code (lockerd-provision:?…)")
		}
		q := u.Query()
		a.central, a.locker, a.token = q.Get("central"), q.Get("locker"), q.Get("token")
	}
	if a.central == "" || a.locker == "" || a.token == "" {
		return errors.New("want --central URL --locker ID --token TOKEN (or --uri QR-TEXT)")
	}
	_, secret, err := hub.SplitProvisionToken(a.token)
	if err != nil {
		return err
	}
	cfgPath := filepath.Join(a.dir, filepath.Base(config.DefaultPath))
	if _, err := os.Stat(cfgPath); err == nil && !a.force {
		return fmt.Errorf("%s exists: this cabinet is provisioned already (--force to replace it)", cfgPath)
	}
	// The cabinet's own key pair: its identity from now on (the hub keeps
	// the public key with its credentials).
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: 30 * time.Second}
	if a.ca != "" {
		pem, err := os.ReadFile(a.ca)
		if err != nil {
			return err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("--ca %s: no PEM certificate in it", a.ca)
		}
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	}
	reqBody, _ := json.Marshal(hub.ProvisionRequest{Locker: a.locker, Token: a.token, PublicKey: base64.StdEncoding.EncodeToString(pub)})
	resp, err := client.Post(strings.TrimSuffix(a.central, "/")+"/v1/provision", "application/json", bytes.NewReader(reqBody))
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
	var rep hub.ProvisionReply
	if err := json.Unmarshal(raw, &rep); err != nil {
		return fmt.Errorf("the hub's answer is not readable: %w", err)
	}
	bodyRaw, err := base64.StdEncoding.DecodeString(rep.Body)
	mac, merr := hex.DecodeString(rep.MAC)
	want, _ := hex.DecodeString(hub.ProvisionMAC(secret, bodyRaw))
	if err != nil || merr != nil || !hmac.Equal(mac, want) {
		return errors.New("the hub's answer does not match the token (altered on the way, or not from the hub that made the token): nothing installed")
	}
	var body hub.ProvisionBody
	if err := json.Unmarshal(bodyRaw, &body); err != nil {
		return fmt.Errorf("the hub's answer: %w", err)
	}
	if body.Locker != a.locker {
		return fmt.Errorf("the hub's answer is for locker %q, not %q: nothing installed", body.Locker, a.locker)
	}
	if err := os.MkdirAll(a.dir, 0o755); err != nil {
		return err
	}
	// Secrets 0600, the rest 0644; each written whole (a temporary file
	// renamed), the configuration last: a cabinet with a configuration
	// has everything it names.
	files := []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{hub.ProvIdentityFile, []byte(hex.EncodeToString(priv.Seed()) + "\n"), 0o600},
		{hub.ProvPickupKeyFile, []byte(body.PickupKeyHex + "\n"), 0o600},
		{hub.ProvPasswordFile, []byte(body.Password + "\n"), 0o600},
	}
	if body.BrokerCA != "" {
		files = append(files, struct {
			name string
			data []byte
			mode os.FileMode
		}{hub.ProvBrokerCAFile, []byte(body.BrokerCA), 0o644})
	}
	for _, f := range files {
		if err := atomicfile.Write(filepath.Join(a.dir, f.name), f.data, f.mode); err != nil {
			return err
		}
	}
	tmpCfg := cfgPath + ".new"
	if err := atomicfile.Write(tmpCfg, []byte(body.Config), 0o640); err != nil {
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
	fmt.Fprintf(out, "provisioned: locker %s, %d compartments, broker %s\nwritten: %s and its keys in %s\nstart lockerd: systemctl restart lockerd (or lockerd -config %s)\n",
		cfg.Locker.ID, len(cfg.Compartments), strings.Join(body.BrokerURLs, ", "), cfgPath, a.dir, cfgPath)
	return nil
}
