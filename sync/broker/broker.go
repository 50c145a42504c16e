package broker

import (
	"bufio"
	"bytes"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/lockerd/lockerd/locker/loopback"
)

// Config of the embedded broker.
type Config struct {
	Addr    string // host:port to listen on
	TLS     *tls.Config
	Prefix  string
	Central string            // identity of the central client (full access)
	Users   map[string]string // identity → password; nil: passwords not checked (loopback only)
	// Check, when set, is asked for an identity the users file does not
	// name (a locker provisioned by the hub: its password is kept hashed
	// in the hub's store).
	Check func(identity string, password []byte) bool
	// MaxPacket bounds every MQTT packet a client may send (0: 1 MB); the
	// broker closes a client that sends more.
	MaxPacket uint32
	Log       *slog.Logger
}

// DefaultMaxPacket is the largest packet the embedded broker takes: well
// above a snapshot part of 500 orders (about 250 KB signed).
const DefaultMaxPacket = 1 << 20

// ErrOpenBroker refuses an embedded broker that would let anyone on the
// network read all traffic and publish as any locker.
var ErrOpenBroker = errors.New("the embedded broker listens beyond loopback without credentials: give -broker-users (every identity, lockers and the central, with a password) or listen on 127.0.0.1")

// authenticated reports whether every client must prove who it is: a
// users file, or TLS that requires a client certificate.
func (c Config) authenticated() bool {
	return c.Users != nil || c.TLS != nil && c.TLS.ClientAuth == tls.RequireAndVerifyClientCert
}

// Broker is a running embedded broker.
type Broker struct {
	srv  *mqtt.Server
	addr string
}

// Start listens and serves in the background.
func Start(cfg Config) (*Broker, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.MaxPacket == 0 {
		cfg.MaxPacket = DefaultMaxPacket
	}
	if !cfg.authenticated() {
		if err := loopback.Check(cfg.Addr); err != nil {
			return nil, fmt.Errorf("%w (%v)", ErrOpenBroker, err)
		}
		cfg.Log.Warn("embedded broker without credentials: any local client may connect as any locker (loopback only; give -broker-users in production)", "addr", cfg.Addr)
	}
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumPacketSize = cfg.MaxPacket
	srv := mqtt.New(&mqtt.Options{InlineClient: false, Capabilities: caps, Logger: cfg.Log.With("component", "broker")})
	if err := srv.AddHook(&aclHook{cfg: cfg}, nil); err != nil {
		return nil, err
	}
	tcp := listeners.NewTCP(listeners.Config{ID: "tcp", Address: cfg.Addr, TLSConfig: cfg.TLS})
	if err := srv.AddListener(tcp); err != nil {
		return nil, fmt.Errorf("broker listen %s: %w", cfg.Addr, err)
	}
	if err := srv.Serve(); err != nil {
		return nil, err
	}
	return &Broker{srv: srv, addr: tcp.Address()}, nil
}

// Addr is the address the broker listens on.
func (b *Broker) Addr() string { return b.addr }

// Close stops the broker.
func (b *Broker) Close() error { return b.srv.Close() }

// ReadUsers reads a users file: one "name:password" per line, # comments.
func ReadUsers(path string) (map[string]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	users := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, pw, ok := strings.Cut(line, ":")
		if !ok || name == "" {
			return nil, fmt.Errorf("%s:%d: want name:password", path, n)
		}
		users[name] = pw
	}
	return users, sc.Err()
}

type aclHook struct {
	mqtt.HookBase
	cfg Config
}

func (h *aclHook) ID() string { return "lockerd-acl" }

func (h *aclHook) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}

func identity(cl *mqtt.Client) string {
	if u := string(cl.Properties.Username); u != "" {
		return u
	}
	return cl.ID
}

func (h *aclHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	if h.cfg.Users == nil {
		return true
	}
	id := identity(cl)
	want, ok := h.cfg.Users[id]
	provisioned := !ok && h.cfg.Check != nil && h.cfg.Check(id, pk.Connect.Password)
	if !provisioned && (!ok || subtle.ConstantTimeCompare([]byte(want), pk.Connect.Password) != 1) {
		h.Log.Warn("broker refused a client: unknown identity or wrong password", "client", id)
		return false
	}
	// A locker's session is its client id: a locker authenticated as
	// itself must not take over (and read the queued downlink of) the
	// session of another.
	if id != h.cfg.Central && cl.ID != id {
		h.Log.Warn("broker refused a client: client id is not its identity", "identity", id, "client_id", cl.ID)
		return false
	}
	return true
}

// Allowed reports whether identity id may write (or read) topic; it is the
// embedded broker's ACL, and the same rules as docs/mosquitto-acl.
func Allowed(prefix, central, id, topic string, write bool) bool {
	if id == central {
		return true
	}
	own := prefix + "/" + id + "/"
	if write {
		return strings.HasPrefix(topic, own+"up/") || topic == own+"status"
	}
	return strings.HasPrefix(topic, own+"down/") || topic == own+"status" || topic == prefix+"/central/status"
}

func (h *aclHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	ok := Allowed(h.cfg.Prefix, h.cfg.Central, identity(cl), topic, write)
	if !ok {
		h.Log.Warn("acl refused", "client", identity(cl), "topic", topic, "write", write)
	}
	return ok
}
