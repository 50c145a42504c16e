package alarm_test

import (
	"strings"
	"testing"
	"time"

	"github.com/lockerd/lockerd/sync/hub/alarm"
	"github.com/lockerd/lockerd/sync/hub/alarm/alarmtest"
)

func TestMemStore(t *testing.T) { alarmtest.TestStore(t, &alarmtest.Mem{}) }

// One condition is one alarm: raised again while unresolved, it is
// updated (count, last seen, detail), and only the first raise is new;
// cleared, the next raise is a new alarm. Ack and resolve change only an
// unresolved alarm.
func TestRaiseClearAckResolve(t *testing.T) {
	s := &alarmtest.Mem{}
	t0 := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	raise := func(detail string, at time.Time) (alarm.Alarm, bool) {
		t.Helper()
		var a alarm.Alarm
		var isNew bool
		if err := s.Update(func(tx alarm.Tx) (err error) {
			a, isNew, err = alarm.Raise(tx, alarm.Alarm{Locker: "L1", Type: alarm.DoorForced, Compartment: "A01", Detail: detail}, at)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return a, isNew
	}
	a, isNew := raise("first", t0)
	if !isNew || a.Seq != 1 || a.Severity != alarm.Critical || a.State != alarm.Open || a.Count != 1 {
		t.Fatalf("first raise: %+v %v", a, isNew)
	}
	a, isNew = raise(strings.Repeat("x", 2000), t0.Add(time.Minute))
	if isNew || a.Seq != 1 || a.Count != 2 || !a.LastSeen.Equal(t0.Add(time.Minute)) || len(a.Detail) > 1010 {
		t.Fatalf("raised again: %+v %v", a, isNew)
	}
	if a, err := alarm.Ack(s, 1, "ops", t0); err != nil || a.State != alarm.Acknowledged || a.AckBy != "ops" {
		t.Fatalf("ack: %+v %v", a, err)
	}
	if a, err := alarm.Resolve(s, 1, "ops", "door fixed", t0); err != nil || a.State != alarm.Resolved || a.Note != "door fixed" {
		t.Fatalf("resolve: %+v %v", a, err)
	}
	if _, err := alarm.Resolve(s, 1, "ops", "again", t0); err == nil {
		t.Fatal("a resolved alarm resolved again")
	}
	if a, isNew := raise("again", t0.Add(time.Hour)); !isNew || a.Seq != 2 {
		t.Fatalf("after resolve: %+v %v", a, isNew)
	}
	if err := s.Update(func(tx alarm.Tx) error { return alarm.Clear(tx, "L1", alarm.DoorForced, "A01", "closed", t0) }); err != nil {
		t.Fatal(err)
	}
	s.View(func(tx alarm.Tx) error {
		if alarm.IsOpen(tx, "L1", alarm.DoorForced) {
			t.Error("cleared, still open")
		}
		return nil
	})
	if alarm.SeverityOf(alarm.DoorJammed) != alarm.Warning || alarm.SeverityOf(alarm.ILSUnavailable) != alarm.Critical {
		t.Error("severities")
	}
}

func TestThrottle(t *testing.T) {
	var th alarm.Throttle
	th.PerHour, th.MaxKeys = 3, 100
	now := time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC)
	steps := []struct {
		key   string
		after time.Duration
		due   bool
	}{
		{"a", 0, true},
		{"a", time.Minute, false}, // once per key
		{"b", 0, true},
		{"c", 0, true},
		{"d", 0, false}, // three an hour
		{"e", time.Hour, true},
		{"d", 0, false}, // d was seen, though not alarmed
	}
	for i, s := range steps {
		now = now.Add(s.after)
		if got := th.Due(s.key, now); got != s.due {
			t.Fatalf("step %d (%s): due %v, want %v", i, s.key, got, s.due)
		}
	}
}
