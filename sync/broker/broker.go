package broker

import (
	"bufio"
	"bytes"
	"crypto/subtle"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"strings"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Config of the embedded broker.
type Config struct {
	Addr    string // host:port to listen on
	TLS     *tls.Config
	Prefix  string
	Central string            // identity of the central client (full access)
	Users   map[string]string // identity → password; nil: passwords not checked
	Log     *slog.Logger
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
	srv := mqtt.New(&mqtt.Options{InlineClient: false, Logger: cfg.Log.With("component", "broker")})
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
	want, ok := h.cfg.Users[identity(cl)]
	return ok && subtle.ConstantTimeCompare([]byte(want), pk.Connect.Password) == 1
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
