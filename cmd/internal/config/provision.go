package config

import (
	"bytes"
	"fmt"

	"go.yaml.in/yaml/v3"
)

// Provisioned is what provisioning fills into a cabinet's configuration:
// its id, the pickup key and broker password files written beside the
// configuration, the central's public key, and the broker.
type Provisioned struct {
	Locker           string
	Prefix           string
	BrokerURLs       []string
	Username         string
	CentralPublicKey string
	PickupKeyFile    string
	PasswordFile     string
	BrokerCAFile     string // "" when the broker needs no CA of its own
	// ClientCertFile and ClientKeyFile: the broker client certificate
	// the hub issued, and its key ("" when none was).
	ClientCertFile, ClientKeyFile string
	ReleaseKey                    string // base64; set as update.release_key where there is an update section
}

// Provision returns the configuration raw with p filled in: locker.id,
// security.pickup_key_file and central_public_key, and the mqtt section's
// brokers, topic prefix, username, password file, CA and client
// certificate. Everything else
// (hardware, compartments, scanners, policy) stays as written; keys
// provisioning sets are replaced, so a template may leave them out.
func Provision(raw []byte, p Provisioned) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	if doc.Kind == 0 {
		doc = yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{Kind: yaml.MappingNode}}}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("configuration: want a mapping at the top")
	}
	root := doc.Content[0]
	set(section(root, "locker"), "locker.id", scalar(p.Locker))
	sec := section(root, "security")
	set(sec, "pickup_key_file", scalar(p.PickupKeyFile))
	set(sec, "central_public_key", scalar(p.CentralPublicKey))
	m := section(root, "mqtt")
	brokers := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
	for _, u := range p.BrokerURLs {
		brokers.Content = append(brokers.Content, scalar(u))
	}
	set(m, "brokers", brokers)
	set(m, "topic_prefix", scalar(p.Prefix))
	set(m, "username", scalar(p.Username))
	set(m, "password_file", scalar(p.PasswordFile))
	if p.BrokerCAFile != "" {
		set(section(m, "tls"), "ca_file", scalar(p.BrokerCAFile))
	}
	if p.ClientCertFile != "" {
		tls := section(m, "tls")
		set(tls, "cert_file", scalar(p.ClientCertFile))
		set(tls, "key_file", scalar(p.ClientKeyFile))
	}
	if p.ReleaseKey != "" && has(root, "update") {
		// Updates pinned to the release key: a hub's own key does not do.
		set(section(root, "update"), "release_key", scalar(p.ReleaseKey))
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func scalar(v string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Value: v} }

// section returns the mapping under key in m, made (or replacing a
// non-mapping) if need be.
func section(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			if v := m.Content[i+1]; v.Kind == yaml.MappingNode {
				return v
			}
			m.Content[i+1] = &yaml.Node{Kind: yaml.MappingNode}
			return m.Content[i+1]
		}
	}
	v := &yaml.Node{Kind: yaml.MappingNode}
	m.Content = append(m.Content, scalar(key), v)
	return v
}

// has reports whether mapping m has key.
func has(m *yaml.Node, key string) bool {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return true
		}
	}
	return false
}

// set puts key: v into mapping m (the part of key after its last dot).
func set(m *yaml.Node, key string, v *yaml.Node) {
	if i := bytes.LastIndexByte([]byte(key), '.'); i >= 0 {
		key = key[i+1:]
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content[i+1] = v
			return
		}
	}
	m.Content = append(m.Content, scalar(key), v)
}
