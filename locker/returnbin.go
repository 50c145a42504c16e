package locker

// Emptying the return bin: staff open the bin's service door (or empty a
// bin without one); its closing records what was collected.

import "context"

// ReturnBinID names the return bin's service door where a compartment id
// is expected (door events of the bin's staff door).
const ReturnBinID = "return_bin"

// BinState is the return bin for the staff view: how many items lie in
// it now, and what the last emptying collected.
type BinState struct {
	Count       int               `json:"count"`
	LastEmptied *ReturnBinEmptied `json:"last_emptied,omitempty"`
}

// Bin reads the return bin's state.
func (l *Locker) Bin() (BinState, error) {
	var st BinState
	err := l.store.View(func(tx Tx) error {
		var err error
		_, st.Count, err = tx.BinItems()
		return err
	})
	l.mu.Lock()
	st.LastEmptied = l.lastEmptied
	l.mu.Unlock()
	return st, err
}

// emptyBin starts an emptying for the badge named by: the service door is
// pulsed and its closing records return_bin.emptied. A bin without a
// service lock (a keyed door), or a service door without a sensor, is
// taken as emptied at once.
func (l *Locker) emptyBin(ctx context.Context, by string) ScanResult {
	r := l.set.Return
	if r == nil {
		return ScanResult{Outcome: OutcomeNothing, Reason: "no return slot"}
	}
	if r.ServiceLock == "" {
		return l.recordEmptiedNow(by)
	}
	l.mu.Lock()
	l.emptyingBy = by
	l.mu.Unlock()
	opened, jammed, err := l.openFor(ctx, doorJob{ids: []string{ReturnBinID}, op: OpNone})
	switch {
	case err != nil && len(opened)+len(jammed) == 0:
		l.clearEmptying()
		return ScanResult{Outcome: OutcomeError, Reason: "store"}
	case len(opened) == 0:
		l.clearEmptying()
		return ScanResult{Outcome: OutcomeJammed, Compartments: []string{ReturnBinID}}
	case r.ServiceSensor == "":
		return l.recordEmptiedNow(by)
	}
	l.log.Info("return bin open for emptying", "by", by)
	return ScanResult{Outcome: OutcomeBinOpen, Compartments: []string{ReturnBinID}}
}

func (l *Locker) clearEmptying() {
	l.mu.Lock()
	l.emptyingBy = ""
	l.mu.Unlock()
}

func (l *Locker) recordEmptiedNow(by string) ScanResult {
	var ev ReturnBinEmptied
	if err := l.update(func(tx Tx) error {
		var err error
		ev, err = l.recordEmptied(tx, by)
		return err
	}); err != nil {
		l.log.Error("return bin emptying not recorded", "err", err)
		return ScanResult{Outcome: OutcomeError, Reason: "store"}
	}
	return ScanResult{Outcome: OutcomeBinEmptied, Reason: binReason(ev)}
}

func binReason(ev ReturnBinEmptied) string {
	if ev.StillFull {
		return "still full"
	}
	return ""
}

// binDoorClosed completes, in tx, an emptying whose service door closed.
func (l *Locker) binDoorClosed(tx Tx) error {
	l.mu.Lock()
	by := l.emptyingBy
	l.mu.Unlock()
	if by == "" {
		return nil // opened by a technician, or forced: nothing emptied
	}
	_, err := l.recordEmptied(tx, by)
	return err
}

// recordEmptied records return_bin.emptied with the items returned since
// the last emptying, and starts the count again. The bin-full state
// clears, unless its sensor still reads full: then the alarm stands (a
// return_bin.full), and returns stay refused.
func (l *Locker) recordEmptied(tx Tx, by string) (ReturnBinEmptied, error) {
	items, total, err := tx.BinItems()
	if err != nil {
		return ReturnBinEmptied{}, err
	}
	stillFull := false
	if r := l.set.Return; r.BinFullSensor != "" {
		full, err := l.hw.Read(r.BinFullSensor)
		stillFull = full || err != nil
	}
	if items == nil {
		items = []string{}
	}
	ev := ReturnBinEmptied{By: by, Count: total, Items: items, StillFull: stillFull}
	if err := tx.ClearBinItems(); err != nil {
		return ev, err
	}
	if err := l.record(tx, ev); err != nil {
		return ev, err
	}
	if stillFull {
		if err := l.record(tx, ReturnBinFull{Source: "after_emptying"}); err != nil {
			return ev, err
		}
	}
	tx.AfterCommit(func() {
		l.mu.Lock()
		l.emptyingBy = ""
		l.lastEmptied = &ev
		l.binFull = stillFull
		l.binReported = stillFull
		l.mu.Unlock()
		l.log.Info("return bin emptied", "by", by, "items", total, "still_full", stillFull)
		l.notify(Notice{Type: NoticeBinEmptied, Data: map[string]any{"count": total, "still_full": stillFull}})
	})
	return ev, nil
}
