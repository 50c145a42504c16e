package protocol

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"time"
)

// Provisioning a blank cabinet (docs/fleet.md): the cabinet posts a
// ProvisionRequest with the one-time token the hub made; the hub answers a
// ProvisionReply whose body is MACed under the token's secret, so that
// the cabinet knows it came from the hub that made the token.

// ProvisionTokenPrefix starts a provisioning token: lhp_ID_SECRET.
const ProvisionTokenPrefix = "lhp_"

// Files lockerctl provision writes beside the configuration.
const (
	ProvPickupKeyFile = "pickup.key"
	ProvPasswordFile  = "mqtt.password"
	ProvBrokerCAFile  = "broker-ca.pem"
	ProvIdentityFile  = "locker.key"
	ProvClientCert    = "mqtt.crt"
	ProvClientKey     = "mqtt.key"
)

// ProvisionRequest is what a blank cabinet sends. Locker, when given, is
// checked against the token's (a technician's typo caught); empty, the
// cabinet takes the token's.
type ProvisionRequest struct {
	Locker    string `json:"locker,omitempty"`
	Token     string `json:"token"`
	PublicKey string `json:"public_key"` // base64 Ed25519: the cabinet's own key pair
	// CSR (base64 DER) is a certificate request signed with the key
	// the cabinet made for its broker connection; a hub with a client
	// CA issues a certificate for it.
	CSR string `json:"csr,omitempty"`
}

// ProvisionReply is the hub's answer: Body (base64 JSON ProvisionBody)
// and MAC = hex HMAC-SHA256(the token's secret, the body's bytes).
type ProvisionReply struct {
	Body string `json:"body"`
	MAC  string `json:"mac"`
}

// ProvisionBody is everything the cabinet installs.
type ProvisionBody struct {
	Locker           string    `json:"locker"`
	Prefix           string    `json:"topic_prefix"`
	BrokerURLs       []string  `json:"broker_urls"`
	Username         string    `json:"username"`
	Password         string    `json:"password"`
	BrokerCA         string    `json:"broker_ca,omitempty"`
	ClientCert       string    `json:"client_cert,omitempty"` // PEM, for the request's key
	CentralPublicKey string    `json:"central_public_key"`
	PickupKeyHex     string    `json:"pickup_key_hex"`
	Config           string    `json:"config"` // the rendered lockerd.yaml
	Issued           time.Time `json:"issued"`
}

// ProvisionMAC is the MAC of a provisioning reply's body under the
// token's secret (the part after lhp_ID_).
func ProvisionMAC(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// SplitProvisionToken returns a token's id and secret.
func SplitProvisionToken(token string) (id, secret string, err error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(token), ProvisionTokenPrefix)
	id, secret, ok2 := strings.Cut(rest, "_")
	if !ok || !ok2 || len(id) != 16 || len(secret) != 64 {
		return "", "", errors.New("not a provisioning token (lhp_…)")
	}
	return id, secret, nil
}
