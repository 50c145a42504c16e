package locker

import (
	"context"
	"time"
)

// CounterReturns counts return flap openings.
const CounterReturns = "returns"

// Reasons of return.refused.
const (
	RefusePattern = "pattern"
	RefuseBinFull = "bin_full"
)

// returnScan handles a barcode read at the return slot. The barcode is
// recorded only when accepted: a refused scan may be anything (a pickup
// code shown to the wrong scanner), so its text is never recorded.
// Refusals are aggregated and count towards the scanner's lockout (see
// refuse): a flood at the return slot neither floods the outbox nor fills
// the disk.
func (l *Locker) returnScan(ctx context.Context, dev Device, text string) ScanResult {
	r := l.set.Return
	if r == nil {
		return ScanResult{Outcome: OutcomeRefused, Reason: "no return slot"}
	}
	barcode := CleanScan(text)
	if until, locked := l.lockouts.LockedUntil(dev.Name, l.clock.Now()); locked {
		l.refuse(dev, EvReturnRefused, DenyLockedOut, until, false)
		return ScanResult{Outcome: OutcomeRefused, Reason: DenyLockedOut, Until: until}
	}
	l.mu.Lock()
	full := l.binFull
	report := full && !l.binReported
	l.binReported = l.binReported || report
	l.mu.Unlock()
	if full {
		// Refusals aggregate and count towards the lockout; the bin's
		// alarm is recorded once per full spell, not per scan.
		l.refuse(dev, EvReturnRefused, RefuseBinFull, time.Time{}, true)
		if report {
			l.recordOne(ReturnBinFull{Source: "return_refused"})
		}
		l.log.Warn("return refused", "scanner", dev.Name, "reason", RefuseBinFull)
		return ScanResult{Outcome: OutcomeRefused, Reason: RefuseBinFull}
	}
	if r.Pattern != nil && !r.Pattern.MatchString(barcode) {
		l.refuse(dev, EvReturnRefused, RefusePattern, time.Time{}, true)
		l.log.Info("return refused", "scanner", dev.Name, "reason", RefusePattern)
		return ScanResult{Outcome: OutcomeRefused, Reason: RefusePattern}
	}
	// Fail closed: the flap opens only if there is room to record the
	// return and the store takes a write now (the count of returns).
	opened, jammed, err := l.openFor(ctx, doorJob{ids: []string{ReturnSlotID}, op: OpNone,
		prepare: func(tx Tx) error {
			n, err := tx.Counter(CounterReturns)
			if err != nil {
				return err
			}
			return tx.SetCounter(CounterReturns, n+1)
		},
		// Should the flap open late after all, the return is recorded then.
		late: func(lo *lateOp) { lo.barcode, lo.scanner = barcode, dev.Name },
		finish: func(tx Tx, opened, jammed []string) error {
			if len(opened) == 0 {
				return l.record(tx, DoorJammed{Compartment: ReturnSlotID, Commanded: true})
			}
			if err := tx.AddBinItem(barcode); err != nil {
				return err
			}
			return l.record(tx, ItemReturned{Barcode: barcode, Scanner: dev.Name})
		}})
	switch {
	case len(opened)+len(jammed) == 0:
		l.log.Error("return not started: store", "err", err)
		return ScanResult{Outcome: OutcomeError, Reason: "store"}
	case err != nil:
		l.log.Error("return outcome not recorded", "err", err)
	}
	if len(opened) == 0 {
		return ScanResult{Outcome: OutcomeJammed, Compartments: []string{ReturnSlotID}}
	}
	l.log.Info("item returned", "scanner", dev.Name, "barcode", barcode)
	return ScanResult{Outcome: OutcomeReturned, Compartments: []string{ReturnSlotID}}
}
