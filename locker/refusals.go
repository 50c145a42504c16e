package locker

import (
	"sync"
	"time"
)

// A refused scan is recorded, but a flood of them must not flood the
// outbox (nor the disk: at the disk's floor no door opens, so a flood at
// the return slot would be a denial of service). Refusals are aggregated
// per input device and kind (event type and reason): the first of a burst
// is recorded at once, the ones that follow are counted and recorded as
// one event with their count at most every RefusalEvery, and when the
// burst ends (RefusalQuiet without one). Repeated refusals of any kind
// also count towards the device's lockout, so a device that keeps being
// refused is soon only refused "locked out" — itself aggregated.

// Refusal aggregation.
const (
	RefusalQuiet = time.Minute      // a burst ends after this long without a refusal of its kind
	RefusalEvery = 15 * time.Minute // during a burst, at most one event this often
)

type refusalKey struct {
	device string
	typ    EventType
	reason string
}

type refusalBurst struct {
	last, recordedAt time.Time
	pending          int // refusals since the last event
}

type refusalLog struct {
	mu sync.Mutex
	by map[refusalKey]*refusalBurst
}

// note counts one refusal at now; it returns how many to record now (0:
// none; 1 with first set: the first of a burst; n: an aggregate).
func (r *refusalLog) note(k refusalKey, now time.Time) (n int, first bool, since time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.by == nil {
		r.by = map[refusalKey]*refusalBurst{}
	}
	b := r.by[k]
	if b == nil || now.Sub(b.last) >= RefusalQuiet || now.Before(b.last) {
		if b != nil && b.pending > 0 {
			// An old burst that Tick has not flushed yet: start afresh;
			// the flush is folded into the new burst's first event.
			n = b.pending
		}
		r.by[k] = &refusalBurst{last: now, recordedAt: now}
		return n + 1, true, now
	}
	b.last = now
	b.pending++
	if now.Sub(b.recordedAt) < RefusalEvery {
		return 0, false, time.Time{}
	}
	n, since = b.pending, b.recordedAt
	b.pending, b.recordedAt = 0, now
	return n, false, since
}

// ended returns the bursts over at now with refusals not yet recorded, and
// forgets every burst that is over.
func (r *refusalLog) ended(now time.Time) map[refusalKey]refusalBurst {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out map[refusalKey]refusalBurst
	for k, b := range r.by {
		if now.Sub(b.last) < RefusalQuiet && !now.Before(b.last) {
			continue
		}
		if b.pending > 0 {
			if out == nil {
				out = map[refusalKey]refusalBurst{}
			}
			out[k] = *b
		}
		delete(r.by, k)
	}
	return out
}

// refuse records a refusal of kind (typ, reason) by device dev (with the
// end of the lockout it was refused for, if any),
// (scanner and reason are added), aggregated as above; when lockout is
// true it also counts towards dev's lockout. It returns the end of a
// lockout this refusal started.
func (l *Locker) refuse(dev Device, typ EventType, reason string, lockedUntil time.Time, lockout bool) (until time.Time, started bool) {
	now := l.clock.Now()
	if lockout {
		until, started = l.lockouts.Fail(dev.Name, now)
	}
	n, first, since := l.refusals.note(refusalKey{dev.Name, typ, reason}, now)
	if n == 0 && !lockout {
		return until, started
	}
	err := l.update(func(tx Tx) error {
		if lockout {
			if err := tx.PutLockoutState(dev.Name, l.lockouts.State(dev.Name)); err != nil {
				return err
			}
		}
		if n > 0 {
			r := Refusal{Scanner: dev.Name, Reason: reason}
			if !lockedUntil.IsZero() {
				r.Until = lockedUntil.UTC()
			}
			if !first || n > 1 {
				r.Count, r.Since = n, since.UTC()
			}
			if err := l.record(tx, refusalEvent(typ, r)); err != nil {
				return err
			}
		}
		if started {
			return l.record(tx, LockoutStarted{Scanner: dev.Name, Until: until.UTC()})
		}
		return nil
	})
	if err != nil {
		l.log.Error("refusal not recorded", "type", typ, "reason", reason, "err", err)
	}
	return until, started
}

// flushRefusals records the refusals counted in bursts that are over.
func (l *Locker) flushRefusals(now time.Time) {
	for k, b := range l.refusals.ended(now) {
		l.recordOne(refusalEvent(k.typ, Refusal{Scanner: k.device, Reason: k.reason, Count: b.pending, Since: b.recordedAt.UTC()}))
	}
}

// refusalEvent is a refusal as the event of its kind.
func refusalEvent(typ EventType, r Refusal) EventData {
	if typ == EvReturnRefused {
		return ReturnRefused{r}
	}
	return PickupDenied{r}
}
