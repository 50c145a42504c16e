package circtest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/lockerd/lockerd/sync/hub/circulation"
)

// Store runs transactions over a queue.
type Store interface {
	View(fn func(circulation.CircTx) error) error
	Update(fn func(circulation.CircTx) error) error
}

// TestStore runs the suite on a fresh, empty store: numbered from 1 in
// the order added; a state written back is read back; the open ones
// (queued, sending, refused, exception) listed by id, with a limit; all
// after an id; a failed transaction leaves nothing behind.
func TestStore(t *testing.T, s Store) {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Millisecond)
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	must("add", s.Update(func(tx circulation.CircTx) error {
		for i, kind := range []string{circulation.CircCheckout, circulation.CircCheckin, circulation.CircPatron, circulation.CircCheckout} {
			c, err := tx.AddCirc(circulation.CircRec{Locker: "L1", Kind: kind, Item: fmt.Sprintf("B%d", i), Patron: "P1", EventAt: now,
				Queued: now, State: circulation.CircQueued})
			if err != nil || c.ID != uint64(i+1) {
				return fmt.Errorf("transaction %d numbered %d (%v)", i, c.ID, err)
			}
		}
		for id, state := range map[uint64]string{1: circulation.CircDone, 2: circulation.CircException, 3: circulation.CircResolved} {
			c, found, err := tx.Circ(id)
			if err != nil || !found {
				return fmt.Errorf("transaction %d: %v %v", id, found, err)
			}
			c.State, c.Attempts, c.Due, c.Done = state, 1, "20261220    000000", now
			if err := tx.PutCirc(c); err != nil {
				return err
			}
		}
		return nil
	}))
	must("read", s.View(func(tx circulation.CircTx) error {
		if c, _, _ := tx.Circ(1); c.State != circulation.CircDone || c.Due != "20261220    000000" || !c.Done.Equal(now) || c.Item != "B0" {
			return fmt.Errorf("transaction 1: %+v", c)
		}
		if _, found, err := tx.Circ(99); found || err != nil {
			return fmt.Errorf("transaction 99: %v %v", found, err)
		}
		open, err := tx.OpenCircs(0)
		if err != nil || len(open) != 2 || open[0].ID != 2 || open[1].ID != 4 {
			return fmt.Errorf("open: %+v %v", open, err)
		}
		if open, _ := tx.OpenCircs(1); len(open) != 1 || open[0].ID != 2 {
			return fmt.Errorf("open, at most 1: %+v", open)
		}
		all, err := tx.Circs(1, 2)
		if err != nil || len(all) != 2 || all[0].ID != 2 || all[1].ID != 3 || all[1].State != circulation.CircResolved {
			return fmt.Errorf("after 1, two: %+v %v", all, err)
		}
		if all, _ := tx.Circs(0, 0); len(all) != 4 {
			return fmt.Errorf("all: %d", len(all))
		}
		return nil
	}))
	abort := errors.New("abort")
	if err := s.Update(func(tx circulation.CircTx) error {
		if _, err := tx.AddCirc(circulation.CircRec{Locker: "L1", Kind: circulation.CircCheckin, State: circulation.CircQueued}); err != nil {
			return err
		}
		return abort
	}); !errors.Is(err, abort) {
		t.Fatalf("an aborted transaction: %v", err)
	}
	must("after the abort", s.View(func(tx circulation.CircTx) error {
		if all, _ := tx.Circs(0, 0); len(all) != 4 {
			return fmt.Errorf("%d transactions after an aborted add", len(all))
		}
		if open, _ := tx.OpenCircs(0); len(open) != 2 {
			return fmt.Errorf("%d open after an aborted add", len(open))
		}
		return nil
	}))
}
