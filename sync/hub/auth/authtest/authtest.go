package authtest

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lockerd/lockerd/sync/hub/auth"
)

// TestStore runs the suite on a fresh, empty store.
func TestStore(t *testing.T, s auth.Store) {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Millisecond)
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	must("write", s.Update(func(tx auth.Tx) error {
		for _, id := range []string{"t2", "t1"} {
			if err := tx.PutToken(auth.Token{ID: id, Name: "n-" + id, Scopes: []string{auth.ScopeRead, auth.ScopeOpen}, Hash: "h" + id, Created: now}); err != nil {
				return err
			}
		}
		if err := tx.PutToken(auth.Token{ID: "t2", Name: "n-t2", Scopes: []string{auth.ScopeRead}, Hash: "ht2", Created: now, Revoked: now}); err != nil {
			return err
		}
		for i := range 3 {
			a, err := tx.AddAudit(auth.AuditRec{At: now, Who: "admin", Action: fmt.Sprintf("POST /v1/x%d", i), Status: 200})
			if err != nil || a.Seq != uint64(i+1) {
				return fmt.Errorf("audit %d numbered %d (%v)", i, a.Seq, err)
			}
		}
		for _, name := range []string{"zhang", "li"} {
			if err := tx.PutUser(auth.User{Name: name, Role: auth.RoleStaff, Hash: "$argon2id$x", Created: now}); err != nil {
				return err
			}
		}
		return tx.PutUser(auth.User{Name: "zhang", Role: auth.RoleAdmin, Hash: "$argon2id$y", Created: now, Disabled: now})
	}))
	must("read", s.View(func(tx auth.Tx) error {
		toks, err := tx.Tokens()
		if err != nil || len(toks) != 2 || toks[0].ID != "t1" || toks[1].Revoked.IsZero() || len(toks[1].Scopes) != 1 {
			return fmt.Errorf("tokens by id: %+v %v", toks, err)
		}
		if tok, found, err := tx.Token("t1"); err != nil || !found || tok.Hash != "ht1" || !tok.Created.Equal(now) {
			return fmt.Errorf("token t1: %+v %v %v", tok, found, err)
		}
		if _, found, err := tx.Token("t9"); found || err != nil {
			return fmt.Errorf("token t9: %v %v", found, err)
		}
		if as, err := tx.Audit(1, 1); err != nil || len(as) != 1 || as[0].Seq != 2 || as[0].Action != "POST /v1/x1" {
			return fmt.Errorf("audit after 1, one: %+v %v", as, err)
		}
		if as, _ := tx.Audit(0, 0); len(as) != 3 {
			return fmt.Errorf("all the audit log: %+v", as)
		}
		us, err := tx.Users()
		if err != nil || len(us) != 2 || us[0].Name != "li" || us[1].Role != auth.RoleAdmin || us[1].Disabled.IsZero() {
			return fmt.Errorf("users by name: %+v %v", us, err)
		}
		if _, found, _ := tx.User("wang"); found {
			return errors.New("a user never added found")
		}
		return nil
	}))
	abort := errors.New("abort")
	if err := s.Update(func(tx auth.Tx) error {
		if _, err := tx.AddAudit(auth.AuditRec{Who: "x"}); err != nil {
			return err
		}
		if err := tx.PutUser(auth.User{Name: "rolled"}); err != nil {
			return err
		}
		return abort
	}); !errors.Is(err, abort) {
		t.Fatalf("an aborted transaction: %v", err)
	}
	must("after the abort", s.View(func(tx auth.Tx) error {
		if as, _ := tx.Audit(0, 0); len(as) != 3 {
			return fmt.Errorf("%d audit records after an aborted add", len(as))
		}
		if _, found, _ := tx.User("rolled"); found {
			return errors.New("an aborted transaction's user is there")
		}
		return nil
	}))
}

// Mem is an in-memory auth store: transactions are serialised, and an
// Update that fails leaves nothing behind.
type Mem struct {
	mu    sync.Mutex
	state memTx
}

var _ auth.Store = (*Mem)(nil)

func (m *Mem) View(fn func(auth.Tx) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return fn(&m.state)
}

func (m *Mem) Update(fn func(auth.Tx) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	tx := &memTx{tokens: maps.Clone(m.state.tokens), audit: slices.Clone(m.state.audit), users: maps.Clone(m.state.users)}
	if err := fn(tx); err != nil {
		return err
	}
	m.state = *tx
	return nil
}

type memTx struct {
	tokens map[string]auth.Token
	audit  []auth.AuditRec
	users  map[string]auth.User
}

func (t *memTx) PutToken(tok auth.Token) error {
	if t.tokens == nil {
		t.tokens = map[string]auth.Token{}
	}
	t.tokens[tok.ID] = tok
	return nil
}

func (t *memTx) Token(id string) (auth.Token, bool, error) {
	tok, ok := t.tokens[id]
	return tok, ok, nil
}

func (t *memTx) Tokens() ([]auth.Token, error) {
	var out []auth.Token
	for _, id := range slices.Sorted(maps.Keys(t.tokens)) {
		out = append(out, t.tokens[id])
	}
	return out, nil
}

func (t *memTx) AddAudit(a auth.AuditRec) (auth.AuditRec, error) {
	a.Seq = uint64(len(t.audit) + 1)
	t.audit = append(t.audit, a)
	return a, nil
}

func (t *memTx) Audit(after uint64, limit int) ([]auth.AuditRec, error) {
	var out []auth.AuditRec
	for _, a := range t.audit {
		if a.Seq > after && (limit <= 0 || len(out) < limit) {
			out = append(out, a)
		}
	}
	return out, nil
}

func (t *memTx) PutUser(u auth.User) error {
	if t.users == nil {
		t.users = map[string]auth.User{}
	}
	t.users[u.Name] = u
	return nil
}

func (t *memTx) User(name string) (auth.User, bool, error) { u, ok := t.users[name]; return u, ok, nil }

func (t *memTx) Users() ([]auth.User, error) {
	var out []auth.User
	for _, n := range slices.Sorted(maps.Keys(t.users)) {
		out = append(out, t.users[n])
	}
	return out, nil
}
