package auth_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lockerd/lockerd/sync/hub/auth"
	"github.com/lockerd/lockerd/sync/hub/auth/authtest"
)

func TestMemStore(t *testing.T) { authtest.TestStore(t, &authtest.Mem{}) }

// Tokens: the secret is shown once and kept hashed; it authenticates
// until revoked; a tampered secret or another token's id does not; scopes
// allow what they say (admin everything, any token reads).
func TestTokens(t *testing.T) {
	s := auth.New(&authtest.Mem{}, nil)
	secret, tok, err := s.CreateToken("ils", []string{auth.ScopeOrders}, "test")
	if err != nil || tok.Hash == "" || strings.Contains(tok.Hash, secret) {
		t.Fatalf("create: %+v %v", tok, err)
	}
	if _, _, err := s.CreateToken("bad name!", []string{auth.ScopeRead}, "test"); err == nil {
		t.Error("a bad name taken")
	}
	if _, _, err := s.CreateToken("x", []string{"root"}, "test"); err == nil {
		t.Error("an unknown scope taken")
	}
	got, err := s.Authenticate(secret)
	if err != nil || got.ID != tok.ID || !got.Allows(auth.ScopeOrders) || !got.Allows(auth.ScopeRead) || got.Allows(auth.ScopeOpen) {
		t.Fatalf("authenticate: %+v %v", got, err)
	}
	for _, bad := range []string{"", secret + "x", strings.Replace(secret, tok.ID, "zzzz", 1), "lht_", strings.Repeat("a", 300)} {
		if _, err := s.Authenticate(bad); err == nil {
			t.Errorf("authenticated %q", bad)
		}
	}
	if _, err := s.RevokeToken("ils"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(secret); !errors.Is(err, auth.ErrBadToken) {
		t.Fatalf("a revoked token: %v", err)
	}
	if toks, _ := s.Tokens(); len(toks) != 1 || toks[0].Hash != "" {
		t.Fatalf("listed with its hash: %+v", toks)
	}
}

// Users: a password signs in, a wrong one, an unknown user and a
// disabled user do not (the same error); roles order as they say.
func TestUsers(t *testing.T) {
	s := auth.New(&authtest.Mem{}, nil)
	if _, err := s.AddUser("li", auth.RoleStaff, "short"); err == nil {
		t.Error("a short password taken")
	}
	if _, err := s.AddUser("li", auth.RoleStaff, "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	if u, err := s.SignIn("li", "correct horse battery"); err != nil || u.Role != auth.RoleStaff || u.Hash != "" {
		t.Fatalf("sign in: %+v %v", u, err)
	}
	for _, c := range [][2]string{{"li", "wrong horse battery"}, {"wang", "correct horse battery"}} {
		if _, err := s.SignIn(c[0], c[1]); !errors.Is(err, auth.ErrSignIn) {
			t.Errorf("sign in %v: %v", c, err)
		}
	}
	if err := s.DisableUser("li"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SignIn("li", "correct horse battery"); !errors.Is(err, auth.ErrSignIn) {
		t.Errorf("a disabled user signed in: %v", err)
	}
	if !auth.RoleAllows(auth.RoleAdmin, auth.RoleStaff) || auth.RoleAllows(auth.RoleViewer, auth.RoleStaff) || auth.RoleAllows("root", auth.RoleViewer) {
		t.Error("roles")
	}
}

func TestRateLimiter(t *testing.T) {
	l := auth.RateLimiter{Burst: 2, Every: time.Second}
	t0 := time.Unix(1_800_000_000, 0)
	if !l.Allow("k", t0) || !l.Allow("k", t0) || l.Allow("k", t0) {
		t.Fatal("burst of 2")
	}
	if !l.Allow("other", t0) {
		t.Fatal("another key limited")
	}
	if !l.Allow("k", t0.Add(time.Second)) || l.Allow("k", t0.Add(time.Second)) {
		t.Fatal("one a second")
	}
}
