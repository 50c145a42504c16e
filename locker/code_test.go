package locker

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
)

type vectors struct {
	PickupKeyHex  string `json:"pickup_key_hex"`
	Normalization []struct {
		Scan       string `json:"scan"`
		Normalized string `json:"normalized"`
		CodeHash   string `json:"code_hash"`
		Valid      bool   `json:"valid"`
	} `json:"normalization"`
}

func loadVectors(t *testing.T) vectors {
	t.Helper()
	raw, err := os.ReadFile("../testdata/protocol-v1.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Normalization) == 0 {
		t.Fatal("no normalization vectors")
	}
	return v
}

func TestCodeVectors(t *testing.T) {
	v := loadVectors(t)
	key, err := ParseCodeKey(v.PickupKeyHex)
	if err != nil {
		t.Fatal(err)
	}
	for _, vec := range v.Normalization {
		t.Run(vec.Scan, func(t *testing.T) {
			got, err := NormalizeCode(vec.Scan)
			if !vec.Valid {
				if err == nil {
					t.Fatalf("NormalizeCode(%q) = %q, want refusal", vec.Scan, got)
				}
				if !errors.Is(err, ErrBadCode) {
					t.Fatalf("error does not wrap ErrBadCode: %v", err)
				}
				return
			}
			if err != nil || got != vec.Normalized {
				t.Fatalf("NormalizeCode(%q) = %q, %v; want %q", vec.Scan, got, err, vec.Normalized)
			}
			if h := key.Hash(got); h != vec.CodeHash {
				t.Fatalf("hash = %s, want %s", h, vec.CodeHash)
			}
		})
	}
}

func TestNormalizeCode(t *testing.T) {
	tests := []struct {
		scan, want string
		ok         bool
	}{
		{"abcd", "ABCD", true},
		{"\x02ABCD\x03", "ABCD", true},               // STX/ETX framing
		{"\u200bK7Q2M9", "K7Q2M9", true},             // zero-width space in front
		{"\ufeffK7Q2M9", "K7Q2M9", true},             // byte-order mark
		{"K7\u200dQ2\u2060M9\u200e", "K7Q2M9", true}, // joiners, word joiner, LTR mark inside
		{"\u00adK7Q2M9", "K7Q2M9", true},             // soft hyphen
		{"]Q1\ufeffk7q2m9", "K7Q2M9", true},          // after the AIM id
		{"]E0 12345678 ", "12345678", true},
		{"]Q1https://x.example/p?code=ab12&x=1", "AB12", true},
		{"?code=zz99", "ZZ99", true},
		{"AB CD", "", false},
		{"ÄBCD", "", false},
		{"", "", false},
		{"]Q1", "", false},
		{"https://x.example/%zz", "", false},
		{strings.Repeat("A", 16), strings.Repeat("A", 16), true},
	}
	for _, tt := range tests {
		got, err := NormalizeCode(tt.scan)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("NormalizeCode(%q) = %q, %v; want %q ok=%v", tt.scan, got, err, tt.want, tt.ok)
		}
		if err != nil && strings.Contains(err.Error(), tt.scan) && tt.scan != "" {
			t.Errorf("error echoes the scan: %v", err)
		}
	}
}

func TestParseCodeKey(t *testing.T) {
	if _, err := ParseCodeKey(hex.EncodeToString(make([]byte, 31))); err == nil {
		t.Error("31-byte key accepted")
	}
	if _, err := ParseCodeKey("zz"); err == nil {
		t.Error("non-hex key accepted")
	}
	if _, err := ParseCodeKey(hex.EncodeToString(make([]byte, 32)) + "\n"); err != nil {
		t.Errorf("32-byte key with newline refused: %v", err)
	}
}

func TestNewCodeIsValid(t *testing.T) {
	for i := 0; i < 200; i++ {
		c, err := NewCode(DefaultCodeLen)
		if err != nil {
			t.Fatal(err)
		}
		if n, err := NormalizeCode(c); err != nil || n != c {
			t.Fatalf("generated code %q does not normalise to itself: %q %v", c, n, err)
		}
		if strings.ContainsAny(c, "01IO") {
			t.Fatalf("generated code %q has an ambiguous character", c)
		}
	}
	if _, err := NewCode(3); err == nil {
		t.Error("3-character code generated")
	}
}

func FuzzNormalizeCode(f *testing.F) {
	for _, s := range []string{"K7Q2M9", "]Q1k7q2m9", "  k7q2m9\r\n", "https://l.example/p?locker=a&code=k7q2m9", "]C012345678", "AB1", "?code=", "\x00\xff"} {
		f.Add(s)
	}
	key := CodeKey(make([]byte, 32))
	f.Fuzz(func(t *testing.T, scan string) {
		code, err := NormalizeCode(scan)
		if err != nil {
			if code != "" {
				t.Fatalf("code %q returned with error", code)
			}
			return
		}
		if len(code) < MinCodeLen || len(code) > MaxCodeLen {
			t.Fatalf("code %q out of length bounds", code)
		}
		for _, c := range code {
			if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
				t.Fatalf("code %q has %q", code, c)
			}
		}
		again, err := NormalizeCode(code)
		if err != nil || again != code {
			t.Fatalf("not idempotent: %q → %q, %v", code, again, err)
		}
		if len(key.Hash(code)) != 64 {
			t.Fatal("hash length")
		}
	})
}

// TestPatronVectors: the library card's keyed hash orders carry, as the
// central computes it (testdata/protocol-v1-0.16.json).
func TestPatronVectors(t *testing.T) {
	base := loadVectors(t)
	key, err := ParseCodeKey(base.PickupKeyHex)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("../testdata/protocol-v1-0.16.json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		BadgeCode string `json:"badge_code"`
		BadgeHash string `json:"badge_hash"`
		Patron    []struct {
			Scan       string `json:"scan"`
			Normalized string `json:"normalized"`
			PatronHash string `json:"patron_hash"`
			Valid      bool   `json:"valid"`
		} `json:"patron"`
	}
	if err := json.Unmarshal(raw, &v); err != nil || len(v.Patron) == 0 {
		t.Fatalf("vectors: %v", err)
	}
	for _, vec := range v.Patron {
		got, err := NormalizePatron(vec.Scan)
		if !vec.Valid {
			if err == nil || !errors.Is(err, ErrBadCode) || strings.Contains(err.Error(), vec.Scan) && vec.Scan != "" {
				t.Errorf("NormalizePatron(%q) = %q, %v; want a refusal that does not repeat it", vec.Scan, got, err)
			}
			continue
		}
		if err != nil || got != vec.Normalized || key.PatronHash(got) != vec.PatronHash {
			t.Errorf("NormalizePatron(%q) = %q, %v (hash %s); want %q %s", vec.Scan, got, err, key.PatronHash(got), vec.Normalized, vec.PatronHash)
		}
		if code, err := NormalizeCode(vec.Scan); err == nil && key.Hash(code) == vec.PatronHash {
			t.Errorf("%q: a card's hash equals a code's", vec.Scan)
		}
	}
	n, _ := NormalizeCode(v.BadgeCode)
	if key.Hash(n) != v.BadgeHash {
		t.Errorf("badge hash %s, want %s", key.Hash(n), v.BadgeHash)
	}
}

func FuzzNormalizePatron(f *testing.F) {
	for _, s := range []string{"21000123", "]C021000123", " nb-2100\r\n", "21|00", "\u200b", "图书馆", "\x00\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, scan string) {
		card, err := NormalizePatron(scan)
		if err != nil {
			if card != "" || scan != "" && len(scan) > 3 && strings.Contains(err.Error(), scan) {
				t.Fatalf("refusal returned %q or repeats the scan: %v", card, err)
			}
			return
		}
		if card == "" || len(card) > MaxPatronLen || strings.ContainsAny(card, "| ") {
			t.Fatalf("card %q out of bounds", card)
		}
		for i := 0; i < len(card); i++ {
			if card[i] < 0x21 || card[i] > 0x7e {
				t.Fatalf("card %q has byte %x", card, card[i])
			}
		}
		if again, err := NormalizePatron(card); err != nil || again != card {
			t.Fatalf("not idempotent: %q → %q, %v", card, again, err)
		}
	})
}
