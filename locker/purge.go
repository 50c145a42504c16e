package locker

import "time"

// Ended orders are purged store.retention after they ended, so that the
// store stops growing (about 1 KB an order; the seed service did 30,000 in
// half a year). Purging runs from the run loop's tick, at most once every
// PurgeEvery, in transactions of purgeBatch orders and at most
// purgePerRun of them a run: never on the scan path, never a long stall
// of door handling. An order is purged only once the central library has
// acknowledged its last fact (unless the locker runs standalone), and only
// on a trusted clock.
const (
	PurgeEvery  = time.Minute
	purgeBatch  = 100
	purgePerRun = 1000
)

// purge removes ended orders past retention; it returns how many.
func (l *Locker) purge() int {
	if l.set.Retention <= 0 {
		return 0
	}
	now, trusted := l.expiryNow()
	if !trusted {
		return 0
	}
	cutoff := now.Add(-l.set.Retention)
	total := 0
	for total < purgePerRun {
		n, blocked := 0, false
		err := l.update(func(tx Tx) error {
			n, blocked = 0, false
			acked, err := tx.Counter(CounterAckedSeq)
			if err != nil {
				return err
			}
			due, err := tx.EndedBefore(cutoff, purgeBatch)
			if err != nil || len(due) == 0 {
				return err
			}
			for _, o := range due {
				if !l.set.Standalone && o.FactSeq > acked {
					// Facts are recorded in seq order as orders end: the
					// ones after this are not acknowledged either.
					blocked = true
					return nil
				}
				if err := tx.DeleteOrder(o.ID); err != nil {
					return err
				}
				n++
			}
			return nil
		})
		if err != nil {
			l.log.Error("purge of ended orders", "err", err)
			break
		}
		total += n
		if n < purgeBatch || blocked {
			break
		}
	}
	if total > 0 {
		l.log.Info("ended orders purged", "orders", total, "retention", l.set.Retention)
	}
	return total
}
