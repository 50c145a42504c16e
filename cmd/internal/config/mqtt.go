package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/lockerd/lockerd/sync/protocol"
)

// MQTT defaults and bounds.
const (
	DefaultKeepalive       = 30 * time.Second
	DefaultTelemetryPeriod = 300 * time.Second
	// DefaultMaxMessage bounds a downlink message: well above a snapshot
	// part of 500 orders (about 250 KB signed).
	DefaultMaxMessage = 1 << 20
	// DefaultAckWindow is Mosquitto's default queue for a subscriber
	// (max_queued_messages 1000): one locker's replay fits in it.
	DefaultAckWindow = 1000
)

var brokerSchemes = map[string]bool{"tcp": true, "mqtt": true, "ssl": true, "tls": true, "mqtts": true, "ws": true, "wss": true}

func (c *Config) checkMQTT(bad func(key, format string, args ...any), checkFiles bool) {
	if k := c.Security.CentralPublicKey; k != "" {
		pub, err := protocol.ParsePublicKey(k)
		if err != nil {
			bad("security.central_public_key", "%v", err)
		}
		c.CentralKey = pub
	}
	if k := c.Security.CentralPublicKeyNext; k != "" {
		pub, err := protocol.ParsePublicKey(k)
		switch {
		case err != nil:
			bad("security.central_public_key_next", "%v", err)
		case c.Security.CentralPublicKey == "":
			bad("security.central_public_key_next", "only beside security.central_public_key (the key being replaced)")
		case k == c.Security.CentralPublicKey:
			bad("security.central_public_key_next", "the same key as security.central_public_key")
		}
		c.CentralNextKey = pub
	}
	m := c.MQTT
	if m == nil {
		return
	}
	if m.TopicPrefix == "" {
		m.TopicPrefix = protocol.DefaultPrefix
	}
	if m.Keepalive == 0 {
		m.Keepalive = Duration(DefaultKeepalive)
	}
	if m.TelemetryPeriod == 0 {
		m.TelemetryPeriod = Duration(DefaultTelemetryPeriod)
	}
	if m.MaxMessage == 0 {
		m.MaxMessage = DefaultMaxMessage
	}
	if m.ConfigProbation == 0 {
		m.ConfigProbation = Duration(time.Minute)
	}
	if d := m.ConfigProbation.D(); d < 2*time.Second || d > 10*time.Minute {
		bad("mqtt.config_probation", "%v is out of bounds 2s..10m", d)
	}
	if m.SnapshotTimeout == 0 {
		m.SnapshotTimeout = Duration(time.Hour)
	}
	if d := m.SnapshotTimeout.D(); d < time.Minute || d > 24*time.Hour {
		bad("mqtt.snapshot_timeout", "%v is out of bounds 1m..24h", d)
	}
	if m.PublishTimeout == 0 {
		m.PublishTimeout = Duration(10 * time.Second)
	}
	if d := m.PublishTimeout.D(); d < time.Second || d > time.Minute {
		bad("mqtt.publish_timeout", "%v is out of bounds 1s..1m", d)
	}
	if m.AckWindow == 0 {
		m.AckWindow = DefaultAckWindow
	}
	if m.AckWindow < 50 || m.AckWindow > 100_000 {
		bad("mqtt.ack_window", "%d events is out of bounds 50..100000 (at most the broker's queue for the central: Mosquitto's max_queued_messages)", m.AckWindow)
	}
	if m.MaxMessage < 64<<10 || m.MaxMessage > 16<<20 {
		bad("mqtt.max_message", "%d bytes is out of bounds 64KB..16MB", m.MaxMessage)
	}
	if len(m.Brokers) == 0 {
		bad("mqtt.brokers", "at least one broker URL is required (tls://host:8883)")
	}
	for i, b := range m.Brokers {
		u, err := url.Parse(b)
		if err != nil || !brokerSchemes[u.Scheme] || u.Host == "" {
			bad(fmt.Sprintf("mqtt.brokers[%d]", i), "%q: want scheme://host:port with scheme tcp, tls, ssl, mqtt, mqtts, ws or wss", b)
		}
	}
	if err := protocol.CheckPrefix(m.TopicPrefix); err != nil {
		bad("mqtt.topic_prefix", "%v", err)
	}
	if m.Keepalive.D() < 5*time.Second || m.Keepalive.D() > 10*time.Minute {
		bad("mqtt.keepalive", "%v is out of bounds 5s..10m", m.Keepalive.D())
	}
	if m.TelemetryPeriod.D() < 10*time.Second {
		bad("mqtt.telemetry_period", "%v is under the bound of 10s", m.TelemetryPeriod.D())
	}
	if c.CentralKey == nil && !c.Security.InsecureUnsignedDownlink {
		bad("security.central_public_key", "required with mqtt: downlink messages are verified with it (or set security.insecure_unsigned_downlink: true for testing)")
	}
	if m.PasswordFile != "" && m.Username == "" {
		bad("mqtt.username", "required with mqtt.password_file")
	}
	if !checkFiles {
		return
	}
	if m.PasswordFile != "" {
		raw, err := os.ReadFile(c.Resolve(m.PasswordFile))
		if err != nil {
			bad("mqtt.password_file", "cannot read %s: %v", c.Resolve(m.PasswordFile), errors.Unwrap(err))
		}
		c.MQTTPassword = strings.TrimRight(string(raw), "\r\n")
	}
	if m.TLS != nil {
		if _, err := c.TLSConfig(); err != nil {
			bad("mqtt.tls", "%v", err)
		}
	}
}

// TLSConfig builds the MQTT client's TLS configuration (nil without
// mqtt.tls).
func (c *Config) TLSConfig() (*tls.Config, error) {
	if c.MQTT == nil || c.MQTT.TLS == nil {
		return nil, nil
	}
	return c.MQTT.TLS.ClientConfig(c.Resolve)
}

// ClientConfig builds a TLS client configuration from the files, their
// names resolved by resolve (lockerd's and lockerhub's mqtt.tls).
func (t *TLS) ClientConfig(resolve func(string) string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.CAFile != "" {
		pem, err := os.ReadFile(resolve(t.CAFile))
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s: no PEM certificate in it", resolve(t.CAFile))
		}
		cfg.RootCAs = pool
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return nil, errors.New("cert_file and key_file go together")
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(resolve(t.CertFile), resolve(t.KeyFile))
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
