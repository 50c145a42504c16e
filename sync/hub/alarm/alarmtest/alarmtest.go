package alarmtest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lockerd/lockerd/sync/hub/alarm"
)

// TestStore runs the suite on a fresh, empty store.
func TestStore(t *testing.T, s alarm.Store) {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Millisecond)
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	must("add", s.Update(func(tx alarm.Tx) error {
		for i, typ := range []string{alarm.DoorJammed, alarm.DoorForced, alarm.DoorJammed} {
			a, err := tx.AddAlarm(alarm.Alarm{Locker: "L1", Type: typ, Compartment: "A01", Detail: fmt.Sprint(i), At: now, State: alarm.Open})
			if err != nil || a.Seq != uint64(i+1) {
				return fmt.Errorf("alarm %d numbered %d (%v)", i, a.Seq, err)
			}
		}
		// The first jam resolved: the latest unresolved one of the key is
		// the third.
		first, _ := tx.Alarms(0)
		first[0].State, first[0].ResolvedAt = alarm.Resolved, now
		return tx.PutAlarm(first[0])
	}))
	must("read", s.View(func(tx alarm.Tx) error {
		all, err := tx.Alarms(1)
		if err != nil || len(all) != 2 || all[0].Seq != 2 || all[1].Detail != "2" {
			return fmt.Errorf("alarms after 1: %+v %v", all, err)
		}
		key := alarm.Alarm{Locker: "L1", Type: alarm.DoorJammed, Compartment: "A01"}.Key()
		a, found, err := tx.OpenAlarm(key)
		if err != nil || !found || a.Seq != 3 {
			return fmt.Errorf("open alarm of the key: %+v %v %v", a, found, err)
		}
		if _, found, _ := tx.OpenAlarm(alarm.Alarm{Locker: "L2", Type: alarm.DoorJammed}.Key()); found {
			return errors.New("an alarm found for another locker")
		}
		open, err := tx.OpenAlarms()
		if err != nil || len(open) != 2 || open[0].Seq != 2 || open[1].Seq != 3 {
			return fmt.Errorf("unresolved alarms: %+v %v", open, err)
		}
		if every, _ := tx.Alarms(0); len(every) != 3 || every[0].State != alarm.Resolved || !every[0].ResolvedAt.Equal(now) {
			return fmt.Errorf("the resolved alarm: %+v", every)
		}
		return nil
	}))
	// Resolving the open one of a key: none left open for it.
	must("resolve", s.Update(func(tx alarm.Tx) error {
		return alarm.Clear(tx, "L1", alarm.DoorJammed, "A01", "test", now)
	}))
	must("after resolve", s.View(func(tx alarm.Tx) error {
		if _, found, _ := tx.OpenAlarm(alarm.Alarm{Locker: "L1", Type: alarm.DoorJammed, Compartment: "A01"}.Key()); found {
			return errors.New("a resolved alarm still open by key")
		}
		if open, _ := tx.OpenAlarms(); len(open) != 1 {
			return fmt.Errorf("unresolved: %+v", open)
		}
		return nil
	}))
	abort := errors.New("abort")
	if err := s.Update(func(tx alarm.Tx) error {
		if _, err := tx.AddAlarm(alarm.Alarm{Locker: "L9", Type: alarm.Offline, State: alarm.Open}); err != nil {
			return err
		}
		return abort
	}); !errors.Is(err, abort) {
		t.Fatalf("an aborted transaction: %v", err)
	}
	must("after the abort", s.View(func(tx alarm.Tx) error {
		if all, _ := tx.Alarms(0); len(all) != 3 {
			return fmt.Errorf("%d alarms after an aborted add", len(all))
		}
		return nil
	}))
}

// Mem is an in-memory alarm store: transactions are serialised, and an
// Update that fails leaves nothing behind.
type Mem struct {
	mu     sync.Mutex
	alarms []alarm.Alarm // by seq, from 1
}

var _ alarm.Store = (*Mem)(nil)

func (m *Mem) View(fn func(alarm.Tx) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return fn(&memTx{m.alarms})
}

func (m *Mem) Update(fn func(alarm.Tx) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	tx := &memTx{slices.Clone(m.alarms)}
	if err := fn(tx); err != nil {
		return err
	}
	m.alarms = tx.alarms
	return nil
}

type memTx struct{ alarms []alarm.Alarm }

func (t *memTx) AddAlarm(a alarm.Alarm) (alarm.Alarm, error) {
	a.Seq = uint64(len(t.alarms) + 1)
	t.alarms = append(t.alarms, a)
	return a, nil
}

func (t *memTx) Alarms(after uint64) ([]alarm.Alarm, error) {
	if after >= uint64(len(t.alarms)) {
		return nil, nil
	}
	return slices.Clone(t.alarms[after:]), nil
}

func (t *memTx) PutAlarm(a alarm.Alarm) error {
	if a.Seq == 0 || a.Seq > uint64(len(t.alarms)) {
		return fmt.Errorf("no alarm %d", a.Seq)
	}
	t.alarms[a.Seq-1] = a
	return nil
}

func (t *memTx) OpenAlarm(key string) (alarm.Alarm, bool, error) {
	for i := len(t.alarms) - 1; i >= 0; i-- {
		if a := t.alarms[i]; a.Key() == key && a.Unresolved() {
			return a, true, nil
		}
	}
	return alarm.Alarm{}, false, nil
}

func (t *memTx) OpenAlarms() ([]alarm.Alarm, error) {
	var out []alarm.Alarm
	for _, a := range t.alarms {
		if a.Unresolved() {
			out = append(out, a)
		}
	}
	return out, nil
}
