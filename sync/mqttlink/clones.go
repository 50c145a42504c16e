package mqttlink

import (
	"sync"
	"time"
)

// cloneWatch tells another cabinet using this locker's id from this
// cabinet's own previous run. Both publish online births on the locker's
// status topic with an instance id of their own. A previous run's birth
// is seen at most once (the retained one, at the first connect; this
// run's own birth replaces it). Two cabinets with one client id take each
// other's MQTT session in turns, and each sees the other's births again
// and again: a birth from the same foreign instance seen twice within
// cloneWindow is a conflict. Reported at most once per cloneReport.
type cloneWatch struct {
	mu       sync.Mutex
	seen     map[string][]time.Time // foreign instance → births seen
	losses   []time.Time            // connection losses (session takeovers among them)
	reported time.Time
}

const (
	cloneWindow = 10 * time.Minute
	cloneReport = time.Hour
	maxForeign  = 16 // instances remembered
)

func recent(ts []time.Time, now time.Time) []time.Time {
	keep := ts[:0]
	for _, t := range ts {
		if now.Sub(t) < cloneWindow {
			keep = append(keep, t)
		}
	}
	return keep
}

// lost notes a lost connection.
func (w *cloneWatch) lost(now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.losses = append(recent(w.losses, now), now)
}

// foreign notes a birth of another instance; conflict is true when it is
// to be reported now, with how many births of it and connection losses
// were seen within the window.
func (w *cloneWatch) foreign(instance string, now time.Time) (conflict bool, births, losses int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.seen == nil {
		w.seen = map[string][]time.Time{}
	}
	if _, known := w.seen[instance]; !known && len(w.seen) >= maxForeign {
		for k := range w.seen {
			delete(w.seen, k)
			break
		}
	}
	w.seen[instance] = append(recent(w.seen[instance], now), now)
	w.losses = recent(w.losses, now)
	births, losses = len(w.seen[instance]), len(w.losses)
	if births < 2 || !w.reported.IsZero() && now.Sub(w.reported) < cloneReport {
		return false, births, losses
	}
	w.reported = now
	return true, births, losses
}
