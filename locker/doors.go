package locker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Doors: the one way a door is opened. Every operation goes through
// openFor (marks, pulses, confirms, records) or, with nothing to mark,
// openDoors; a lock is pulsed once per operation and never held.

// doors owns the cabinet's doors: the map by compartment and by sensor
// pin, each door's live state (open, since, commanded, the late watch),
// the waiters for a door to open, and the pulse limit. Its own lock
// guards them, and is never held across I/O, a store transaction or a
// call out.
type doors struct {
	mu      sync.Mutex
	byID    map[string]*door // compartment id (and ReturnSlotID) → door
	byPin   map[string]*door // sensor pin → door
	pulses  chan struct{}    // semaphore: at most MaxConcurrentPulses energised
	pulsing sync.WaitGroup   // pulses in flight
	stopped bool             // no pulse starts any more (the locker is stopping)
	count   atomic.Uint64    // pulses ever started
}

func newDoors(maxPulses int) *doors {
	return &doors{byID: map[string]*door{}, byPin: map[string]*door{}, pulses: make(chan struct{}, maxPulses)}
}

func (ds *doors) add(id, lock, sensor string) {
	d := &door{id: id, lock: lock, sensor: sensor}
	ds.byID[id] = d
	if sensor != "" {
		ds.byPin[sensor] = d
	}
}

// get returns door id, or nil. Its id, lock and sensor never change and
// may be read without the lock.
func (ds *doors) get(id string) *door { return ds.byID[id] }

// all returns every door (fixed at New).
func (ds *doors) all() []*door {
	out := make([]*door, 0, len(ds.byID))
	for _, d := range ds.byID {
		out = append(out, d)
	}
	return out
}

// atStart sets d's state as read at start-up.
func (ds *doors) atStart(d *door, open bool, now time.Time) {
	ds.mu.Lock()
	d.open, d.since, d.lastAlarm = open, now, now
	ds.mu.Unlock()
}

// isOpen reports whether door id reads open (false for no such door).
func (ds *doors) isOpen(id string) bool {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	d := ds.byID[id]
	return d != nil && d.open
}

// openIDs are the doors that read open now.
func (ds *doors) openIDs() map[string]bool {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	open := map[string]bool{}
	for id, d := range ds.byID {
		if d.open {
			open[id] = true
		}
	}
	return open
}

// sensed applies a sensor reading of d at now. changed is false when the
// door already read so. An opening is commanded if a pulse expected it,
// or if it is the late opening of a pulse (late, then, is what that pulse
// was for); waiters for the door to open are woken.
func (ds *doors) sensed(d *door, open bool, now time.Time) (changed, commanded bool, late *lateOp) {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	if d.open == open {
		return false, false, nil
	}
	d.open = open
	if open {
		d.since, d.lastAlarm = now, now
		if d.late != nil && now.Before(d.late.until) {
			late = d.late
		}
		d.late = nil
		d.commanded = now.Before(d.expectUntil) || late != nil
		d.expectUntil = time.Time{}
		for _, w := range d.waiters {
			close(w)
		}
		d.waiters = nil
	}
	return true, d.commanded, late
}

// leftOpenAlarm is a door open longer than the alarm period.
type leftOpenAlarm struct {
	id        string
	openFor   time.Duration
	commanded bool
}

// leftOpen returns the doors open for period or more whose last alarm is
// at least period ago, and marks them alarmed now.
func (ds *doors) leftOpen(now time.Time, period time.Duration) []leftOpenAlarm {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	var out []leftOpenAlarm
	for _, d := range ds.byID {
		if d.open && now.Sub(d.since) >= period && now.Sub(d.lastAlarm) >= period {
			d.lastAlarm = now
			out = append(out, leftOpenAlarm{d.id, now.Sub(d.since), d.commanded})
		}
	}
	return out
}

// startPulse takes a pulse slot (waiting for one: power-supply inrush
// limits how many locks may be energised at once) and marks that an
// opening of d before expect is commanded. alreadyOpen: d read open
// before its pulse. The caller must call endPulse when the pulse ends.
func (ds *doors) startPulse(ctx context.Context, d *door, expect time.Time) (alreadyOpen bool, err error) {
	select {
	case ds.pulses <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	ds.mu.Lock()
	defer ds.mu.Unlock()
	if ds.stopped {
		// The locker is stopping: the hardware is about to be closed
		// (every lock to its locked level); no pulse starts after that.
		<-ds.pulses
		return false, errStopped
	}
	ds.pulsing.Add(1) // under mu: stop's Wait never races an Add
	ds.count.Add(1)
	d.expectUntil = expect
	d.late = nil
	return d.open, nil
}

// endPulse gives the slot of a pulse back.
func (ds *doors) endPulse() {
	<-ds.pulses
	ds.pulsing.Done()
}

// stop lets no pulse start any more and waits up to timeout for the ones
// in flight to end; false if they did not.
func (ds *doors) stop(timeout time.Duration) bool {
	ds.mu.Lock()
	ds.stopped = true
	ds.mu.Unlock()
	done := make(chan struct{})
	go func() { ds.pulsing.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// waiter returns a channel closed when d opens (nil if it reads open),
// and a func that stops the wait and says whether d reads open then.
func (ds *doors) waiter(d *door) (<-chan struct{}, func() bool) {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	if d.open {
		return nil, func() bool { return true }
	}
	opened := make(chan struct{})
	d.waiters = append(d.waiters, opened)
	return opened, func() bool {
		ds.mu.Lock()
		defer ds.mu.Unlock()
		d.waiters = slices.DeleteFunc(d.waiters, func(c chan struct{}) bool { return c == opened })
		return d.open
	}
}

// watchLate starts watching door d for a late opening until until.
func (ds *doors) watchLate(d *door, until time.Time) {
	ds.mu.Lock()
	d.late = &lateOp{until: until}
	ds.mu.Unlock()
}

// noteLate tells the late watch of door id what its operation was.
func (ds *doors) noteLate(id string, f func(*lateOp)) {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	if d := ds.byID[id]; d != nil && d.late != nil {
		f(d.late)
	}
}

type door struct {
	id          string
	lock        string
	sensor      string
	open        bool
	since       time.Time
	commanded   bool      // the current open episode was commanded
	expectUntil time.Time // an opening before this is commanded
	late        *lateOp   // a pulse that did not open the door, watched for LateWindow
	lastAlarm   time.Time
	waiters     []chan struct{}
}

func (l *Locker) claim(orderID string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.busy[orderID] {
		return false
	}
	l.busy[orderID] = true
	return true
}

func (l *Locker) release(orderID string) {
	l.mu.Lock()
	delete(l.busy, orderID)
	l.mu.Unlock()
}

// beginOpen marks compartments open for op before any lock is pulsed, so
// that a door is never opened for something the store could not record.
// Compartments out of service are left out and returned separately.
func (l *Locker) beginOpen(ids []string, op Op, orderID, by string, prepare func(Tx) error) (ok, unusable []string, prev map[string]Compartment, err error) {
	prev = map[string]Compartment{}
	if err := l.roomToRecord(); err != nil {
		l.log.Error("door stays shut: no room to record", "err", err)
		return nil, nil, prev, err
	}
	err = l.update(func(tx Tx) error {
		ok, unusable = nil, nil
		if prepare != nil {
			if err := prepare(tx); err != nil {
				return err
			}
		}
		if op == OpNone {
			// Nothing to mark: a technician's open, or the return flap.
			ok = ids
			return nil
		}
		for _, id := range ids {
			c, err := tx.Compartment(id)
			if err != nil {
				return fmt.Errorf("compartment %s: %w", id, err)
			}
			if c.OutOfService {
				unusable = append(unusable, id)
				continue
			}
			prev[id] = c
			c.State, c.Op, c.OrderID, c.By = CompOpen, op, orderID, by
			if err := tx.PutCompartment(c); err != nil {
				return err
			}
			ok = append(ok, id)
		}
		return nil
	})
	return ok, unusable, prev, err
}

// openDoors pulses each door's lock and waits for its sensor to report
// open within DoorOpenConfirm. It returns the doors that opened and the
// ones that did not, in the order given; lockErrs holds, for doors that
// did not open, the error of a lock driver that could not pulse at all
// (a lock board that does not answer) — a fault of the hardware, not a
// jam of the door.
func (l *Locker) openDoors(ctx context.Context, ids []string) (opened, jammed []string, lockErrs map[string]string) {
	res := make([]bool, len(ids))
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i], errs[i] = l.openDoor(ctx, id)
		}()
	}
	wg.Wait()
	for i, id := range ids {
		if res[i] {
			opened = append(opened, id)
			continue
		}
		jammed = append(jammed, id)
		if errs[i] != nil {
			if lockErrs == nil {
				lockErrs = map[string]string{}
			}
			lockErrs[id] = errs[i].Error()
		}
	}
	return opened, jammed, lockErrs
}

// openDoor pulses one lock (waiting for a free pulse slot: power-supply
// inrush limits how many locks may be energised at once) and reports
// whether the door opened, and, if it did not, the lock driver's error
// if the pulse itself failed. The lock is never pulsed a second time.
//
// What the door did decides, not what the driver said:
//   - The sensor is read directly once the confirm window has passed: the
//     run loop that reports door changes may be behind a long write.
//   - A pulse whose result is an error (a lock board whose reply was lost
//     or came late) is "unknown", not "jammed": the sensor gets another
//     confirm window to say the door opened after all.
//   - A door that reads open before its pulse (forced, or its sensor
//     stuck) cannot confirm anything: the pulse's own result decides, and
//     a failed pulse never counts as an opening.
//
// A door that did not open is watched for LateWindow: if it opens then,
// the opening completes the operation it was for (see completeLate).
func (l *Locker) openDoor(ctx context.Context, id string) (bool, error) {
	d := l.doors.get(id)
	alreadyOpen, err := l.doors.startPulse(ctx, d, l.clock.Now().Add(l.set.LockPulse+l.set.Policy.DoorOpenConfirm))
	if errors.Is(err, errStopped) {
		return false, err
	}
	if err != nil {
		return false, nil
	}
	pulsed := make(chan error, 1)
	go func() {
		defer l.doors.endPulse()
		err := l.hw.Pulse(d.lock, ClampPulse(l.set.LockPulse))
		if err != nil {
			l.log.Error("lock pulse failed", "compartment", id, "lock", d.lock, "err", err)
		}
		pulsed <- err
	}()
	pulseResult := func() (error, bool) {
		select {
		case err := <-pulsed:
			return err, true
		case <-l.clock.After(MaxLockPulse + l.set.Policy.DoorOpenConfirm):
			return errors.New("the lock driver did not answer"), true
		case <-ctx.Done():
			return nil, false
		}
	}
	if alreadyOpen || d.sensor == "" {
		err, ok := pulseResult()
		if !ok {
			return false, nil
		}
		if alreadyOpen {
			l.log.Warn("door read open before its pulse (forced, or its sensor stuck): the pulse's result decides", "compartment", id, "pulse_err", err)
			if err != nil {
				err = fmt.Errorf("door read open before its pulse, and the pulse failed: %w", err)
			}
		}
		if err != nil {
			l.watchLate(d)
		}
		return err == nil, err
	}
	if l.waitOpen(ctx, d, l.set.Policy.DoorOpenConfirm) {
		return true, nil
	}
	err, ok := pulseResult()
	if !ok {
		return false, nil
	}
	if err != nil && l.waitOpen(ctx, d, l.set.Policy.DoorOpenConfirm) {
		l.log.Warn("door opened although its lock driver reported a failure", "compartment", id, "pulse_err", err)
		return true, nil
	}
	l.watchLate(d)
	return false, err
}

// waitOpen waits up to timeout for door d to open, as reported by the run
// loop or read from the driver directly (the run loop may be behind).
func (l *Locker) waitOpen(ctx context.Context, d *door, timeout time.Duration) bool {
	opened, stop := l.doors.waiter(d)
	if opened == nil {
		return true
	}
	select {
	case <-opened:
		return true
	case <-l.clock.After(timeout):
	case <-ctx.Done():
	}
	if stop() {
		return true
	}
	active, err := l.hw.Read(d.sensor)
	return err == nil && active
}

// LateWindow is how long after a door failed to open its opening still
// belongs to the operation that pulsed it (a slow latch, a lock board
// that acted late): it is commanded, not forced, and completes that
// operation.
const LateWindow = 30 * time.Second

// lateOp is an operation whose door did not open in time.
type lateOp struct {
	until   time.Time
	op      Op     // OpNone: a maintenance open, nothing to complete
	orderID string // the order the door was opened for
	via     string // a pickup's via
	scanner string
	barcode string // the return slot: the item being returned
	by      string // the badge the operation was for
}

// watchLate starts watching door d for a late opening.
func (l *Locker) watchLate(d *door) { l.doors.watchLate(d, l.clock.Now().Add(LateWindow)) }

// noteLate tells the late watch of door id what its operation was.
func (l *Locker) noteLate(id string, f func(*lateOp)) { l.doors.noteLate(id, f) }

// completeLate finishes, in tx, the operation a door that opened late was
// pulsed for: the pickup is completed (the reader holds the books), a
// load or retrieval goes on as if the door had opened at once (its close
// finishes it), a return is recorded; the jam counted is taken back.
func (l *Locker) completeLate(tx Tx, id string, late *lateOp) error {
	if id == ReturnSlotID {
		if late.barcode == "" {
			return nil
		}
		if err := tx.AddBinItem(late.barcode); err != nil {
			return err
		}
		return l.record(tx, ItemReturned{Barcode: late.barcode, Scanner: late.scanner, Late: true})
	}
	if late.op == OpNone || late.orderID == "" {
		return nil
	}
	c, err := tx.Compartment(id)
	if err != nil {
		return err
	}
	o, err := tx.Order(late.orderID)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	c.Jams = 0
	switch late.op {
	case OpPickup:
		if o.State != OrderReady || !slices.Contains(o.Compartments, id) {
			return tx.PutCompartment(c)
		}
		c.State, c.Op, c.OrderID = CompOpen, OpPickup, o.ID
		if err := tx.PutCompartment(c); err != nil {
			return err
		}
		l.log.Warn("door opened late: pickup completed", "order", o.ID, "compartment", id)
		return l.completePickup(tx, o, o.Compartments, late.via, late.scanner, late.by, true)
	case OpLoad:
		if o.State == OrderAssigned && (c.State == CompFree || c.State == CompReserved && c.OrderID == o.ID) {
			c.State, c.Op, c.OrderID, c.By = CompOpen, OpLoad, o.ID, late.by
		}
	case OpRetrieve:
		if o.NeedsRetrieval() && c.OrderID == o.ID {
			c.State, c.Op, c.By = CompOpen, OpRetrieve, late.by
		}
	}
	return tx.PutCompartment(c)
}

// endOpen records, after a pulse, which doors jammed: each goes back to
// what it was, counts a jam, and leaves service after two jams in a row.
// A door whose lock driver could not pulse (lockErrs) goes back too, and
// its door.jammed says why, but it counts no jam: the door is not at
// fault, and it must not leave service for a lock board's outage.
func (l *Locker) endOpen(tx Tx, opened, jammed []string, lockErrs map[string]string, prev map[string]Compartment) error {
	for _, id := range opened {
		c, err := tx.Compartment(id)
		if err != nil {
			return err
		}
		if c.Jams != 0 {
			c.Jams = 0
			if err := tx.PutCompartment(c); err != nil {
				return err
			}
		}
	}
	for _, id := range jammed {
		c, err := tx.Compartment(id)
		if err != nil {
			return err
		}
		l.noteLate(id, func(lo *lateOp) { lo.op, lo.orderID, lo.by = c.Op, c.OrderID, c.By })
		p := prev[id]
		c.State, c.Op, c.OrderID, c.By = p.State, p.Op, p.OrderID, p.By
		if lockErr, fault := lockErrs[id]; fault {
			if err := l.record(tx, DoorJammed{Compartment: id, Commanded: true, Jams: &c.Jams, LockError: lockErr}); err != nil {
				return err
			}
			l.log.Warn("door not opened: lock driver failed", "compartment", id, "err", lockErr)
			if err := tx.PutCompartment(c); err != nil {
				return err
			}
			continue
		}
		c.Jams++
		if err := l.record(tx, DoorJammed{Compartment: id, Commanded: true, Jams: &c.Jams}); err != nil {
			return err
		}
		if c.Jams >= 2 && !c.OutOfService {
			c.OutOfService = true
			if err := l.record(tx, CompartmentService{Compartment: id, InService: false, Reason: "jammed"}); err != nil {
				return err
			}
		}
		l.log.Warn("door jammed", "compartment", id, "jams", c.Jams, "out_of_service", c.OutOfService)
		if err := tx.PutCompartment(c); err != nil {
			return err
		}
	}
	return nil
}

// revert restores compartments marked by beginOpen that were never pulsed.
func (l *Locker) revert(prev map[string]Compartment) {
	if len(prev) == 0 {
		return
	}
	if err := l.update(func(tx Tx) error {
		for _, p := range prev {
			c, err := tx.Compartment(p.ID)
			if err != nil {
				return err
			}
			c.State, c.Op, c.OrderID = p.State, p.Op, p.OrderID
			if err := tx.PutCompartment(c); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		l.log.Error("revert compartments", "err", err)
	}
}

// doorJob is one opening of doors for an operation.
type doorJob struct {
	ids []string
	// op marks the compartments open for an operation on order orderID
	// until their doors close; OpNone marks nothing (a technician's open,
	// the return flap): the doors are pulsed as they are, and a door that
	// does not open counts no jam.
	op      Op
	orderID string
	// by is the name of the badge the job is for, recorded by the event
	// its door closing completes.
	by string
	// prepare runs in the transaction that marks the compartments, before
	// any lock is pulsed (a maintenance.open recorded first, a counter):
	// if it fails, nothing opens.
	prepare func(Tx) error
	// whole: the job needs every compartment (a pickup's books are in all
	// of them); one out of service and nothing is pulsed.
	whole bool
	// late fills in the late watch of a door that did not open (see
	// completeLate): what a late opening completes.
	late func(*lateOp)
	// finish records the operation's outcome in the transaction that
	// records the jams (nil: nothing more to record).
	finish func(tx Tx, opened, jammed []string) error
}

// errStopped: the locker is shutting down; no lock is pulsed any more.
var errStopped = errors.New("the locker is stopping")

// errUnusable: a compartment of a whole job is out of service.
var errUnusable = errors.New("a compartment is out of service")

// openFor is the one sequence every door-opening operation on orders goes
// through: mark the compartments open for the operation (before any lock
// is pulsed: a door never opens for something the store could not
// record), pulse them and confirm by the sensors, then record in one
// transaction which doors jammed and the caller's outcome. The caller has
// claimed the order (claim) when two flows could race for it.
func (l *Locker) openFor(ctx context.Context, job doorJob) (opened, jammed []string, err error) {
	ids, unusable, prev, err := l.beginOpen(job.ids, job.op, job.orderID, job.by, job.prepare)
	if err != nil {
		return nil, nil, err
	}
	if job.whole && (len(unusable) > 0 || len(ids) == 0) {
		// Put back what beginOpen marked; the order waits for a technician.
		l.revert(prev)
		return nil, nil, errUnusable
	}
	if len(ids) == 0 {
		return nil, nil, nil
	}
	opened, jammed, lockErrs := l.openDoors(ctx, ids)
	if job.late != nil {
		for _, id := range jammed {
			l.noteLate(id, job.late)
		}
	}
	if job.op == OpNone && job.finish == nil {
		return opened, jammed, nil
	}
	err = l.update(func(tx Tx) error {
		if job.op != OpNone {
			if err := l.endOpen(tx, opened, jammed, lockErrs, prev); err != nil {
				return err
			}
		}
		if job.finish == nil {
			return nil
		}
		return job.finish(tx, opened, jammed)
	})
	return opened, jammed, err
}
