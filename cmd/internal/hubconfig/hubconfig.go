package hubconfig

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/lockerd/lockerd/cmd/internal/atomicfile"
	"github.com/lockerd/lockerd/cmd/internal/config"
	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/locker/loopback"
	"github.com/lockerd/lockerd/sync/broker"
	"github.com/lockerd/lockerd/sync/hub/egress"
	"github.com/lockerd/lockerd/sync/hub/fleet"
	"github.com/lockerd/lockerd/sync/hub/notice"
	"github.com/lockerd/lockerd/sync/hub/pgstore"
	"github.com/lockerd/lockerd/sync/hub/webhook"
	"github.com/lockerd/lockerd/sync/protocol"
	"github.com/lockerd/lockerd/sync/sip2"
)

// Config is lockerhub's configuration. Relative paths are taken from the
// config file's folder.
type Config struct {
	Store struct {
		// Driver: bolt (one file, Path; the default) or postgres (the
		// database whose DSN DSNFile holds: never the DSN itself here or
		// on a command line, since it may carry a password).
		Driver  string `yaml:"driver"`
		Path    string `yaml:"path"`
		DSNFile string `yaml:"dsn_file"`
	} `yaml:"store"`
	HTTP struct {
		Listen string `yaml:"listen"`
		// TLS: the API over HTTPS; required (or BehindProxy) beyond
		// loopback, since tokens travel in every request.
		TLS struct {
			CertFile string `yaml:"cert_file"`
			KeyFile  string `yaml:"key_file"`
		} `yaml:"tls"`
		// BehindProxy: a reverse proxy terminates TLS in front of the
		// API (its X-Forwarded-For names clients in the audit log).
		BehindProxy bool `yaml:"behind_proxy"`
		// AdminTokenFile receives the first admin token when the hub has
		// none (mode 0600, never overwritten).
		AdminTokenFile string `yaml:"admin_token_file"`
	} `yaml:"http"`
	MQTT struct {
		// Broker: an external broker's URL; unset, lockerhub runs its
		// embedded broker on Listen.
		Broker string `yaml:"broker"`
		// Brokers: the nodes of a clustered broker, tried in order (a
		// replica lists its nearest node first); instead of Broker.
		Brokers      []string `yaml:"brokers"`
		Listen       string   `yaml:"listen"`
		UsersFile    string   `yaml:"users_file"`
		Prefix       string   `yaml:"topic_prefix"`
		ClientID     string   `yaml:"client_id"`
		PasswordFile string   `yaml:"password_file"`
		// TLS: the CA of an external broker, and the hub's own client
		// certificate when the broker authenticates by certificate
		// (docs/mosquitto: CN lockerhub).
		TLS *config.TLS `yaml:"tls"`
		// SubscribeOwned: each replica subscribes to its own share of the
		// lockers' topics, one subscription per locker, instead of to all
		// (docs/deploy-central.md); for Mosquitto, not NATS.
		SubscribeOwned bool `yaml:"subscribe_owned"`
	} `yaml:"mqtt"`
	Keys struct {
		SigningKeyFile string `yaml:"signing_key_file"`
		PickupKeyFile  string `yaml:"pickup_key_file"`
	} `yaml:"keys"`
	// Provision: what new cabinets are given (lockerhub provision create,
	// docs/fleet.md): the broker addresses they connect to (default: the
	// hub's own broker) and the CA they verify it with.
	// Releases: where the software releases' binaries are kept
	// (lockerhub release add; default: releases beside the config).
	Releases struct {
		Dir string `yaml:"dir"`
		// PublicKey (base64 Ed25519): releases are signed with the
		// private key where it is kept (lockerhub release sign), not
		// by the hub; lockers pin it (update.release_key).
		PublicKey string `yaml:"public_key"`
	} `yaml:"releases"`
	Provision struct {
		BrokerURLs   []string `yaml:"broker_urls"`
		BrokerCAFile string   `yaml:"broker_ca_file"`
		// ClientCA: the CA (certificate and key, PEM) the hub issues
		// each provisioned cabinet a broker client certificate with
		// (CN the locker id), valid for TTL (default 5 years).
		// CRLFile: where the hub writes the CA's revocation list (the
		// broker's crlfile; lockerhub provision revoke).
		ClientCA struct {
			CertFile string          `yaml:"cert_file"`
			KeyFile  string          `yaml:"key_file"`
			TTL      config.Duration `yaml:"ttl"`
			CRLFile  string          `yaml:"crl_file"`
		} `yaml:"client_ca"`
	} `yaml:"provision"`
	// Lockers the hub serves (besides every identity of mqtt.users_file
	// and those added with 'lockerhub locker add').
	Lockers []string `yaml:"lockers"`
	// CommandTTL is how long a remote command may act after it is sent.
	CommandTTL config.Duration `yaml:"command_ttl"`
	// LeaseTTL: how long work done once among replicas stays with a
	// replica that stopped renewing it (died). ResendAfter: how long an
	// online locker may leave an order change unacknowledged before it is
	// sent again.
	LeaseTTL    config.Duration `yaml:"lease_ttl"`
	ResendAfter config.Duration `yaml:"resend_after"`
	// Webhooks: subscriptions of the library's systems (more can be made
	// through the API); WebhookDeadline: how long a delivery is retried.
	Webhooks        []WebhookConf   `yaml:"webhooks"`
	WebhookDeadline config.Duration `yaml:"webhook_deadline"`
	// EgressAllow: the non-public addresses or prefixes the hub may call
	// (a webhook receiver on the library's own network); the rest of
	// loopback, private, link-local… is refused (sync/hub/egress).
	EgressAllow []string `yaml:"egress_allow"`
	Alarms      struct {
		// OfflineAfter: a locker not seen this long raises locker.offline.
		OfflineAfter config.Duration `yaml:"offline_after"`
	} `yaml:"alarms"`
	// SIP2 is the bridge to the library's system (docs/sip2.md); without
	// an address there is none.
	SIP2 SIP2 `yaml:"sip2"`
	// Notices: how readers are told of their orders (docs/central.md,
	// "Notices"); without a channel none is sent.
	Notices Notices `yaml:"notices"`
	// Places: where each locker stands, as readers are told it.
	Places map[string]Place `yaml:"places"`

	Egress []netip.Prefix `yaml:"-"` // egress_allow, parsed

	// Read from the files named above by Load.
	SigningKey  ed25519.PrivateKey `yaml:"-"`
	ReleaseKey  ed25519.PublicKey  `yaml:"-"` // releases.public_key
	PickupKey   locker.CodeKey     `yaml:"-"`
	Password    string             `yaml:"-"`
	DSN         string             `yaml:"-"`
	Users       map[string]string  `yaml:"-"`
	ProvisionCA string             `yaml:"-"` // provision.broker_ca_file's PEM
	ClientCA    *fleet.ClientCA    `yaml:"-"` // provision.client_ca
	MQTTTLS     *tls.Config        `yaml:"-"` // mqtt.tls
}

// WebhookConf is one subscription of the config.
type WebhookConf struct {
	Name       string   `yaml:"name"`
	URL        string   `yaml:"url"`
	Events     []string `yaml:"events"`
	SecretFile string   `yaml:"secret_file"`
	Secret     string   `yaml:"-"`
}

// Notices is the notices section: the key pickup codes are sealed to, and
// the channels.
type Notices struct {
	KeyFile string `yaml:"key_file"`
	// PageURL: where readers reach lockerhub's order pages (/o/…), as the
	// notices' links say it (https://library.example.org/lockers).
	PageURL string `yaml:"page_url"`
	// DeliveryLocker: where home deliveries ordered on the page are
	// loaded for the couriers ("": readers cannot choose home delivery).
	DeliveryLocker string `yaml:"delivery_locker"`
	Email          struct {
		Address      string `yaml:"address"` // host:port of the library's mail relay
		From         string `yaml:"from"`
		Username     string `yaml:"username"`
		PasswordFile string `yaml:"password_file"`
		TLS          string `yaml:"tls"` // starttls (default), tls, none
		CAFile       string `yaml:"ca_file"`
	} `yaml:"email"`
	Gateway struct {
		URL        string `yaml:"url"` // an SMS or WeChat template-message gateway
		SecretFile string `yaml:"secret_file"`
	} `yaml:"gateway"`
	Timeout config.Duration `yaml:"timeout"`

	// Read from the files named above by Load.
	Sealer   *notice.Sealer `yaml:"-"`
	Password string         `yaml:"-"`
	Secret   string         `yaml:"-"`
	CAPool   *x509.CertPool `yaml:"-"`
}

// Place is where a locker stands: its name, address and opening hours,
// by language (zh, en).
type Place struct {
	Name    map[string]string `yaml:"name"`
	Address map[string]string `yaml:"address"`
	Hours   map[string]string `yaml:"hours"`
}

// SIP2 is the sip2 section.
type SIP2 struct {
	Address              string          `yaml:"address"` // host:port
	TLS                  bool            `yaml:"tls"`
	CAFile               string          `yaml:"ca_file"`
	User                 string          `yaml:"user"`
	PasswordFile         string          `yaml:"password_file"`
	Location             string          `yaml:"location"`    // CP
	Institution          string          `yaml:"institution"` // AO
	TerminalPasswordFile string          `yaml:"terminal_password_file"`
	ErrorDetection       bool            `yaml:"error_detection"`
	VerifyChecksums      bool            `yaml:"verify_checksums"`
	Encoding             string          `yaml:"encoding"`
	Timeout              config.Duration `yaml:"timeout"`
	Heartbeat            config.Duration `yaml:"heartbeat"`
	CheckinOnLoad        bool            `yaml:"checkin_on_load"`
	CheckPatron          bool            `yaml:"check_patron"`
	MaxAttempts          int             `yaml:"max_attempts"`
	// IgnoreStatusFlags: send checkouts and checkins whatever the ILS's
	// 98 SC Status says (for an ILS whose 98 is wrong).
	IgnoreStatusFlags bool `yaml:"ignore_status_flags"`
	// AlarmAfter: the ILS unreachable or refusing this long raises
	// ils.unavailable.
	AlarmAfter config.Duration   `yaml:"alarm_after"`
	Locations  map[string]string `yaml:"locations"` // a checkin's AP, by locker (default: the locker's id)

	Egress []netip.Prefix `yaml:"-"` // egress_allow, parsed

	// Read from the files named above by Load.
	Password         string         `yaml:"-"`
	TerminalPassword string         `yaml:"-"`
	CAPool           *x509.CertPool `yaml:"-"`
}

func defaults() Config {
	var c Config
	c.Store.Driver, c.Store.Path = "bolt", "lockerhub.db"
	c.HTTP.Listen, c.HTTP.AdminTokenFile = "127.0.0.1:8490", "admin.token"
	c.MQTT.Listen, c.MQTT.Prefix, c.MQTT.ClientID = "127.0.0.1:1883", protocol.DefaultPrefix, "lockerhub"
	c.Keys.SigningKeyFile = "central.key"
	c.CommandTTL = config.Duration(time.Minute)
	c.Alarms.OfflineAfter = config.Duration(10 * time.Minute)
	c.WebhookDeadline = config.Duration(24 * time.Hour)
	c.LeaseTTL, c.ResendAfter = config.Duration(15*time.Second), config.Duration(30*time.Second)
	c.SIP2.ErrorDetection, c.SIP2.VerifyChecksums, c.SIP2.Encoding = true, true, "utf-8"
	c.SIP2.Timeout, c.SIP2.Heartbeat, c.SIP2.MaxAttempts = config.Duration(10*time.Second), config.Duration(60*time.Second), 5
	c.SIP2.AlarmAfter = config.Duration(3 * time.Minute)
	return c
}

// Load reads and checks the config file at path, and the files it names.
func Load(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, raw, true)
}

// Parse decodes and checks config text; with readFiles false the key,
// password and users files are not read (for syntax checks and fuzzing).
func Parse(name string, raw []byte, readFiles bool) (*Config, error) {
	c := defaults()
	lines, problems := config.DecodeStrict(name, raw, &c)
	if lines == nil {
		return nil, problems
	}
	bad := func(key, format string, args ...any) {
		line := 1
		for k := key; k != ""; {
			if l, ok := lines[k]; ok {
				line = l
				break
			}
			i := strings.LastIndexAny(k, ".[")
			if i < 0 {
				break
			}
			k = k[:i]
		}
		problems = append(problems, config.Problem{File: name, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	rel := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(filepath.Dir(name), p)
	}
	switch c.Store.Driver {
	case "bolt":
		if c.Store.Path == "" {
			bad("store.path", "required")
		}
		if c.Store.DSNFile != "" {
			bad("store.dsn_file", "for driver postgres; driver bolt keeps its data in store.path")
		}
	case "postgres":
		if c.Store.DSNFile == "" {
			bad("store.dsn_file", "required with driver postgres: a file holding the database's DSN (postgres://USER:PASSWORD@HOST:PORT/DB)")
		}
		if _, set := lines["store.path"]; set {
			bad("store.path", "for driver bolt; driver postgres reaches its database through store.dsn_file")
		}
		c.Store.Path = ""
	default:
		bad("store.driver", "%q: known drivers: bolt, postgres", c.Store.Driver)
	}
	c.Store.Path, c.Store.DSNFile = rel(c.Store.Path), rel(c.Store.DSNFile)
	// Tokens travel in every request: beyond the machine, only over TLS
	// (here, or at a proxy in front).
	if (c.HTTP.TLS.CertFile == "") != (c.HTTP.TLS.KeyFile == "") {
		bad("http.tls", "give both cert_file and key_file")
	}
	if _, _, err := net.SplitHostPort(c.HTTP.Listen); err != nil {
		bad("http.listen", "%q: want host:port", c.HTTP.Listen)
	} else if err := loopback.Check(c.HTTP.Listen); err != nil && c.HTTP.TLS.CertFile == "" && !c.HTTP.BehindProxy {
		bad("http.listen", "%v: beyond loopback the API needs TLS (http.tls.cert_file and key_file) or http.behind_proxy: true (a proxy terminating TLS in front of it): its tokens would travel in clear", err)
	}
	if c.HTTP.AdminTokenFile == "" {
		bad("http.admin_token_file", "required: where the first admin token is written")
	}
	c.HTTP.TLS.CertFile, c.HTTP.TLS.KeyFile, c.HTTP.AdminTokenFile = rel(c.HTTP.TLS.CertFile), rel(c.HTTP.TLS.KeyFile), rel(c.HTTP.AdminTokenFile)
	if c.MQTT.Broker != "" && !strings.HasPrefix(c.MQTT.Broker, "tcp://") && !strings.HasPrefix(c.MQTT.Broker, "ssl://") {
		bad("mqtt.broker", "%q: want tcp://host:port or ssl://host:port", c.MQTT.Broker)
	}
	if c.MQTT.Broker != "" && len(c.MQTT.Brokers) > 0 {
		bad("mqtt.brokers", "give mqtt.broker (one) or mqtt.brokers (a cluster's nodes), not both")
	}
	for i, b := range c.MQTT.Brokers {
		if !strings.HasPrefix(b, "tcp://") && !strings.HasPrefix(b, "ssl://") {
			bad(fmt.Sprintf("mqtt.brokers[%d]", i), "%q: want tcp://host:port or ssl://host:port", b)
		}
	}
	if c.MQTT.Broker != "" {
		c.MQTT.Brokers = []string{c.MQTT.Broker}
	}
	if len(c.MQTT.Brokers) == 0 && c.MQTT.UsersFile == "" {
		if err := loopback.Check(c.MQTT.Listen); err != nil {
			bad("mqtt.listen", "%v: the embedded broker takes connections from other machines only with mqtt.users_file (-broker-users): a password for every locker", err)
		}
	}
	if c.MQTT.ClientID == "" || strings.ContainsAny(c.MQTT.ClientID, "/+# ") {
		bad("mqtt.client_id", "%q: want a name without / + # or spaces", c.MQTT.ClientID)
	}
	if err := protocol.CheckPrefix(c.MQTT.Prefix); err != nil {
		bad("mqtt.topic_prefix", "%v", err)
	}
	for i, id := range c.Lockers {
		if err := locker.CheckLockerID(id); err != nil {
			bad(fmt.Sprintf("lockers[%d]", i), "%v", err)
		}
	}
	if d := c.CommandTTL.D(); d < 5*time.Second || d > time.Hour {
		bad("command_ttl", "%v: want 5s to 1h", d)
	}
	if d := c.WebhookDeadline.D(); d < time.Minute || d > 30*24*time.Hour {
		bad("webhook_deadline", "%v: want 1m to 720h", d)
	}
	for i, a := range c.EgressAllow {
		p, err := egress.ParseAllow(a)
		if err != nil {
			bad(fmt.Sprintf("egress_allow[%d]", i), "%v", err)
			continue
		}
		c.Egress = append(c.Egress, p)
	}
	policy := egress.Policy{Allow: c.Egress}
	names := map[string]bool{}
	for i, w := range c.Webhooks {
		key := fmt.Sprintf("webhooks[%d]", i)
		if !webhookNameRe.MatchString(w.Name) || names[w.Name] {
			bad(key+".name", "%q: a unique name of letters, digits, '-' and '_'", w.Name)
		}
		names[w.Name] = true
		if u, err := url.Parse(w.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			bad(key+".url", "%q: want https://host/path", w.URL)
		} else if err := policy.CheckURL(w.URL); err != nil {
			bad(key+".url", "%v", err)
		}
		if len(w.Events) == 0 {
			bad(key+".events", "which events? %s", strings.Join(webhook.HookTypes, ", "))
		}
		for j, e := range w.Events {
			if !slices.Contains(webhook.HookTypes, e) {
				bad(fmt.Sprintf("%s.events[%d]", key, j), "%q: known: %s", e, strings.Join(webhook.HookTypes, ", "))
			}
		}
		if w.SecretFile == "" {
			bad(key+".secret_file", "required: a file holding the shared secret (16 to 256 characters) the receiver verifies signatures with")
		}
		c.Webhooks[i].SecretFile = rel(w.SecretFile)
	}
	if d := c.Alarms.OfflineAfter.D(); d < 30*time.Second || d > 7*24*time.Hour {
		bad("alarms.offline_after", "%v: want 30s to 168h", d)
	}
	if d := c.LeaseTTL.D(); d < 3*time.Second || d > 5*time.Minute {
		bad("lease_ttl", "%v: want 3s to 5m", d)
	}
	if d := c.ResendAfter.D(); d < time.Second || d > time.Hour {
		bad("resend_after", "%v: want 1s to 1h", d)
	}
	checkSIP2(&c.SIP2, lines, bad)
	checkNotices(&c.Notices, policy, bad)
	c.Notices.KeyFile, c.Notices.Email.PasswordFile, c.Notices.Email.CAFile = rel(c.Notices.KeyFile), rel(c.Notices.Email.PasswordFile), rel(c.Notices.Email.CAFile)
	c.Notices.Gateway.SecretFile = rel(c.Notices.Gateway.SecretFile)
	for id, p := range c.Places {
		if err := locker.CheckLockerID(id); err != nil {
			bad("places."+id, "%v", err)
		}
		for field, t := range map[string]map[string]string{"name": p.Name, "address": p.Address, "hours": p.Hours} {
			for lang, s := range t {
				if !slices.Contains(notice.Langs, lang) || len(s) > 200 || strings.ContainsAny(s, "\r\n") {
					bad("places."+id+"."+field+"."+lang, "want zh or en, one line of up to 200 bytes")
				}
			}
		}
	}
	c.SIP2.PasswordFile, c.SIP2.TerminalPasswordFile, c.SIP2.CAFile = rel(c.SIP2.PasswordFile), rel(c.SIP2.TerminalPasswordFile), rel(c.SIP2.CAFile)
	c.Provision.BrokerCAFile = rel(c.Provision.BrokerCAFile)
	ca := &c.Provision.ClientCA
	if (ca.CertFile == "") != (ca.KeyFile == "") {
		bad("provision.client_ca", "give both cert_file and key_file")
	}
	if d := ca.TTL.D(); d != 0 && (d < 24*time.Hour || d > 10*365*24*time.Hour) {
		bad("provision.client_ca.ttl", "%v: want 24h to 87600h (10 years)", d)
	}
	if ca.CRLFile != "" && ca.CertFile == "" {
		bad("provision.client_ca.crl_file", "with cert_file and key_file: the CA signs the list")
	}
	ca.CertFile, ca.KeyFile, ca.CRLFile = rel(ca.CertFile), rel(ca.KeyFile), rel(ca.CRLFile)
	if t := c.MQTT.TLS; t != nil {
		if c.MQTT.Broker == "" && len(c.MQTT.Brokers) == 0 {
			bad("mqtt.tls", "for an external broker (mqtt.broker or mqtt.brokers); the embedded broker listens without TLS")
		}
		t.CAFile, t.CertFile, t.KeyFile = rel(t.CAFile), rel(t.CertFile), rel(t.KeyFile)
	}
	if c.Releases.Dir == "" {
		c.Releases.Dir = "releases"
	}
	c.Releases.Dir = rel(c.Releases.Dir)
	if k := c.Releases.PublicKey; k != "" {
		if pub, err := protocol.ParsePublicKey(k); err != nil {
			bad("releases.public_key", "%v (want the base64 public key lockerhub keygen -name release wrote)", err)
		} else {
			c.ReleaseKey = pub
		}
	}
	for i, u := range c.Provision.BrokerURLs {
		if p, err := url.Parse(u); err != nil || (p.Scheme != "tcp" && p.Scheme != "tls" && p.Scheme != "ssl" && p.Scheme != "mqtts") || p.Host == "" {
			bad(fmt.Sprintf("provision.broker_urls[%d]", i), "%q: want tcp://HOST:PORT or tls://HOST:PORT", u)
		}
	}
	c.Keys.SigningKeyFile, c.Keys.PickupKeyFile = rel(c.Keys.SigningKeyFile), rel(c.Keys.PickupKeyFile)
	c.MQTT.UsersFile, c.MQTT.PasswordFile = rel(c.MQTT.UsersFile), rel(c.MQTT.PasswordFile)
	if readFiles {
		if k, err := ReadSigningKey(c.Keys.SigningKeyFile); err != nil {
			bad("keys.signing_key_file", "%v", err)
		} else {
			c.SigningKey = k
		}
		if f := c.Keys.PickupKeyFile; f != "" {
			raw, err := os.ReadFile(f)
			if err == nil {
				c.PickupKey, err = locker.ParseCodeKey(string(raw))
			}
			if err != nil {
				bad("keys.pickup_key_file", "%v", err)
			}
		}
		if f := c.Store.DSNFile; f != "" {
			if dsn, err := pgstore.ReadDSN(f); err != nil {
				bad("store.dsn_file", "%v", err)
			} else {
				c.DSN = dsn
			}
		}
		if f := c.MQTT.PasswordFile; f != "" {
			raw, err := os.ReadFile(f)
			if err != nil {
				bad("mqtt.password_file", "%v", err)
			}
			c.Password = strings.TrimSpace(string(raw))
		}
		if c.SIP2.Address != "" {
			readSIP2Files(&c.SIP2, bad)
		}
		readNoticeFiles(&c.Notices, bad)
		for i, w := range c.Webhooks {
			if w.SecretFile == "" {
				continue
			}
			raw, err := readSmall(w.SecretFile)
			secret := strings.TrimSpace(string(raw))
			if err != nil {
				bad(fmt.Sprintf("webhooks[%d].secret_file", i), "%v", err)
			} else if len(secret) < 16 || len(secret) > 256 {
				bad(fmt.Sprintf("webhooks[%d].secret_file", i), "%s: want a secret of 16 to 256 characters", w.SecretFile)
			}
			c.Webhooks[i].Secret = secret
		}
		if c.HTTP.TLS.CertFile != "" {
			if _, err := tls.LoadX509KeyPair(c.HTTP.TLS.CertFile, c.HTTP.TLS.KeyFile); err != nil {
				bad("http.tls", "%v", err)
			}
		}
		if ca.CertFile != "" && ca.KeyFile != "" {
			if cca, err := loadClientCA(ca.CertFile, ca.KeyFile, ca.CRLFile != ""); err != nil {
				bad("provision.client_ca", "%v", err)
			} else {
				cca.TTL = ca.TTL.D()
				if f := ca.CRLFile; f != "" {
					// World-readable: the broker (another user) reads it.
					cca.PublishCRL = func(pem []byte) error { return atomicfile.Write(f, pem, 0o644) }
				}
				c.ClientCA = cca
			}
		}
		if t := c.MQTT.TLS; t != nil {
			if tc, err := t.ClientConfig(func(f string) string { return f }); err != nil {
				bad("mqtt.tls", "%v", err)
			} else {
				c.MQTTTLS = tc
			}
		}
		if f := c.Provision.BrokerCAFile; f != "" {
			raw, err := readSmall(f)
			if err == nil && !bytes.Contains(raw, []byte("-----BEGIN CERTIFICATE-----")) {
				err = fmt.Errorf("%s: no PEM certificate in it", f)
			}
			if err != nil {
				bad("provision.broker_ca_file", "%v", err)
			}
			c.ProvisionCA = string(raw)
		}
		if f := c.MQTT.UsersFile; f != "" {
			us, err := broker.ReadUsers(f)
			if err != nil {
				bad("mqtt.users_file", "%v", err)
			}
			c.Users = us
		}
	}
	if len(problems) > 0 {
		return nil, problems
	}
	return &c, nil
}

// ReadSigningKey reads a central.key file (hex Ed25519 seed, from
// lockerhub keygen).
func ReadSigningKey(path string) (ed25519.PrivateKey, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	seed, err := hex.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("%s: want a hex Ed25519 seed of 32 bytes (lockerhub keygen)", path)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

var webhookNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,47}$`)

// checkSIP2 checks the sip2 section; set only with an address.
func checkSIP2(s *SIP2, lines map[string]int, bad func(key, format string, args ...any)) {
	if s.Address == "" {
		for k := range lines {
			if strings.HasPrefix(k, "sip2.") {
				bad("sip2.address", "required with the sip2 section: the ILS's SIP2 server, host:port")
				return
			}
		}
		return
	}
	if host, port, err := net.SplitHostPort(s.Address); err != nil || host == "" || port == "" {
		bad("sip2.address", "%q: want host:port", s.Address)
	}
	if s.CAFile != "" && !s.TLS {
		bad("sip2.ca_file", "only with tls: true")
	}
	if s.User == "" {
		bad("sip2.user", "required: the ILS's SIP2 login (93 CN)")
	}
	if s.PasswordFile == "" {
		bad("sip2.password_file", "required: a file holding the SIP2 login's password (93 CO)")
	}
	if s.Institution == "" {
		bad("sip2.institution", "required: the institution id (AO) the ILS expects")
	}
	for key, v := range map[string]string{"sip2.user": s.User, "sip2.location": s.Location, "sip2.institution": s.Institution} {
		if len(v) > 64 || strings.ContainsAny(v, "|\r\n") {
			bad(key, "%q: up to 64 characters, no '|' or line break", v)
		}
	}
	if _, err := sip2.ParseEncoding(s.Encoding); err != nil {
		bad("sip2.encoding", "%v", err)
	}
	if d := s.Timeout.D(); d < time.Second || d > 2*time.Minute {
		bad("sip2.timeout", "%v: want 1s to 2m", d)
	}
	if d := s.Heartbeat.D(); d < 5*time.Second || d > time.Hour {
		bad("sip2.heartbeat", "%v: want 5s to 1h", d)
	}
	if d := s.AlarmAfter.D(); d < 30*time.Second || d > 24*time.Hour {
		bad("sip2.alarm_after", "%v: want 30s to 24h", d)
	}
	if s.MaxAttempts < 1 || s.MaxAttempts > 100 {
		bad("sip2.max_attempts", "%d: want 1 to 100", s.MaxAttempts)
	}
	for id, loc := range s.Locations {
		if err := locker.CheckLockerID(id); err != nil {
			bad("sip2.locations."+id, "%v", err)
		}
		if loc == "" || len(loc) > 64 || strings.ContainsAny(loc, "|\r\n") {
			bad("sip2.locations."+id, "%q: 1 to 64 characters, no '|' or line break", loc)
		}
	}
}

// readSIP2Files reads the passwords and the CA the sip2 section names.
func readSIP2Files(s *SIP2, bad func(key, format string, args ...any)) {
	read := func(key, file string) string {
		raw, err := readSmall(file)
		if err != nil {
			bad(key, "%v", err)
			return ""
		}
		v := strings.TrimSpace(string(raw))
		if v == "" || len(v) > 256 || strings.ContainsAny(v, "|\r\n") {
			bad(key, "%s: want one line of 1 to 256 characters without '|'", file)
		}
		return v
	}
	s.Password = read("sip2.password_file", s.PasswordFile)
	if s.TerminalPasswordFile != "" {
		s.TerminalPassword = read("sip2.terminal_password_file", s.TerminalPasswordFile)
	}
	if s.CAFile != "" {
		raw, err := readSmall(s.CAFile)
		pool := x509.NewCertPool()
		if err == nil && !pool.AppendCertsFromPEM(raw) {
			err = fmt.Errorf("%s: no PEM certificate in it", s.CAFile)
		}
		if err != nil {
			bad("sip2.ca_file", "%v", err)
		}
		s.CAPool = pool
	}
}

// loadClientCA reads the CA the hub issues broker client certificates
// with: a certificate and its key (PEM; PKCS #8, EC or RSA).
func loadClientCA(certFile, keyFile string, withCRL bool) (*fleet.ClientCA, error) {
	certPEM, err := readSmall(certFile)
	if err != nil {
		return nil, err
	}
	keyPEM, err := readSmall(keyFile)
	if err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s, %s: %w", certFile, keyFile, err)
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok || pair.Leaf == nil {
		return nil, fmt.Errorf("%s: not a key that signs", keyFile)
	}
	if err := fleet.CheckClientCA(pair.Leaf, signer, withCRL); err != nil {
		return nil, fmt.Errorf("%s: %w", certFile, err)
	}
	return &fleet.ClientCA{Cert: pair.Leaf, Key: signer}, nil
}

// maxSmallFile bounds the secret, password and CA files the config names:
// a line, or a few certificates.
const maxSmallFile = 64 << 10

// readSmall reads a file the config names, refusing one over
// maxSmallFile (a wrong path to a large file is a mistake to report, not
// to load).
func readSmall(file string) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, maxSmallFile+1))
	if err != nil {
		return nil, err
	}
	if len(raw) > maxSmallFile {
		return nil, fmt.Errorf("%s: over %d bytes: not a secret, password or CA file", file, maxSmallFile)
	}
	return raw, nil
}

// checkNotices checks the notices section: a channel needs the key; an
// e-mail channel a relay and a plain sender address, a password only over
// TLS; a gateway an https URL the egress policy allows and a secret.
func checkNotices(n *Notices, policy egress.Policy, bad func(key, format string, args ...any)) {
	e, g := &n.Email, &n.Gateway
	if n.PageURL != "" {
		if u, err := url.Parse(n.PageURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			bad("notices.page_url", "%q: want https://host/path, where readers reach lockerhub's /o/ pages", n.PageURL)
		}
	}
	if n.DeliveryLocker != "" {
		if err := locker.CheckLockerID(n.DeliveryLocker); err != nil {
			bad("notices.delivery_locker", "%v", err)
		}
	}
	if e.Address == "" && g.URL == "" {
		return
	}
	if n.KeyFile == "" {
		bad("notices.key_file", "required with a channel: the key pickup codes are sealed to until sent (lockerhub keygen -name notice)")
	}
	if e.Address != "" {
		if _, port, err := net.SplitHostPort(e.Address); err != nil || port == "" {
			bad("notices.email.address", "%q: want host:port of the library's mail relay", e.Address)
		}
		if a, err := mail.ParseAddress(e.From); err != nil || a.Name != "" || a.Address != e.From {
			bad("notices.email.from", "%q: want a plain address (lockers@library.example.org)", e.From)
		}
		if e.TLS == "" {
			e.TLS = "starttls"
		}
		if !slices.Contains([]string{"starttls", "tls", "none"}, e.TLS) {
			bad("notices.email.tls", "%q: want starttls, tls or none", e.TLS)
		}
		if (e.Username == "") != (e.PasswordFile == "") {
			bad("notices.email.username", "give username and password_file together")
		}
		if e.Username != "" && e.TLS == "none" {
			bad("notices.email.password_file", "a password is not sent without TLS (tls: starttls or tls)")
		}
	}
	if g.URL != "" {
		if u, err := url.Parse(g.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			bad("notices.gateway.url", "%q: want https://host/path", g.URL)
		} else if err := policy.CheckURL(g.URL); err != nil {
			bad("notices.gateway.url", "%v", err)
		}
		if g.SecretFile == "" {
			bad("notices.gateway.secret_file", "required: a file holding the secret (16 to 256 characters) the gateway verifies signatures with")
		}
	}
	if d := n.Timeout.D(); d != 0 && (d < time.Second || d > 2*time.Minute) {
		bad("notices.timeout", "%v: want 1s to 2m", d)
	}
}

// readNoticeFiles reads the notice key, the relay's password and CA and
// the gateway's secret.
func readNoticeFiles(n *Notices, bad func(key, format string, args ...any)) {
	if n.KeyFile != "" {
		if s, err := notice.LoadSealer(n.KeyFile); err != nil {
			bad("notices.key_file", "%v", err)
		} else {
			n.Sealer = s
		}
	}
	if f := n.Email.PasswordFile; f != "" {
		raw, err := readSmall(f)
		if err != nil {
			bad("notices.email.password_file", "%v", err)
		}
		n.Password = strings.TrimSpace(string(raw))
	}
	if f := n.Email.CAFile; f != "" {
		raw, err := readSmall(f)
		pool := x509.NewCertPool()
		if err == nil && !pool.AppendCertsFromPEM(raw) {
			err = fmt.Errorf("%s: no PEM certificate in it", f)
		}
		if err != nil {
			bad("notices.email.ca_file", "%v", err)
		}
		n.CAPool = pool
	}
	if f := n.Gateway.SecretFile; f != "" {
		raw, err := readSmall(f)
		secret := strings.TrimSpace(string(raw))
		if err != nil {
			bad("notices.gateway.secret_file", "%v", err)
		} else if len(secret) < 16 || len(secret) > 256 {
			bad("notices.gateway.secret_file", "%s: want a secret of 16 to 256 characters", f)
		}
		n.Secret = secret
	}
}
