package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const pubKey = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=" // the protocol vectors' key

func TestMQTTSection(t *testing.T) {
	withMQTT := good + "mqtt:\n  brokers: [tls://mqtt.library.example:8883, tcp://10.0.0.2:1883]\n"
	tests := []struct {
		name string
		text string
		want string // "" = valid
	}{
		{"valid", strings.Replace(withMQTT, "  pickup_key_file: pickup.key", "  pickup_key_file: pickup.key\n  central_public_key: \""+pubKey+"\"", 1), ""},
		{"central key required", withMQTT, "security.central_public_key: required with mqtt"},
		{"next key alone", strings.Replace(withMQTT, "  pickup_key_file: pickup.key", "  pickup_key_file: pickup.key\n  central_public_key_next: \""+pubKey+"\"", 1), "security.central_public_key_next: only beside security.central_public_key"},
		{"next key the same", strings.Replace(withMQTT, "  pickup_key_file: pickup.key", "  pickup_key_file: pickup.key\n  central_public_key: \""+pubKey+"\"\n  central_public_key_next: \""+pubKey+"\"", 1), "security.central_public_key_next: the same key"},
		{"insecure allows no key", strings.Replace(withMQTT, "  pickup_key_file: pickup.key", "  pickup_key_file: pickup.key\n  insecure_unsigned_downlink: true", 1), ""},
		{"bad key", strings.Replace(withMQTT, "  pickup_key_file: pickup.key", "  pickup_key_file: pickup.key\n  central_public_key: \"AAAA\"", 1), "security.central_public_key: an Ed25519 public key has 32 bytes, this one 3"},
		{"bad broker", strings.Replace(withMQTT, "tcp://10.0.0.2:1883", "10.0.0.2:1883", 1) + "", "mqtt.brokers[1]:"},
		{"wildcard prefix", withMQTT + "  topic_prefix: lockers/#\n", "mqtt.topic_prefix:"},
		{"ack window too small", withMQTT + "  ack_window: 10\n", "mqtt.ack_window: 10 events is out of bounds 50..100000"},
		{"prefix with a dot (NATS)", withMQTT + "  topic_prefix: lockers/v1.1\n", "mqtt.topic_prefix: topic prefix \"lockers/v1.1\": '.': use ASCII letters"},
		{"prefix with a space", withMQTT + "  topic_prefix: \"lockers/city one\"\n", "a NATS cluster's MQTT listener cannot carry"},
		{"prefix with a double slash", withMQTT + "  topic_prefix: lockers//v1\n", "no leading, trailing or double '/'"},
		{"missing tls file", withMQTT + "  tls: {ca_file: nope.crt}\n", "mqtt.tls: ca_file:"},
		{"password file unreadable", withMQTT + "  username: a\n  password_file: nope\n", "mqtt.password_file: cannot read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Load(write(t, tt.text))
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if cfg.MQTT.TopicPrefix != "lockers/v1" || cfg.MQTT.Keepalive.D() != DefaultKeepalive || cfg.MQTT.TelemetryPeriod.D() != DefaultTelemetryPeriod {
					t.Errorf("mqtt defaults: %+v", cfg.MQTT)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
}

func TestMQTTPasswordFile(t *testing.T) {
	p := write(t, good+"security:\n")
	dir := filepath.Dir(p)
	os.WriteFile(filepath.Join(dir, "mqtt.pass"), []byte("s3cret\n"), 0o600)
	text := strings.Replace(good, "  pickup_key_file: pickup.key", "  pickup_key_file: pickup.key\n  insecure_unsigned_downlink: true", 1) +
		"mqtt: {brokers: [tcp://127.0.0.1:1883], username: nb-main-01, password_file: mqtt.pass}\n"
	os.WriteFile(p, []byte(text), 0o600)
	cfg, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MQTTPassword != "s3cret" {
		t.Fatalf("password %q", cfg.MQTTPassword)
	}
}
