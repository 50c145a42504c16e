package fleettest

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/lockerd/lockerd/sync/hub/fleet"
)

// Store runs transactions over the documents of a store.
type Store interface {
	View(fn func(fleet.Docs) error) error
	Update(fn func(fleet.Docs) error) error
}

// TestStore runs the suite on a fresh, empty store: documents by kind and
// id; a kind not written yet has none, another kind's are apart, a
// document is replaced whole, and an update that fails leaves nothing.
func TestStore(t *testing.T, s Store) {
	t.Helper()
	type doc struct {
		ID   string `json:"id"`
		Note string `json:"note"`
	}
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	must("an empty kind", s.View(func(tx fleet.Docs) error {
		var d doc
		found, err := tx.Doc(fleet.DocProvision, "p1", &d)
		all, err2 := tx.Docs(fleet.DocProvision)
		if found || err != nil || len(all) != 0 || err2 != nil {
			return fmt.Errorf("%v %v %v %v", found, err, all, err2)
		}
		return nil
	}))
	must("put", s.Update(func(tx fleet.Docs) error {
		for _, d := range []doc{{"p2", "b"}, {"p1", "a"}, {"p1", "a2"}} {
			if err := tx.PutDoc(fleet.DocProvision, d.ID, d); err != nil {
				return err
			}
		}
		return tx.PutDoc(fleet.DocCredential, "p1", doc{"p1", "other kind"})
	}))
	errRolledBack := errors.New("rolled back")
	if err := s.Update(func(tx fleet.Docs) error {
		if err := tx.PutDoc(fleet.DocProvision, "p3", doc{"p3", "c"}); err != nil {
			return err
		}
		return errRolledBack
	}); !errors.Is(err, errRolledBack) {
		t.Fatalf("a failed update: %v", err)
	}
	must("read", s.View(func(tx fleet.Docs) error {
		var d doc
		if found, err := tx.Doc(fleet.DocProvision, "p1", &d); !found || err != nil || d.Note != "a2" {
			return fmt.Errorf("p1: %+v %v %v", d, found, err)
		}
		if found, err := tx.Doc(fleet.DocProvision, "p3", &d); found || err != nil {
			return fmt.Errorf("p3 of a failed update is there: %v %v", found, err)
		}
		all, err := tx.Docs(fleet.DocProvision)
		if err != nil || len(all) != 2 || !strings.Contains(string(all[0]), `"p1"`) || !strings.Contains(string(all[1]), `"p2"`) {
			return fmt.Errorf("docs by id: %s %v", all, err)
		}
		other, err := tx.Docs(fleet.DocCredential)
		if err != nil || len(other) != 1 || !strings.Contains(string(other[0]), "other kind") {
			return fmt.Errorf("another kind: %s %v", other, err)
		}
		return nil
	}))
}

// Mem is an in-memory document store: an Update that fails leaves it as
// it was.
type Mem struct {
	mu   sync.Mutex
	docs map[string]map[string]json.RawMessage // kind → id → document
}

// NewMem makes an empty Mem.
func NewMem() *Mem { return &Mem{docs: map[string]map[string]json.RawMessage{}} }

func (m *Mem) View(fn func(fleet.Docs) error) error { return m.run(fn, false) }

func (m *Mem) Update(fn func(fleet.Docs) error) error { return m.run(fn, true) }

func (m *Mem) run(fn func(fleet.Docs) error, write bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	tx := memTx{}
	for kind, docs := range m.docs {
		tx[kind] = maps.Clone(docs)
	}
	if err := fn(tx); err != nil || !write {
		return err
	}
	m.docs = tx
	return nil
}

type memTx map[string]map[string]json.RawMessage

func (t memTx) PutDoc(kind, id string, doc any) error {
	raw, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	if t[kind] == nil {
		t[kind] = map[string]json.RawMessage{}
	}
	t[kind][id] = raw
	return nil
}

func (t memTx) Doc(kind, id string, into any) (bool, error) {
	raw, ok := t[kind][id]
	if !ok {
		return false, nil
	}
	return true, json.Unmarshal(raw, into)
}

func (t memTx) Docs(kind string) ([]json.RawMessage, error) {
	ids := slices.Sorted(maps.Keys(t[kind]))
	out := make([]json.RawMessage, 0, len(ids))
	for _, id := range ids {
		out = append(out, t[kind][id])
	}
	return out, nil
}
