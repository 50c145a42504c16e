package protocol

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"testing"
)

type vectors struct {
	CentralPublicKey string          `json:"central_public_key"`
	CentralSeedHex   string          `json:"central_seed_hex"`
	SignedBody       string          `json:"signed_body"`
	Valid            json.RawMessage `json:"signed_envelope_valid"`
	Tampered         json.RawMessage `json:"signed_envelope_tampered"`
}

func load(t *testing.T) vectors {
	t.Helper()
	raw, err := os.ReadFile("../../testdata/protocol-v1.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestEnvelopeVectors(t *testing.T) {
	v := load(t)
	pub, err := ParsePublicKey(v.CentralPublicKey)
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := hex.DecodeString(v.CentralSeedHex)
	priv := ed25519.NewKeyFromSeed(seed)
	if !bytes.Equal(priv.Public().(ed25519.PublicKey), pub) {
		t.Fatal("seed does not give the vectors' public key")
	}
	body, err := Open(v.Valid, pub)
	if err != nil {
		t.Fatalf("valid envelope refused: %v", err)
	}
	if string(body) != v.SignedBody {
		t.Fatalf("body %s, want %s", body, v.SignedBody)
	}
	if _, err := Open(v.Tampered, pub); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("tampered envelope: %v, want ErrBadSignature", err)
	}
	// Ed25519 is deterministic: sealing the body reproduces the vector.
	sealed, err := Seal([]byte(v.SignedBody), priv)
	if err != nil {
		t.Fatal(err)
	}
	var got, want Envelope
	json.Unmarshal(sealed, &got)
	json.Unmarshal(v.Valid, &want)
	if got != want {
		t.Fatalf("sealed %+v, want %+v", got, want)
	}
}

func TestOpenRefuses(t *testing.T) {
	v := load(t)
	pub, _ := ParsePublicKey(v.CentralPublicKey)
	other := ed25519.NewKeyFromSeed(make([]byte, 32))
	wrongKey, _ := Seal([]byte(v.SignedBody), other)
	tests := []struct {
		name string
		raw  string
		want error
	}{
		{"not JSON", `{"v":1,`, ErrMalformed},
		{"version 2", `{"v":2,"body":"e30=","sig":"AA=="}`, ErrVersion},
		{"no version", `{"body":"e30=","sig":"AA=="}`, ErrVersion},
		{"body not base64", `{"v":1,"body":"%%%","sig":"AA=="}`, ErrMalformed},
		{"short signature", `{"v":1,"body":"e30=","sig":"AA=="}`, ErrMalformed},
		{"signed by another key", string(wrongKey), ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Open([]byte(tt.raw), pub); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func FuzzOpen(f *testing.F) {
	v := vectors{}
	raw, _ := os.ReadFile("../../testdata/protocol-v1.json")
	json.Unmarshal(raw, &v)
	f.Add([]byte(v.Valid))
	f.Add([]byte(v.Tampered))
	f.Add([]byte(`{"v":1,"body":"","sig":""}`))
	pub, _ := ParsePublicKey(v.CentralPublicKey)
	f.Fuzz(func(t *testing.T, raw []byte) {
		body, err := Open(raw, pub)
		if err == nil && !bytes.Equal(body, []byte(v.SignedBody)) {
			// Only the central's key can produce a valid envelope; the
			// fuzzer cannot forge a new one.
			t.Fatalf("forged envelope accepted: %s", body)
		}
	})
}

// FuzzDecode feeds downlink bodies (after the signature check) to the
// envelope decoder and every message type's data.
func FuzzDecode(f *testing.F) {
	v := vectors{}
	raw, _ := os.ReadFile("../../testdata/protocol-v1.json")
	json.Unmarshal(raw, &v)
	f.Add([]byte(v.SignedBody))
	f.Add([]byte(`{"v":1,"type":"orders.upsert","id":"a","locker":"nb-main-01","ts":"2026-11-26T10:00:00Z","data":{"orders":[{"id":"o","rev":1,"state":"assigned","size":"S","items":[],"code":"K7Q2M9","expires_at":"2026-11-27T10:00:00Z"}]}}`))
	f.Add([]byte(`{"v":1,"type":"orders.snapshot","id":"b","locker":"nb-main-01","data":{"snap_id":"s","part":1,"parts":2,"rev":3,"orders":[]}}`))
	f.Add([]byte(`{"v":1,"type":"ack.evt","id":"c","locker":"nb-main-01","data":{"upto":18446744073709551615}}`))
	f.Add([]byte(`{"v":1,"type":"cmd.resync","id":"d","locker":"nb-main-01","exp":"x","data":{"from_seq":-1}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := Decode(body, "nb-main-01")
		if err != nil {
			return
		}
		if m.V != Version || m.ID == "" || m.Locker != "nb-main-01" {
			t.Fatalf("accepted a bad envelope: %+v", m)
		}
		for _, v := range []any{&OrdersUpsert{}, &OrdersCancel{}, &OrdersSnapshot{}, &CmdOpen{}, &CmdService{}, &CmdResync{}, &AckEvt{}} {
			_ = DecodeData(m, v)
		}
	})
}

// Reseal keeps an envelope signed with the current key as it is, and signs
// the same body again when it was signed with another.
func TestReseal(t *testing.T) {
	_, oldKey, _ := ed25519.GenerateKey(rand.Reader)
	newPub, newKey, _ := ed25519.GenerateKey(rand.Reader)
	body := []byte(`{"v":1,"id":"m1"}`)
	cur, _ := Seal(body, newKey)
	if got, err := Reseal(cur, newKey); err != nil || string(got) != string(cur) {
		t.Fatalf("an envelope of the current key changed: %s %v", got, err)
	}
	old, _ := Seal(body, oldKey)
	got, err := Reseal(old, newKey)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := Open(got, newPub); err != nil || string(b) != string(body) {
		t.Fatalf("resealed: %q %v", b, err)
	}
	if _, err := Reseal([]byte("{"), newKey); !errors.Is(err, ErrMalformed) {
		t.Fatalf("garbage: %v", err)
	}
}
