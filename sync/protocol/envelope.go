package protocol

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
)

// Version is the protocol version this package speaks.
const Version = 1

// Envelope is a signed downlink message.
type Envelope struct {
	V    int    `json:"v"`
	Body string `json:"body"` // standard base64 of the message's JSON bytes
	Sig  string `json:"sig"`  // standard base64 Ed25519 signature over those bytes
}

// Errors of Open, for nack reasons.
var (
	ErrMalformed    = errors.New("malformed envelope")
	ErrVersion      = errors.New("unsupported protocol version")
	ErrBadSignature = errors.New("bad signature")
)

// Open parses a signed envelope and verifies it with pub. It returns the
// exact signed body bytes; nothing in them may be trusted if err != nil.
func Open(raw []byte, pub ed25519.PublicKey) ([]byte, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("central public key has %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	var env Envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if env.V != Version {
		return nil, fmt.Errorf("%w: v=%d", ErrVersion, env.V)
	}
	body, err := base64.StdEncoding.DecodeString(env.Body)
	if err != nil || len(body) == 0 {
		return nil, fmt.Errorf("%w: body is not base64", ErrMalformed)
	}
	sig, err := base64.StdEncoding.DecodeString(env.Sig)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: sig is not a base64 Ed25519 signature", ErrMalformed)
	}
	if !ed25519.Verify(pub, body, sig) {
		return nil, ErrBadSignature
	}
	return body, nil
}

// Seal signs body with priv and returns the envelope's JSON.
func Seal(body []byte, priv ed25519.PrivateKey) ([]byte, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("signing key has %d bytes, want %d", len(priv), ed25519.PrivateKeySize)
	}
	return json.Marshal(Envelope{V: Version, Body: base64.StdEncoding.EncodeToString(body),
		Sig: base64.StdEncoding.EncodeToString(ed25519.Sign(priv, body))})
}

// ParsePublicKey reads a public key as the configs hold it
// (security.central_public_key, update.release_key): the raw 32-byte
// Ed25519 public key in standard base64.
func ParsePublicKey(b64 string) (ed25519.PublicKey, error) {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("not a base64 Ed25519 public key: %w", err)
	}
	if len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("an Ed25519 public key has %d bytes, this one %d", ed25519.PublicKeySize, len(raw))
	}
	return ed25519.PublicKey(raw), nil
}

// Reseal returns raw — an envelope this side made — signed with priv: as
// it is when it already verifies with priv's public key, else its body
// signed again (the same message, id and all). The central uses it for
// messages kept across a rotation of its signing key.
func Reseal(raw []byte, priv ed25519.PrivateKey) ([]byte, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("signing key has %d bytes, want %d", len(priv), ed25519.PrivateKeySize)
	}
	if _, err := Open(raw, priv.Public().(ed25519.PublicKey)); err == nil {
		return raw, nil
	}
	var env Envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	body, err := base64.StdEncoding.DecodeString(env.Body)
	if err != nil || len(body) == 0 {
		return nil, fmt.Errorf("%w: body is not base64", ErrMalformed)
	}
	return Seal(body, priv)
}
