package hub

import (
	"fmt"
	"math"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/lockerd/lockerd/sync/protocol"
)

// A hub store from before served lockers existed keeps serving the
// lockers it holds.
func TestAdoptLockersOnUpgrade(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hub.db")
	s, err := openBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		if err := (boltTx{tx}).PutLocker(LockerInfo{ID: "old-1"}); err != nil {
			return err
		}
		return tx.Bucket(bKnown).Delete([]byte("old-1")) // as before the bucket existed
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = openBolt(path); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.View(func(tx Tx) error {
		if ok, _ := tx.Known("old-1"); !ok {
			t.Fatal("a locker of the old store is not served after the upgrade")
		}
		return nil
	})
}

// TestStore is what any Store must do (the bbolt one here; another
// engine runs the same cases).
func TestStore(t *testing.T) {
	s, err := openBolt(filepath.Join(t.TempDir(), "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	testStore(t, s)
}

func testStore(t *testing.T, s Store) {
	t.Helper()
	update := func(what string, fn func(Tx) error) {
		t.Helper()
		if err := s.Update(fn); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	now := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	update("lockers", func(tx Tx) error {
		li, err := tx.Locker("L1")
		if err != nil || li.ID != "L1" || li.Online {
			return fmt.Errorf("a locker not heard from: %+v %v", li, err)
		}
		li.Online, li.Boot = true, 3
		if err := tx.PutLocker(li); err != nil {
			return err
		}
		all, err := tx.Lockers()
		if err != nil || len(all) != 1 || all[0].Boot != 3 {
			return fmt.Errorf("lockers %+v %v", all, err)
		}
		if ok, _ := tx.Known("L1"); ok {
			return fmt.Errorf("L1 known before it was added")
		}
		if err := tx.PutKnown(KnownLocker{ID: "L1", Added: now, Source: "test"}); err != nil {
			return err
		}
		known, err := tx.KnownLockers()
		if ok, _ := tx.Known("L1"); !ok || err != nil || len(known) != 1 || known[0].Source != "test" {
			return fmt.Errorf("known %+v %v", known, err)
		}
		return nil
	})
	update("stores and events", func(tx Tx) error {
		if _, found, err := tx.StoreRec("L1", "s1"); found || err != nil {
			return fmt.Errorf("a store not met: %v %v", found, err)
		}
		for _, rec := range []StoreRec{{Store: "s1", Epoch: 1, Acked: 2}, {Store: "s2", Epoch: 2}} {
			if err := tx.PutStoreRec("L1", rec); err != nil {
				return err
			}
		}
		if rec, found, err := tx.StoreRec("L1", "s1"); !found || err != nil || rec.Acked != 2 {
			return fmt.Errorf("store s1: %+v %v %v", rec, found, err)
		}
		// Epoch 2 written first: events come back by epoch, then seq.
		for _, ev := range []struct {
			epoch uint32
			seq   uint64
		}{{2, 1}, {1, 2}, {1, 1}, {2, 2}, {1, 10}} {
			e := protocol.Event{ID: fmt.Sprintf("L1-%d-%d", ev.epoch, ev.seq), Seq: ev.seq, Type: "door.closed", Locker: "L1"}
			if err := tx.PutEvent("L1", ev.epoch, e); err != nil {
				return err
			}
		}
		if err := tx.PutEvent("L2", 1, protocol.Event{Seq: 1, Locker: "L2"}); err != nil {
			return err
		}
		if ok, _ := tx.HasEvent("L1", 1, 2); !ok {
			return fmt.Errorf("event 1/2 not there")
		}
		if ok, _ := tx.HasEvent("L1", 1, 3); ok {
			return fmt.Errorf("event 1/3 there")
		}
		if e, found, _ := tx.Event("L1", 2, 2); !found || e.ID != "L1-2-2" {
			return fmt.Errorf("event 2/2: %+v", e)
		}
		for _, tc := range []struct {
			after Cursor
			limit int
			want  []string
		}{
			{Cursor{}, 0, []string{"L1-1-1", "L1-1-2", "L1-1-10", "L1-2-1", "L1-2-2"}},
			{Cursor{Epoch: 1, Seq: 2}, 2, []string{"L1-1-10", "L1-2-1"}},
			{Cursor{Epoch: 1, Seq: math.MaxUint64}, 0, []string{"L1-2-1", "L1-2-2"}},
		} {
			evs, err := tx.Events("L1", tc.after, tc.limit)
			var got []string
			for _, e := range evs {
				got = append(got, e.ID)
			}
			if err != nil || fmt.Sprint(got) != fmt.Sprint(tc.want) {
				return fmt.Errorf("events after %+v: %v, want %v (%v)", tc.after, got, tc.want, err)
			}
		}
		return nil
	})
	update("orders, revs, pending", func(tx Tx) error {
		for i, want := range []uint64{1, 2, 3} {
			if rev, err := tx.NextRev("L1"); err != nil || rev != want {
				return fmt.Errorf("rev %d: %d %v", i, rev, err)
			}
		}
		if rev, _ := tx.NextRev("L2"); rev != 1 {
			return fmt.Errorf("L2's first rev %d: revs are per locker", rev)
		}
		for _, o := range []OrderRec{{Order: protocol.Order{ID: "B", Rev: 3}, Locker: "L1"}, {Order: protocol.Order{ID: "A", Rev: 2}, Locker: "L1"}, {Order: protocol.Order{ID: "C", Rev: 1}, Locker: "L2"}} {
			if err := tx.PutOrder(o); err != nil {
				return err
			}
		}
		orders, err := tx.Orders("L1")
		if err != nil || len(orders) != 2 || orders[0].ID != "A" || orders[1].ID != "B" {
			return fmt.Errorf("orders by rev: %+v %v", orders, err)
		}
		if o, found, _ := tx.Order("L1", "B"); !found || o.Rev != 3 {
			return fmt.Errorf("order B: %+v", o)
		}
		if _, found, _ := tx.Order("L1", "C"); found {
			return fmt.Errorf("L2's order found under L1")
		}
		for rev := uint64(1); rev <= 3; rev++ {
			for part := 1; part <= 2; part++ {
				if err := tx.PutPending("L1", rev, part, PendingMsg{Topic: fmt.Sprintf("r%d-p%d", rev, part)}); err != nil {
					return err
				}
			}
		}
		rest, err := tx.PrunePending("L1", 2)
		if err != nil || len(rest) != 2 || rest[0].Topic != "r3-p1" || rest[1].Topic != "r3-p2" {
			return fmt.Errorf("pending after rev 2: %+v %v", rest, err)
		}
		if rest, _ := tx.PrunePending("L1", 0); len(rest) != 2 {
			return fmt.Errorf("pruned twice: %+v", rest)
		}
		return nil
	})
	update("commands and alarms", func(tx Tx) error {
		if _, found, _ := tx.Command("c1"); found {
			return fmt.Errorf("a command never sent found")
		}
		if err := tx.PutCommand(CmdRec{ID: "c1", Locker: "L1", Type: "cmd.ping", Sent: now}); err != nil {
			return err
		}
		if rec, found, _ := tx.Command("c1"); !found || rec.Type != "cmd.ping" {
			return fmt.Errorf("command %+v", rec)
		}
		for i := range 3 {
			a, err := tx.AddAlarm(Alarm{Locker: "L1", Type: "test", Detail: fmt.Sprint(i)})
			if err != nil || a.Seq != uint64(i+1) {
				return fmt.Errorf("alarm %d numbered %d (%v)", i, a.Seq, err)
			}
		}
		alarms, err := tx.Alarms(1)
		if err != nil || len(alarms) != 2 || alarms[0].Detail != "1" {
			return fmt.Errorf("alarms after 1: %+v %v", alarms, err)
		}
		return nil
	})
	// A failed transaction leaves nothing behind.
	if err := s.Update(func(tx Tx) error {
		if err := tx.PutOrder(OrderRec{Order: protocol.Order{ID: "ROLLED", Rev: 9}, Locker: "L1"}); err != nil {
			return err
		}
		return fmt.Errorf("abort")
	}); err == nil {
		t.Fatal("an aborted transaction reported no error")
	}
	s.View(func(tx Tx) error {
		if _, found, _ := tx.Order("L1", "ROLLED"); found {
			t.Fatal("an aborted transaction's order is there")
		}
		return nil
	})
}
