package locker

import (
	"sync"
	"time"
)

// LockoutPolicy bounds how fast codes can be guessed at one input device.
type LockoutPolicy struct {
	MaxFailed  int           // failures within Window that start a lockout
	Window     time.Duration // sliding window failures are counted in
	Lockout    time.Duration // first lockout
	LockoutMax time.Duration // lockouts double on repeat up to this
}

// lockoutState is one device's failure history.
type lockoutState struct {
	failures    []time.Time
	until       time.Time     // locked out until
	last        time.Duration // length of the last lockout, for doubling
	lastEndedAt time.Time
}

// LockoutState is one device's lockout as the store keeps it: a power
// cycle must not reset a lockout (nor the failures counting towards one).
type LockoutState struct {
	Failures    []time.Time   `json:"failures,omitempty"`
	Until       time.Time     `json:"until,omitzero"`
	Last        time.Duration `json:"last,omitempty"`
	LastEndedAt time.Time     `json:"last_ended_at,omitzero"`
}

// State returns device's lockout state, for the store.
func (l *Lockouts) State(device string) LockoutState {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.by[device]
	if st == nil {
		return LockoutState{}
	}
	return LockoutState{Failures: append([]time.Time(nil), st.failures...), Until: st.until, Last: st.last, LastEndedAt: st.lastEndedAt}
}

// Restore takes device's state back from the store at now. A lockout
// whose end lies further ahead than the longest lockout (a clock that was
// wrong when it was recorded) is cut to that; failures outside the window
// are dropped.
func (l *Lockouts) Restore(device string, s LockoutState, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := &lockoutState{until: s.Until, last: s.Last, lastEndedAt: s.LastEndedAt}
	if limit := now.Add(l.policy.LockoutMax); st.until.After(limit) {
		st.until = limit
	}
	for _, t := range s.Failures {
		if d := now.Sub(t); d >= 0 && d < l.policy.Window {
			st.failures = append(st.failures, t)
		}
	}
	l.by[device] = st
}

// Lockouts tracks failed-code attempts per input device (scanner or
// keypad). It is safe for concurrent use.
type Lockouts struct {
	policy LockoutPolicy
	mu     sync.Mutex
	by     map[string]*lockoutState
}

// NewLockouts returns a tracker applying p.
func NewLockouts(p LockoutPolicy) *Lockouts {
	return &Lockouts{policy: p, by: make(map[string]*lockoutState)}
}

// LockedUntil returns the end of device's lockout if it is locked out at now.
func (l *Lockouts) LockedUntil(device string, now time.Time) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.by[device]
	if st == nil || !now.Before(st.until) {
		return time.Time{}, false
	}
	return st.until, true
}

// Fail records a failed attempt on device at now. It returns the end of a
// lockout that this failure started, if it started one.
func (l *Lockouts) Fail(device string, now time.Time) (until time.Time, started bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.by[device]
	if st == nil {
		st = &lockoutState{}
		l.by[device] = st
	}
	// Drop failures outside the window.
	keep := st.failures[:0]
	for _, t := range st.failures {
		if now.Sub(t) < l.policy.Window {
			keep = append(keep, t)
		}
	}
	st.failures = append(keep, now)
	if len(st.failures) < l.policy.MaxFailed {
		return time.Time{}, false
	}
	// Doubling continues while lockouts follow one another; a quiet spell
	// as long as the longest lockout forgets the history.
	d := l.policy.Lockout
	if st.last > 0 && now.Sub(st.lastEndedAt) < l.policy.LockoutMax {
		d = min(st.last*2, l.policy.LockoutMax)
	}
	st.last = d
	st.until = now.Add(d)
	st.lastEndedAt = st.until
	st.failures = st.failures[:0]
	return st.until, true
}
