package linkstore

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/lockerd/lockerd/sync/mqttlink"
)

func open(t *testing.T, path string) (*Store, *bolt.DB) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(db)
	if err != nil {
		t.Fatal(err)
	}
	return s, db
}

// Staged parts and claimed commands survive a reopen; a delayed part of
// an older snapshot never replaces a newer one being staged; a newer one
// starts afresh.
func TestStagingAndClaimsAreDurable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lockerd.db")
	s, db := open(t, path)
	now := time.Unix(1000, 0)
	b := mqttlink.Staged{SnapID: "B", Rev: 7}
	if _, kept, n, err := s.StagePart(b, 2, []byte("b2"), now); err != nil || !kept || n != 1 {
		t.Fatalf("stage B/2: kept %v n %d %v", kept, n, err)
	}
	staged, kept, _, err := s.StagePart(mqttlink.Staged{SnapID: "A", Rev: 5}, 1, []byte("a1"), now)
	if err != nil || kept || staged != b {
		t.Fatalf("an older snapshot's part: kept %v, staged %+v, %v", kept, staged, err)
	}
	if dup, err := s.ClaimCommand("cmd-1", now); dup || err != nil {
		t.Fatalf("first claim: dup %v %v", dup, err)
	}
	db.Close()

	s, db = open(t, path)
	defer db.Close()
	if _, _, n, err := s.StagePart(b, 1, []byte("b1"), now.Add(time.Minute)); err != nil || n != 2 {
		t.Fatalf("after reopen: %d parts staged, %v", n, err)
	}
	if raw, _ := s.StagedPart("B", 2); string(raw) != "b2" {
		t.Fatalf("part 2 after reopen: %q", raw)
	}
	if at, _ := s.StagedStarted(); !at.Equal(now) {
		t.Fatalf("started %v, want the first part's time %v", at, now)
	}
	if dup, _ := s.ClaimCommand("cmd-1", now); !dup {
		t.Fatal("a command claimed before the reopen claimed again")
	}
	c := mqttlink.Staged{SnapID: "C", Rev: 9}
	if _, kept, n, _ := s.StagePart(c, 1, []byte("c1"), now); !kept || n != 1 {
		t.Fatalf("a newer snapshot: kept %v with %d parts", kept, n)
	}
	if raw, _ := s.StagedPart("B", 1); raw != nil {
		t.Fatal("the older snapshot's parts outlived a newer one")
	}
	if err := s.ClearStaged(); err != nil {
		t.Fatal(err)
	}
	if at, _ := s.StagedStarted(); !at.IsZero() {
		t.Fatal("staged after ClearStaged")
	}
}

// The command memory is bounded: the oldest ids are forgotten first.
func TestCommandMemoryBounded(t *testing.T) {
	s, db := open(t, filepath.Join(t.TempDir(), "lockerd.db"))
	defer db.Close()
	for i := range MaxCommands + 10 {
		if _, err := s.ClaimCommand(fmt.Sprintf("cmd-%d", i), time.Unix(int64(i), 0)); err != nil {
			t.Fatal(err)
		}
	}
	err := db.View(func(tx *bolt.Tx) error {
		if n := tx.Bucket(bCmdIDs).Stats().KeyN; n != MaxCommands {
			return fmt.Errorf("%d ids kept, want %d", n, MaxCommands)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if dup, _ := s.ClaimCommand("cmd-0", time.Now()); dup {
		t.Fatal("the oldest id is still remembered")
	}
	if dup, _ := s.ClaimCommand(fmt.Sprintf("cmd-%d", MaxCommands+9), time.Now()); !dup {
		t.Fatal("the newest id is forgotten")
	}
}
