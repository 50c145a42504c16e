package orderpage

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strings"
	"time"
)

// maxToken bounds a token (a locker id and an order id of 64 each).
const maxToken = 300

var b64 = base64.RawURLEncoding

// Token is the page's token for an order, valid until until.
func Token(key []byte, locker, order string, until time.Time) string {
	var exp [8]byte
	binary.BigEndian.PutUint64(exp[:], uint64(until.Unix()))
	body := b64.EncodeToString([]byte(locker + "\x00" + order + "\x00" + string(exp[:])))
	return body + "." + b64.EncodeToString(mac(key, "page:"+body))
}

// ErrToken is any token that does not open a page (malformed, forged,
// expired): the reader is told only that the link no longer works.
var ErrToken = errors.New("this link does not work any more")

// Open checks a token at now and returns its locker and order.
func Open(key []byte, token string, now time.Time) (locker, order string, err error) {
	body, sig, ok := strings.Cut(token, ".")
	if !ok || len(token) > maxToken {
		return "", "", ErrToken
	}
	got, err := b64.DecodeString(sig)
	if err != nil || !hmac.Equal(got, mac(key, "page:"+body)) {
		return "", "", ErrToken
	}
	raw, err := b64.DecodeString(body)
	if err != nil {
		return "", "", ErrToken
	}
	parts := strings.SplitN(string(raw), "\x00", 3)
	if len(parts) != 3 || len(parts[2]) != 8 {
		return "", "", ErrToken
	}
	if exp := int64(binary.BigEndian.Uint64([]byte(parts[2]))); now.Unix() > exp {
		return "", "", ErrToken
	}
	return parts[0], parts[1], nil
}

// mac is HMAC-SHA256 of what under key, cut to 128 bits.
func mac(key []byte, what string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(what))
	return m.Sum(nil)[:16]
}
