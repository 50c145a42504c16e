package hub

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// API token scopes. Every scope reads; admin does everything.
const (
	ScopeRead   = "read"   // lists: lockers, orders, events, alarms, circulation
	ScopeOrders = "orders" // create, cancel, snapshot; circulation retry and resolve
	ScopeOpen   = "open"   // remote door opens
	ScopeAdmin  = "admin"  // lockers served, tokens, the audit log; all of the above
)

// Scopes lists the scopes a token may carry.
var Scopes = []string{ScopeRead, ScopeOrders, ScopeOpen, ScopeAdmin}

// Allows reports whether t may act with scope.
func (t Token) Allows(scope string) bool {
	if !t.Revoked.IsZero() {
		return false
	}
	return scope == ScopeRead || slices.Contains(t.Scopes, ScopeAdmin) || slices.Contains(t.Scopes, scope)
}

// A token reads "lht_<id>_<secret>": the id finds its record, the
// secret's hash must match (compared in constant time).
const tokenPrefix = "lht_"

var tokenNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// Errors of Authenticate.
var (
	ErrNoToken  = errors.New("missing bearer token")
	ErrBadToken = errors.New("unknown or revoked token")
)

// CreateToken makes a token named name with scopes; it returns its
// secret, shown once: the hub keeps only its hash.
func (h *Hub) CreateToken(name string, scopes []string, by string) (string, Token, error) {
	if !tokenNameRe.MatchString(name) {
		return "", Token{}, fmt.Errorf("token name %q: letters, digits, '.', '-' and '_', up to 64", name)
	}
	if len(scopes) == 0 {
		return "", Token{}, fmt.Errorf("a token needs a scope: %s", strings.Join(Scopes, ", "))
	}
	for _, s := range scopes {
		if !slices.Contains(Scopes, s) {
			return "", Token{}, fmt.Errorf("scope %q: known scopes: %s", s, strings.Join(Scopes, ", "))
		}
	}
	idRaw := make([]byte, 5)
	secretRaw := make([]byte, 32)
	rand.Read(idRaw)
	rand.Read(secretRaw)
	id := strings.ToLower(base32.StdEncoding.EncodeToString(idRaw))
	secret := base64.RawURLEncoding.EncodeToString(secretRaw)
	tok := Token{ID: id, Name: name, Scopes: slices.Clone(scopes), Hash: hashSecret(secret), Created: time.Now().UTC(), CreatedBy: by}
	err := h.store.Update(func(tx Tx) error {
		all, err := tx.Auth.Tokens()
		if err != nil {
			return err
		}
		for _, o := range all {
			if o.Name == name && o.Revoked.IsZero() {
				return fmt.Errorf("a token named %q exists (revoke it first)", name)
			}
		}
		return tx.Auth.PutToken(tok)
	})
	if err != nil {
		return "", Token{}, err
	}
	return tokenPrefix + id + "_" + secret, tok, nil
}

func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// Authenticate finds the token a bearer secret stands for.
func (h *Hub) Authenticate(bearer string) (Token, error) {
	if bearer == "" {
		return Token{}, ErrNoToken
	}
	rest, ok := strings.CutPrefix(bearer, tokenPrefix)
	id, secret, ok2 := strings.Cut(rest, "_")
	if !ok || !ok2 || len(bearer) > 200 {
		return Token{}, ErrBadToken
	}
	var tok Token
	var found bool
	if err := h.store.View(func(tx Tx) error {
		var err error
		tok, found, err = tx.Auth.Token(id)
		return err
	}); err != nil {
		return Token{}, err
	}
	if !found || subtle.ConstantTimeCompare([]byte(hashSecret(secret)), []byte(tok.Hash)) != 1 || !tok.Revoked.IsZero() {
		return Token{}, ErrBadToken
	}
	return tok, nil
}

// RevokeToken revokes a token by id or name: it is refused from now on.
func (h *Hub) RevokeToken(idOrName string) (Token, error) {
	var tok Token
	err := h.store.Update(func(tx Tx) error {
		all, err := tx.Auth.Tokens()
		if err != nil {
			return err
		}
		for _, t := range all {
			if (t.ID == idOrName || t.Name == idOrName) && t.Revoked.IsZero() {
				t.Revoked = time.Now().UTC()
				tok = t
				return tx.Auth.PutToken(t)
			}
		}
		return fmt.Errorf("no token %q in use", idOrName)
	})
	return tok, err
}

// Tokens lists the tokens (their hashes left out).
func (h *Hub) Tokens() ([]Token, error) {
	var out []Token
	err := h.store.View(func(tx Tx) error {
		var err error
		out, err = tx.Auth.Tokens()
		return err
	})
	for i := range out {
		out[i].Hash = ""
	}
	return out, err
}

// BootstrapToken makes the first admin token when the hub has none and
// writes it to file (mode 0600, never over an existing file): the one
// way in before any token exists. created is false when tokens exist.
func (h *Hub) BootstrapToken(file string) (created bool, err error) {
	toks, err := h.Tokens()
	if err != nil || len(toks) > 0 {
		return false, err
	}
	secret, _, err := h.CreateToken("admin", []string{ScopeAdmin}, "bootstrap")
	if err != nil {
		return false, err
	}
	f, err := os.OpenFile(file, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		h.RevokeToken("admin")
		return false, fmt.Errorf("bootstrap admin token: %w", err)
	}
	defer f.Close()
	if _, err := f.WriteString(secret + "\n"); err != nil {
		return false, err
	}
	return true, f.Sync()
}

// Audit records a state-changing action.
func (h *Hub) Audit(a AuditRec) {
	a.At = time.Now().UTC()
	if len(a.Detail) > maxAuditDetail {
		a.Detail = a.Detail[:maxAuditDetail] + "…"
	}
	if err := h.store.Update(func(tx Tx) error { _, err := tx.Auth.AddAudit(a); return err }); err != nil {
		h.log.Error("audit record not stored", "action", a.Action, "who", a.Who, "err", err)
	}
}

const maxAuditDetail = 2048

// AuditLog lists audit records after seq after (at most limit).
func (h *Hub) AuditLog(after uint64, limit int) ([]AuditRec, error) {
	var out []AuditRec
	err := h.store.View(func(tx Tx) error {
		var err error
		out, err = tx.Auth.Audit(after, limit)
		return err
	})
	return out, err
}

// RateLimiter is a token bucket per key: Burst at once, then one every
// Every. It bounds remote opens per API token and the console's sign-ins
// per address and per name. Its table is bounded: a flood of keys resets
// it rather than growing it.
type RateLimiter struct {
	Burst float64
	Every time.Duration

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

// Remote opens per token: 5 at once, then one every 6 s (10 a minute).
const (
	openBurst = 5
	openEvery = 6 * time.Second
)

// Allow takes one from key's bucket at now; false when it is empty.
func (l *RateLimiter) Allow(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buckets == nil || len(l.buckets) > 10_000 {
		l.buckets = map[string]*bucket{}
	}
	b := l.buckets[key]
	if b == nil {
		b = &bucket{tokens: l.Burst, at: now}
		l.buckets[key] = b
	}
	b.tokens = min(l.Burst, b.tokens+now.Sub(b.at).Seconds()/l.Every.Seconds())
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

type ctxKey struct{}

// Caller is the token a request came with (the zero Token when none).
func Caller(ctx context.Context) Token {
	t, _ := ctx.Value(ctxKey{}).(Token)
	return t
}
