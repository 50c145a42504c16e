package notice

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/crypto/curve25519"
	"golang.org/x/crypto/nacl/box"
)

// Sealer seals pickup codes to the notice key (X25519) and opens them:
// the store keeps only what Seal returns. A store copied off the machine
// (a dump, a backup, a cloned disk) without the key file shows no code.
type Sealer struct {
	pub, priv *[32]byte
}

// MaxSealed bounds a sealed code (a code is at most 64 characters).
const MaxSealed = 64 + box.AnonymousOverhead

// NewSealer makes a sealer from a 32-byte private key.
func NewSealer(priv []byte) (*Sealer, error) {
	if len(priv) != 32 {
		return nil, fmt.Errorf("notice key: %d bytes, want 32", len(priv))
	}
	s := &Sealer{pub: new([32]byte), priv: new([32]byte)}
	copy(s.priv[:], priv)
	pub, err := curve25519.X25519(s.priv[:], curve25519.Basepoint)
	if err != nil {
		return nil, fmt.Errorf("notice key: %w", err)
	}
	copy(s.pub[:], pub)
	return s, nil
}

// LoadSealer reads a key file: the private key in hex, one line.
func LoadSealer(path string) (*Sealer, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	priv, err := hex.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil {
		return nil, fmt.Errorf("%s: want 64 hex digits: %w", path, err)
	}
	s, err := NewSealer(priv)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// NewKey makes a private key, hex-encoded, for a key file.
func NewKey() (string, error) {
	_, priv, err := box.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(priv[:]), nil
}

// Seal seals a pickup code.
func (s *Sealer) Seal(code string) ([]byte, error) {
	if code == "" || len(code) > 64 {
		return nil, errors.New("seal: a code of 1 to 64 characters")
	}
	return box.SealAnonymous(nil, []byte(code), s.pub, rand.Reader)
}

// Open opens what Seal sealed.
func (s *Sealer) Open(sealed []byte) (string, error) {
	if len(sealed) > MaxSealed {
		return "", errors.New("sealed code too long")
	}
	code, ok := box.OpenAnonymous(nil, sealed, s.pub, s.priv)
	if !ok {
		return "", errors.New("sealed code does not open with this notice key")
	}
	return string(code), nil
}
