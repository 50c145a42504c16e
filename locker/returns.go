package locker

import "context"

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
func (l *Locker) returnScan(ctx context.Context, dev Device, text string) ScanResult {
	r := l.set.Return
	if r == nil {
		return ScanResult{Outcome: OutcomeRefused, Reason: "no return slot"}
	}
	barcode := CleanScan(text)
	l.mu.Lock()
	full := l.binFull
	l.mu.Unlock()
	if full {
		err := l.update(func(tx Tx) error {
			if err := l.record(tx, EvReturnRefused, map[string]any{"reason": RefuseBinFull, "scanner": dev.Name}); err != nil {
				return err
			}
			return l.record(tx, EvReturnBinFull, map[string]any{"source": "return_refused"})
		})
		if err != nil {
			l.log.Error("return refusal not recorded", "err", err)
		}
		l.log.Warn("return refused", "scanner", dev.Name, "reason", RefuseBinFull)
		return ScanResult{Outcome: OutcomeRefused, Reason: RefuseBinFull}
	}
	if r.Pattern != nil && !r.Pattern.MatchString(barcode) {
		l.recordOne(EvReturnRefused, map[string]any{"reason": RefusePattern, "scanner": dev.Name})
		l.log.Info("return refused", "scanner", dev.Name, "reason", RefusePattern)
		return ScanResult{Outcome: OutcomeRefused, Reason: RefusePattern}
	}
	// Fail closed: the flap opens only if there is room to record the
	// return and the store takes a write now.
	if err := l.roomToRecord(); err != nil {
		l.log.Error("return not started: no room to record", "err", err)
		return ScanResult{Outcome: OutcomeError, Reason: "store"}
	}
	if err := l.update(func(tx Tx) error {
		n, err := tx.Counter(CounterReturns)
		if err != nil {
			return err
		}
		return tx.SetCounter(CounterReturns, n+1)
	}); err != nil {
		l.log.Error("return not started: store", "err", err)
		return ScanResult{Outcome: OutcomeError, Reason: "store"}
	}
	opened, _, _ := l.openDoors(ctx, []string{ReturnSlotID})
	if len(opened) == 0 {
		l.recordOne(EvDoorJammed, map[string]any{"compartment": ReturnSlotID, "commanded": true})
		return ScanResult{Outcome: OutcomeJammed, Compartments: []string{ReturnSlotID}}
	}
	l.recordOne(EvItemReturned, map[string]any{"barcode": barcode, "scanner": dev.Name})
	l.log.Info("item returned", "scanner", dev.Name, "barcode", barcode)
	return ScanResult{Outcome: OutcomeReturned, Compartments: []string{ReturnSlotID}}
}
