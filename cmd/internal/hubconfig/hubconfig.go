// Package hubconfig is lockerhub's config file (lockerhub serve -config
// FILE, lockerhub validate FILE): strict YAML, every problem as
// FILE:LINE: key: what, like lockerd's (cmd/internal/config decodes both).
package hubconfig

import (
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lockerd/lockerd/cmd/internal/config"
	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/locker/loopback"
	"github.com/lockerd/lockerd/sync/broker"
	"github.com/lockerd/lockerd/sync/hub/pgstore"
	"github.com/lockerd/lockerd/sync/protocol"
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
	} `yaml:"mqtt"`
	Keys struct {
		SigningKeyFile string `yaml:"signing_key_file"`
		PickupKeyFile  string `yaml:"pickup_key_file"`
	} `yaml:"keys"`
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

	// Read from the files named above by Load.
	SigningKey ed25519.PrivateKey `yaml:"-"`
	PickupKey  locker.CodeKey     `yaml:"-"`
	Password   string             `yaml:"-"`
	DSN        string             `yaml:"-"`
	Users      map[string]string  `yaml:"-"`
}

func defaults() Config {
	var c Config
	c.Store.Driver, c.Store.Path = "bolt", "lockerhub.db"
	c.HTTP.Listen = "127.0.0.1:8490"
	c.MQTT.Listen, c.MQTT.Prefix, c.MQTT.ClientID = "127.0.0.1:1883", protocol.DefaultPrefix, "lockerhub"
	c.Keys.SigningKeyFile = "central.key"
	c.CommandTTL = config.Duration(time.Minute)
	c.LeaseTTL, c.ResendAfter = config.Duration(15*time.Second), config.Duration(30*time.Second)
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
	// The API creates orders and opens doors and has no authentication
	// yet: it stays on the machine (put an authenticating proxy on it).
	if err := loopback.Check(c.HTTP.Listen); err != nil {
		bad("http.listen", "%v: the HTTP API has no authentication yet and must listen on loopback only", err)
	}
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
	if d := c.LeaseTTL.D(); d < 3*time.Second || d > 5*time.Minute {
		bad("lease_ttl", "%v: want 3s to 5m", d)
	}
	if d := c.ResendAfter.D(); d < time.Second || d > time.Hour {
		bad("resend_after", "%v: want 1s to 1h", d)
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
