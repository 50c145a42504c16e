package locker

import (
	"testing"
	"time"
)

func TestLockouts(t *testing.T) {
	p := LockoutPolicy{MaxFailed: 5, Window: time.Minute, Lockout: 30 * time.Second, LockoutMax: 15 * time.Minute}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	type step struct {
		at          time.Duration // since t0
		device      string
		fail        bool // else: check locked
		wantStarted time.Duration
		wantLocked  bool
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"four failures do not lock", []step{
			{at: 0, device: "a", fail: true}, {at: time.Second, device: "a", fail: true},
			{at: 2 * time.Second, device: "a", fail: true}, {at: 3 * time.Second, device: "a", fail: true},
			{at: 4 * time.Second, device: "a"},
		}},
		{"fifth failure in the window locks for 30s", []step{
			{at: 0, device: "a", fail: true}, {at: 1, device: "a", fail: true}, {at: 2, device: "a", fail: true},
			{at: 3, device: "a", fail: true}, {at: 4, device: "a", fail: true, wantStarted: 30 * time.Second},
			{at: 29 * time.Second, device: "a", wantLocked: true},
			{at: 29 * time.Second, device: "b"},
			{at: 31 * time.Second, device: "a"},
		}},
		{"failures outside the window are forgotten", []step{
			{at: 0, device: "a", fail: true}, {at: 1, device: "a", fail: true}, {at: 2, device: "a", fail: true},
			{at: 3, device: "a", fail: true}, {at: 61 * time.Second, device: "a", fail: true},
			{at: 62 * time.Second, device: "a"},
		}},
		{"repeat lockouts double up to the maximum", func() []step {
			var s []step
			at := time.Duration(0)
			want := 30 * time.Second
			for round := 0; round < 8; round++ {
				for i := 0; i < 4; i++ {
					s = append(s, step{at: at, device: "a", fail: true})
				}
				s = append(s, step{at: at, device: "a", fail: true, wantStarted: want})
				at += want
				want = min(want*2, 15*time.Minute)
			}
			return s
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewLockouts(p)
			for i, s := range tt.steps {
				now := t0.Add(s.at)
				if s.fail {
					until, started := l.Fail(s.device, now)
					if started != (s.wantStarted > 0) || (started && until.Sub(now) != s.wantStarted) {
						t.Fatalf("step %d: started=%v for %v, want %v", i, started, until.Sub(now), s.wantStarted)
					}
					continue
				}
				if _, locked := l.LockedUntil(s.device, now); locked != s.wantLocked {
					t.Fatalf("step %d: locked = %v, want %v", i, locked, s.wantLocked)
				}
			}
		})
	}
}

func TestLockoutRestore(t *testing.T) {
	p := LockoutPolicy{MaxFailed: 3, Window: time.Minute, Lockout: 30 * time.Second, LockoutMax: 15 * time.Minute}
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	a := NewLockouts(p)
	a.Fail("front", now)
	a.Fail("front", now.Add(time.Second))
	until, started := a.Fail("front", now.Add(2*time.Second))
	if !started {
		t.Fatal("no lockout")
	}
	a.Fail("keypad", now)
	b := NewLockouts(p)
	for _, dev := range []string{"front", "keypad"} {
		b.Restore(dev, a.State(dev), now.Add(5*time.Second))
	}
	if got, locked := b.LockedUntil("front", now.Add(5*time.Second)); !locked || !got.Equal(until) {
		t.Fatalf("restored lockout until %v (%v), want %v", got, locked, until)
	}
	// The keypad's failure counts on: two more start a lockout.
	b.Fail("keypad", now.Add(6*time.Second))
	if _, started := b.Fail("keypad", now.Add(7*time.Second)); !started {
		t.Fatal("restored failures were forgotten")
	}
	// A lockout recorded under a clock far ahead is cut to the longest.
	c := NewLockouts(p)
	c.Restore("front", LockoutState{Until: now.Add(100 * 24 * time.Hour)}, now)
	if got, _ := c.LockedUntil("front", now); got.After(now.Add(p.LockoutMax)) {
		t.Fatalf("lockout until %v, beyond the longest", got)
	}
}
