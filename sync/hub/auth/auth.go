package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// Token is an API token as the hub keeps it: its secret only as a hash.
type Token struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Scopes    []string  `json:"scopes"`
	Hash      string    `json:"hash"` // hex SHA-256 of the secret (a random 256-bit value: no salt or stretching needed)
	Created   time.Time `json:"created"`
	CreatedBy string    `json:"created_by,omitempty"`
	Revoked   time.Time `json:"revoked,omitzero"`
}

// AuditRec is one state-changing request or console action.
type AuditRec struct {
	Seq    uint64    `json:"seq"`
	At     time.Time `json:"at"`
	Who    string    `json:"who"`    // token name, or console user
	Action string    `json:"action"` // "POST /v1/open", "console: open", ...
	Target string    `json:"target,omitempty"`
	Detail string    `json:"detail,omitempty"` // the request, bounded; never a secret
	From   string    `json:"from"`             // the client's address
	Status int       `json:"status"`           // the HTTP status answered
}

// User is a person who signs in to the console.
type User struct {
	Name     string    `json:"name"`
	Role     string    `json:"role"` // viewer, staff, admin
	Hash     string    `json:"hash"` // argon2id, encoded with its parameters and salt
	Created  time.Time `json:"created"`
	Disabled time.Time `json:"disabled,omitzero"`
}

// Tx is the part of a store transaction this package needs: API tokens,
// by id; the audit log (AddAudit numbers a, from 1; Audit lists those
// after seq after, at most limit, 0: all); console users, by name.
type Tx interface {
	PutToken(t Token) error
	Token(id string) (t Token, found bool, err error)
	Tokens() ([]Token, error)
	AddAudit(a AuditRec) (AuditRec, error)
	Audit(after uint64, limit int) ([]AuditRec, error)
	PutUser(u User) error
	User(name string) (u User, found bool, err error)
	Users() ([]User, error)
}

// Store runs transactions over this package's records.
type Store interface {
	View(fn func(Tx) error) error
	Update(fn func(Tx) error) error
}

// Service is the central's tokens, audit log and users.
type Service struct {
	store Store
	log   *slog.Logger
}

// New makes a Service on store.
func New(store Store, log *slog.Logger) *Service {
	if log == nil {
		log = slog.Default()
	}
	return &Service{store: store, log: log.With("component", "auth")}
}

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
func (s *Service) CreateToken(name string, scopes []string, by string) (string, Token, error) {
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
	tok := Token{ID: id, Name: name, Scopes: slices.Clone(scopes), Hash: HashSecret(secret), Created: time.Now().UTC(), CreatedBy: by}
	err := s.store.Update(func(tx Tx) error {
		all, err := tx.Tokens()
		if err != nil {
			return err
		}
		for _, o := range all {
			if o.Name == name && o.Revoked.IsZero() {
				return fmt.Errorf("a token named %q exists (revoke it first)", name)
			}
		}
		return tx.PutToken(tok)
	})
	if err != nil {
		return "", Token{}, err
	}
	return tokenPrefix + id + "_" + secret, tok, nil
}

// HashSecret is the hex SHA-256 of a random secret (a token's, a provisioning
// token's): what is kept of it.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// Authenticate finds the token a bearer secret stands for.
func (s *Service) Authenticate(bearer string) (Token, error) {
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
	if err := s.store.View(func(tx Tx) error {
		var err error
		tok, found, err = tx.Token(id)
		return err
	}); err != nil {
		return Token{}, err
	}
	if !found || subtle.ConstantTimeCompare([]byte(HashSecret(secret)), []byte(tok.Hash)) != 1 || !tok.Revoked.IsZero() {
		return Token{}, ErrBadToken
	}
	return tok, nil
}

// RevokeToken revokes a token by id or name: it is refused from now on.
func (s *Service) RevokeToken(idOrName string) (Token, error) {
	var tok Token
	err := s.store.Update(func(tx Tx) error {
		all, err := tx.Tokens()
		if err != nil {
			return err
		}
		for _, t := range all {
			if (t.ID == idOrName || t.Name == idOrName) && t.Revoked.IsZero() {
				t.Revoked = time.Now().UTC()
				tok = t
				return tx.PutToken(t)
			}
		}
		return fmt.Errorf("no token %q in use", idOrName)
	})
	return tok, err
}

// Tokens lists the tokens (their hashes left out).
func (s *Service) Tokens() ([]Token, error) {
	var out []Token
	err := s.store.View(func(tx Tx) error {
		var err error
		out, err = tx.Tokens()
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
func (s *Service) BootstrapToken(file string) (created bool, err error) {
	toks, err := s.Tokens()
	if err != nil || len(toks) > 0 {
		return false, err
	}
	secret, _, err := s.CreateToken("admin", []string{ScopeAdmin}, "bootstrap")
	if err != nil {
		return false, err
	}
	f, err := os.OpenFile(file, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		s.RevokeToken("admin")
		return false, fmt.Errorf("bootstrap admin token: %w", err)
	}
	defer f.Close()
	if _, err := f.WriteString(secret + "\n"); err != nil {
		return false, err
	}
	return true, f.Sync()
}

// Audit records a state-changing action.
func (s *Service) Audit(a AuditRec) {
	a.At = time.Now().UTC()
	if len(a.Detail) > maxAuditDetail {
		a.Detail = a.Detail[:maxAuditDetail] + "…"
	}
	if err := s.store.Update(func(tx Tx) error { _, err := tx.AddAudit(a); return err }); err != nil {
		s.log.Error("audit record not stored", "action", a.Action, "who", a.Who, "err", err)
	}
}

const maxAuditDetail = 2048

// AuditLog lists audit records after seq after (at most limit).
func (s *Service) AuditLog(after uint64, limit int) ([]AuditRec, error) {
	var out []AuditRec
	err := s.store.View(func(tx Tx) error {
		var err error
		out, err = tx.Audit(after, limit)
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

// Allow takes one from key's bucket at now; false when it is empty.
func (l *RateLimiter) Allow(key string, now time.Time) bool { return l.take(key, now, 1) }

// Has reports whether key's bucket has one at now, taking none: for
// limits counted only on failures (a bad link), checked before each try.
func (l *RateLimiter) Has(key string, now time.Time) bool { return l.take(key, now, 0) }

func (l *RateLimiter) take(key string, now time.Time, n float64) bool {
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
	b.tokens -= n
	return true
}
