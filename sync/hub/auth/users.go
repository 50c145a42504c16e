package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Console roles: viewer sees; staff also acts (opens, service, orders,
// alarms, circulation); admin also sees the audit log.
const (
	RoleViewer = "viewer"
	RoleStaff  = "staff"
	RoleAdmin  = "admin"
)

// Roles lists the console's roles, least first.
var Roles = []string{RoleViewer, RoleStaff, RoleAdmin}

// RoleAllows reports whether role may do what needs at least need.
func RoleAllows(role, need string) bool {
	return slices.Contains(Roles, role) && slices.Index(Roles, role) >= slices.Index(Roles, need)
}

var userNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$`)

// argon2id parameters (RFC 9106's second recommended option, sized for a
// small server: 64 MiB, 3 passes).
const (
	argonTime    = 3
	argonMemory  = 64 * 1024
	argonThreads = 2
	argonKeyLen  = 32
)

// hashPassword is argon2id with a random salt, encoded as
// $argon2id$v=19$m=MEM,t=TIME,p=THREADS$SALT$KEY.
func hashPassword(pw string) string {
	salt := make([]byte, 16)
	rand.Read(salt)
	key := argon2.IDKey([]byte(pw), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", argonMemory, argonTime, argonThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

// checkPassword compares pw with an encoded hash in constant time.
func checkPassword(encoded, pw string) bool {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m > 1<<20 || t > 10 || p == 0 {
		return false
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	key, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(key) == 0 || len(key) > 64 {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, t, m, p, uint32(len(key)))
	return subtle.ConstantTimeCompare(got, key) == 1
}

// dummyHash is checked when a user does not exist, so that a sign-in
// takes as long whether or not the name is known. It is made at the
// first sign-in, not at package init: argon2id takes argonMemory (64 MiB)
// and a quarter of a second, which every program importing this package —
// lockerd among them, through provisioning — paid at start, and kept as
// resident memory (lockerbench footprint: idle RSS 79 MiB instead of 13).
var dummyHash = sync.OnceValue(func() string { return hashPassword("no such user") })

// AddUser makes (or replaces, with a new password and role) a console
// user.
func (s *Service) AddUser(name, role, password string) (User, error) {
	if !userNameRe.MatchString(name) {
		return User{}, fmt.Errorf("user name %q: letters, digits, '.', '@', '-' and '_', up to 64", name)
	}
	if !slices.Contains(Roles, role) {
		return User{}, fmt.Errorf("role %q: viewer, staff or admin", role)
	}
	if n := utf8.RuneCountInString(password); n < 10 || len(password) > 256 {
		return User{}, errors.New("a password of 10 to 256 characters")
	}
	u := User{Name: name, Role: role, Hash: hashPassword(password), Created: time.Now().UTC()}
	err := s.store.Update(func(tx Tx) error { return tx.PutUser(u) })
	u.Hash = ""
	return u, err
}

// DisableUser keeps a user from signing in, and ends their sessions
// (every console request checks the user).
func (s *Service) DisableUser(name string) error {
	return s.store.Update(func(tx Tx) error {
		u, found, err := tx.User(name)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("no user %q", name)
		}
		u.Disabled = time.Now().UTC()
		return tx.PutUser(u)
	})
}

// Users lists the console users (hashes left out).
func (s *Service) Users() ([]User, error) {
	var out []User
	err := s.store.View(func(tx Tx) error {
		var err error
		out, err = tx.Users()
		return err
	})
	for i := range out {
		out[i].Hash = ""
	}
	return out, err
}

// hashing bounds the password checks running at once: each takes 64 MiB,
// and a flood of sign-ins from many addresses (each within its rate
// limit) must not take the machine's memory.
var hashing = make(chan struct{}, 2)

// ErrSignIn is a sign-in refused (the same words whatever was wrong).
var ErrSignIn = errors.New("wrong user name or password")

// SignIn checks a user's password; it returns the user when it matches
// and the user is not disabled.
func (s *Service) SignIn(name, password string) (User, error) {
	var u User
	var found bool
	if err := s.store.View(func(tx Tx) error {
		var err error
		u, found, err = tx.User(name)
		return err
	}); err != nil {
		return User{}, err
	}
	hash := u.Hash
	if !found {
		hash = dummyHash()
	}
	hashing <- struct{}{}
	ok := checkPassword(hash, password)
	<-hashing
	if !found || !ok || !u.Disabled.IsZero() {
		return User{}, ErrSignIn
	}
	u.Hash = ""
	return u, nil
}

// ActiveUser returns a user who may act now (known, not disabled).
func (s *Service) ActiveUser(name string) (User, bool) {
	var u User
	var found bool
	_ = s.store.View(func(tx Tx) error {
		var err error
		u, found, err = tx.User(name)
		return err
	})
	u.Hash = ""
	return u, found && u.Disabled.IsZero()
}
