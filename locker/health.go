package locker

import (
	"fmt"
	"runtime/debug"
	"time"
)

// update runs fn in a store transaction and keeps track of whether the
// store can be written: a locker whose store cannot record what it does
// must not open doors (each door-opening flow writes before it pulses, so
// a failing store fails closed), and the kiosk says it is out of service.
// The first write that succeeds again clears the state.
func (l *Locker) update(fn func(Tx) error) error {
	t0 := time.Now()
	err := l.store.Update(fn)
	if d := time.Since(t0); d > slowWrite {
		l.log.Warn("slow store write", "took_ms", d.Milliseconds())
	}
	if err != nil && l.storeFailing.CompareAndSwap(false, true) {
		l.log.Error("store write failed: doors stay shut until it can be written", "err", err)
		l.notify(Notice{Type: NoticeStoreHealth, Data: map[string]any{"ok": false}})
	} else if err == nil && l.storeFailing.CompareAndSwap(true, false) {
		l.log.Info("store writable again")
		l.notify(Notice{Type: NoticeStoreHealth, Data: map[string]any{"ok": true}})
	}
	if err == nil {
		l.checkSpace(false)
	}
	return err
}

// slowWrite is a store write long enough for a pickup to notice (it
// waits for the store's single writer): logged.
const slowWrite = 100 * time.Millisecond

// StoreHealthy reports whether the store can record what the locker
// does: the last write succeeded and the space guard sees room.
func (l *Locker) StoreHealthy() bool { return !l.storeFailing.Load() && l.roomToRecord() == nil }

// SpaceLimits tell the locker how much room its store has left.
type SpaceLimits struct {
	Headroom func() (int64, error) // bytes the store can still take
	// MinFree: below it, store.low_space is recorded (once per episode),
	// while there is still room to record it.
	MinFree int64
	// Floor: below it, no door opens — one operation's records always fit
	// in it, so a door never opens for something that cannot be recorded.
	Floor int64
}

// SetSpaceLimits installs the headroom check (lockerd's is disk space and
// the file-size limit); without one, room is assumed.
// It may be replaced while the locker runs: writes and Tick read it from
// their own goroutines, so it is swapped whole.
func (l *Locker) SetSpaceLimits(s SpaceLimits) { l.space.Store(&s) }

// spaceLimits is the installed check, or the zero one (room assumed).
func (l *Locker) spaceLimits() SpaceLimits {
	if s := l.space.Load(); s != nil {
		return *s
	}
	return SpaceLimits{}
}

func (l *Locker) roomToRecord() error {
	if reason, bad := l.Faulted(); bad {
		return fmt.Errorf("faulted: %s", reason)
	}
	space := l.spaceLimits()
	if space.Headroom == nil {
		return nil
	}
	room, err := space.Headroom()
	if err == nil && room < space.Floor {
		err = fmt.Errorf("store headroom %d bytes is under the floor of %d", room, space.Floor)
	}
	return err
}

// checkSpace raises the low-space alarm; after writes it runs at most
// every 100 ms (a headroom check is a few system calls), from Tick always.
func (l *Locker) checkSpace(force bool) {
	space := l.spaceLimits()
	if space.Headroom == nil {
		return
	}
	now := time.Now().UnixNano()
	last := l.spaceChecked.Load()
	if !force && now-last < int64(100*time.Millisecond) || !l.spaceChecked.CompareAndSwap(last, now) {
		return
	}
	room, err := space.Headroom()
	switch {
	case err != nil:
		l.log.Warn("store headroom unknown", "err", err)
	case room < space.MinFree && !l.spaceLow.Load():
		l.log.Warn("store running out of space", "headroom_bytes", room, "min_free_bytes", space.MinFree)
		err := l.store.Update(func(tx Tx) error {
			return l.record(tx, StoreLowSpace{HeadroomBytes: room, MinFreeBytes: space.MinFree})
		})
		if err != nil {
			l.log.Error("low-space alarm not recorded", "err", err)
			return
		}
		l.spaceLow.Store(true)
	case room >= 2*space.MinFree && l.spaceLow.Load():
		l.spaceLow.Store(false)
		l.log.Info("store has room again", "headroom_bytes", room)
	}
}

// Fault records that something went wrong that the locker cannot heal by
// itself — a panic in a request handler, the sync path or the run loop,
// most often a damaged store read by bbolt. From then on /healthz is red
// (systemd's watchdog stops being fed, and the restart checks the store)
// and no door opens: what happens cannot be trusted to be recorded. The
// first reason is kept.
func (l *Locker) Fault(reason string) {
	if l.fault.CompareAndSwap(nil, &reason) {
		l.log.Error("locker faulted: no door opens until lockerd is restarted", "reason", reason)
		l.notify(Notice{Type: NoticeStoreHealth, Data: map[string]any{"ok": false}})
	}
}

// Faulted returns the reason of the fault, if any.
func (l *Locker) Faulted() (string, bool) {
	if r := l.fault.Load(); r != nil {
		return *r, true
	}
	return "", false
}

// Recover is deferred by the goroutines that run the locker's work
// (request handlers, the sync path, the run loop): a panic there becomes
// a fault instead of a crash or a silent half-failure.
func (l *Locker) Recover(where string) {
	if r := recover(); r != nil {
		l.Fault(fmt.Sprintf("panic in %s: %v", where, r))
		l.log.Error("panic", "where", where, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
	}
}

// Healthy reports whether the locker is doing its job: no fault, its run
// loop has ticked within maxStall and its store can be read. systemd's
// watchdog is fed only while it is.
func (l *Locker) Healthy(maxStall time.Duration) error {
	if reason, bad := l.Faulted(); bad {
		return fmt.Errorf("faulted: %s", reason)
	}
	last := l.lastTick.Load()
	if last == 0 || time.Since(time.Unix(0, last)) > maxStall {
		return fmt.Errorf("run loop has not ticked for %v", maxStall)
	}
	if err := l.store.View(func(tx Tx) error { _, err := tx.LastSeq(); return err }); err != nil {
		return fmt.Errorf("store unreadable: %w", err)
	}
	return nil
}

// Pulses counts lock pulses since start.
func (l *Locker) Pulses() uint64 { return l.doors.count.Load() }

// RecordScannerState records scanner.connected / scanner.disconnected.
func (l *Locker) RecordScannerState(name string, connected bool, detail string) {
	l.mu.Lock()
	if l.scanners == nil {
		l.scanners = map[string]bool{}
	}
	l.scanners[name] = connected
	l.mu.Unlock()
	st := ScannerState{Scanner: name, Detail: detail}
	if connected {
		l.recordOne(ScannerConnected{st})
	} else {
		l.recordOne(ScannerDisconnected{st})
	}
}

// RecordHardwareFault records hardware.fault / hardware.recovered.
func (l *Locker) RecordHardwareFault(f HardwareFault) {
	l.mu.Lock()
	if l.hardware == nil {
		l.hardware = map[string]bool{}
	}
	l.hardware[f.Device] = f.OK
	l.mu.Unlock()
	l.log.Info("hardware", "device", f.Device, "ok", f.OK, "detail", f.Detail)
	st := HardwareState{Device: f.Device, Detail: f.Detail}
	if f.OK {
		l.recordOne(HardwareRecovered{st})
	} else {
		l.recordOne(HardwareFaulted{st})
	}
}
