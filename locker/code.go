package locker

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode"
)

// Code length bounds for pickup codes and staff badges.
const (
	MinCodeLen = 4
	MaxCodeLen = 16
)

// ErrBadCode is returned by NormalizeCode for a scan that cannot be a code.
// Its message never contains the scanned text.
var ErrBadCode = errors.New("not a valid code")

// CleanScan removes control characters and invisible format characters
// (Unicode category Cf: zero-width space and joiners, the byte-order mark,
// bidi marks — what keyboard-wedge scanners and copied text put in front)
// anywhere, trims white space at both ends, and strips an AIM symbology identifier (']' and two
// characters, e.g. "]Q1" for QR, "]C0" for Code 128) that scanners
// configured to send one put in front.
func CleanScan(raw string) string {
	s := strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return -1
		}
		return r
	}, raw)
	s = strings.TrimSpace(s)
	if len(s) >= 3 && s[0] == ']' {
		s = strings.TrimSpace(s[3:])
	}
	return s
}

// NormalizeCode turns a raw scan or typed entry into a pickup code:
// CleanScan, then the value of the "code" query parameter if the scan is a
// link (so one QR can open an information page on a phone and a door at
// the locker), then upper case. A code is 4 to 16 characters of A-Z0-9.
func NormalizeCode(raw string) (string, error) {
	s := CleanScan(raw)
	if strings.Contains(s, "://") || strings.HasPrefix(s, "?") {
		u, err := url.Parse(s)
		if err != nil {
			return "", fmt.Errorf("%w: unreadable link", ErrBadCode)
		}
		s = u.Query().Get("code")
		if s == "" {
			return "", fmt.Errorf("%w: link has no code", ErrBadCode)
		}
	}
	s = strings.ToUpper(s)
	if len(s) < MinCodeLen || len(s) > MaxCodeLen {
		return "", fmt.Errorf("%w: length must be %d to %d", ErrBadCode, MinCodeLen, MaxCodeLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return "", fmt.Errorf("%w: only letters and digits", ErrBadCode)
		}
	}
	return s, nil
}

// CodeKey is the secret key pickup codes and staff badges are hashed with.
type CodeKey []byte

// MinCodeKeyLen is the shortest acceptable pickup key.
const MinCodeKeyLen = 32

// ParseCodeKey reads a hex key, as stored in security.pickup_key_file.
func ParseCodeKey(hexText string) (CodeKey, error) {
	b, err := hex.DecodeString(strings.TrimSpace(hexText))
	if err != nil {
		return nil, fmt.Errorf("pickup key is not hex: %w", err)
	}
	if len(b) < MinCodeKeyLen {
		return nil, fmt.Errorf("pickup key has %d bytes, need at least %d", len(b), MinCodeKeyLen)
	}
	return CodeKey(b), nil
}

// Hash returns lowercase hex HMAC-SHA256(key, code) of a normalised code.
func (k CodeKey) Hash(normalized string) string {
	m := hmac.New(sha256.New, k)
	m.Write([]byte(normalized))
	return hex.EncodeToString(m.Sum(nil))
}

// MaxPatronLen bounds a library card number.
const MaxPatronLen = 64

// CleanPatron turns a scanned library card into the card number as the
// reader's card carries it, for the library system: CleanScan, 1 to
// MaxPatronLen printable ASCII characters without '|' (SIP2's field
// separator). Its case is kept: a library system may match card numbers
// case-sensitively. Its error never contains the scanned text.
func CleanPatron(raw string) (string, error) {
	s := CleanScan(raw)
	if s == "" || len(s) > MaxPatronLen || s[0] == ']' {
		// (A card may not start with ']': read again, it would lose what
		// looks like a symbology identifier.)
		return "", fmt.Errorf("%w: a library card has 1 to %d characters", ErrBadCode, MaxPatronLen)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e || s[i] == '|' {
			return "", fmt.Errorf("%w: a library card is printable ASCII without '|'", ErrBadCode)
		}
	}
	return s, nil
}

// NormalizePatron is CleanPatron in upper case: the form matched against
// orders (PatronHash), whatever case a scanner or a form gave. Only for
// matching: the library system is sent CleanPatron's.
func NormalizePatron(raw string) (string, error) {
	s, err := CleanPatron(raw)
	return strings.ToUpper(s), err
}

// PatronHash returns the keyed hash orders carry of their reader's
// library card (normalised by NormalizePatron): lowercase hex
// HMAC-SHA256(key, "patron" 0x00 card). The prefix keeps it apart from
// code hashes (a code is only letters and digits).
func (k CodeKey) PatronHash(normalized string) string {
	return k.Hash("patron\x00" + normalized)
}

// codeAlphabet leaves out 0/O and 1/I, which readers confuse when typing.
const codeAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"

// NewCode returns a random pickup code of n characters (n within bounds).
func NewCode(n int) (string, error) {
	if n < MinCodeLen || n > MaxCodeLen {
		return "", fmt.Errorf("code length %d out of bounds %d..%d", n, MinCodeLen, MaxCodeLen)
	}
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random code: %w", err)
	}
	for i := range b {
		b[i] = codeAlphabet[int(b[i])%len(codeAlphabet)] // 256 is a multiple of 32: no bias
	}
	return string(b), nil
}
