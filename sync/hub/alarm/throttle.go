package alarm

import (
	"cmp"
	"sync"
	"time"
)

// Throttle decides when a condition heard again and again (a message
// from a locker nobody serves) is alarmed: once per key, and at most
// PerHour times an hour, so that made-up keys cannot flood the alarms.
// It remembers up to MaxKeys keys, then starts afresh. The zero value
// takes 1,000 keys and 20 alarms an hour.
type Throttle struct {
	MaxKeys, PerHour int

	mu     sync.Mutex
	seen   map[string]bool
	window time.Time
	alarms int
}

// Due reports whether an alarm is due for key now.
func (t *Throttle) Due(key string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	maxKeys, perHour := cmp.Or(t.MaxKeys, 1000), cmp.Or(t.PerHour, 20)
	if t.seen == nil || len(t.seen) >= maxKeys {
		t.seen = map[string]bool{}
	}
	if t.seen[key] {
		return false
	}
	t.seen[key] = true
	if now.Sub(t.window) >= time.Hour {
		t.window, t.alarms = now, 0
	}
	if t.alarms >= perHour {
		return false
	}
	t.alarms++
	return true
}
