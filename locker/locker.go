package locker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Outcomes of a scan.
const (
	OutcomeOpened     = "opened"      // pickup: doors open
	OutcomeDenied     = "denied"      // pickup refused; Reason says why
	OutcomeStaffOn    = "staff_on"    // staff session started
	OutcomeStaffOff   = "staff_off"   // staff session ended
	OutcomeLoading    = "loading"     // staff: compartment open for loading
	OutcomeRetrieving = "retrieving"  // staff: compartment open for retrieval
	OutcomeNothing    = "nothing"     // staff: nothing to do for that scan
	OutcomeReturned   = "returned"    // return accepted, flap open
	OutcomeRefused    = "refused"     // return refused; Reason says why
	OutcomeJammed     = "jammed"      // a door did not open
	OutcomeError      = "error"       // could not be served (store or hardware)
	OutcomeMaintOpen  = "maintenance" // technician open
)

// ScanResult says what a scan did. It never contains the scanned text.
type ScanResult struct {
	Outcome      string    `json:"outcome"`
	Reason       string    `json:"reason,omitempty"`
	OrderID      string    `json:"order_id,omitempty"`
	Compartments []string  `json:"compartments,omitempty"`
	Until        time.Time `json:"until,omitzero"`
}

// Staff command codes scanned during a staff session.
const StaffCmdRetrieve = "RETRIEVE"

// via values of pickup.completed.
const (
	ViaScan   = "scan"
	ViaKeypad = "keypad"
	ViaRemote = "remote"
)

type staffSession struct {
	device  string
	until   time.Time
	pending []string // compartments still to retrieve
}

// Locker runs the flows of one cabinet. Create it with New, call Start once,
// then Run; Scan and the other methods may be called from any goroutine.
type Locker struct {
	set      Settings
	store    Store
	hw       Hardware
	key      CodeKey
	clock    Clock
	log      *slog.Logger
	lockouts *Lockouts
	refusals refusalLog
	pulses   chan struct{} // semaphore: at most MaxConcurrentPulses energised

	devices   map[string]Device
	doors     map[string]*door // compartment id (and ReturnSlotID) → door
	doorByPin map[string]*door // sensor pin → door
	staffHash map[string]bool  // staff badge hashes from settings

	mu           sync.Mutex
	binFull      bool
	binReported  bool                     // return_bin.full recorded for the current full spell
	sessions     map[string]*staffSession // by device name
	busy         map[string]bool          // order ids being handled
	bg           context.Context          // for work started by door events
	hub          hub
	notices      noticeHub
	scanners     map[string]bool // connected, by name
	hardware     map[string]bool // answering, by device (lock boards, their bus)
	trust        *ClockTrust
	untrusted    atomic.Bool  // expiry is waiting for a trustworthy clock (logged once)
	storeFailing atomic.Bool  // the last store write failed
	lastTick     atomic.Int64 // unix nanos of the run loop's last tick
	pulseCount   atomic.Uint64
	space        SpaceLimits
	spaceChecked atomic.Int64 // unix nanos of the last headroom check
	spaceLow     atomic.Bool  // store.low_space raised and not yet cleared
	fault        atomic.Pointer[string]
	lastPurge    atomic.Int64   // unix nanos of the last purge run
	wg           sync.WaitGroup // goroutines started by Run and spawn
	// pulsing counts lock pulses in flight; once stopped (Run ended, under
	// mu) no pulse starts, and Run returns only after the last one ends.
	pulsing sync.WaitGroup
	stopped bool
}

// New checks settings and builds a Locker; nothing is touched until Start.
func New(set Settings, store Store, hw Hardware, key CodeKey, clock Clock, log *slog.Logger) (*Locker, error) {
	if err := set.validate(); err != nil {
		return nil, err
	}
	if len(key) < MinCodeKeyLen {
		return nil, fmt.Errorf("pickup key too short")
	}
	if clock == nil {
		clock = SystemClock{}
	}
	if log == nil {
		log = slog.Default()
	}
	l := &Locker{
		set: set, store: store, hw: hw, key: key, clock: clock, log: log,
		lockouts: NewLockouts(LockoutPolicy{
			MaxFailed: set.Policy.MaxFailedCodes, Window: set.Policy.FailedWindow,
			Lockout: set.Policy.Lockout, LockoutMax: set.Policy.LockoutMax,
		}),
		pulses:    make(chan struct{}, set.MaxConcurrentPulses),
		devices:   map[string]Device{},
		doors:     map[string]*door{},
		doorByPin: map[string]*door{},
		staffHash: map[string]bool{},
		sessions:  map[string]*staffSession{},
		busy:      map[string]bool{},
		bg:        context.Background(),
	}
	for _, d := range set.Devices {
		l.devices[d.Name] = d
	}
	for _, c := range set.Compartments {
		l.addDoor(c.ID, c.Lock, c.Sensor)
	}
	if r := set.Return; r != nil {
		l.addDoor(ReturnSlotID, r.Lock, r.Sensor)
	}
	for _, h := range set.StaffBadges {
		l.staffHash[strings.ToLower(h)] = true
	}
	return l, nil
}

func (l *Locker) addDoor(id, lock, sensor string) {
	d := &door{id: id, lock: lock, sensor: sensor}
	l.doors[id] = d
	if sensor != "" {
		l.doorByPin[sensor] = d
	}
}

// record appends one event inside tx.
func (l *Locker) record(tx Tx, typ string, data map[string]any) error {
	e, err := tx.Record(Event{Type: typ, TS: l.clock.Now().UTC(), Boot: l.store.Boot(), Data: data})
	if err != nil {
		return fmt.Errorf("record %s: %w", typ, err)
	}
	tx.AfterCommit(func() { l.hub.publish(e) })
	return nil
}

// recordFact records an event that is a physical fact about order o and
// stores o with FactSeq pointing at it, in tx.
func (l *Locker) recordFact(tx Tx, o *Order, typ string, data map[string]any) error {
	e, err := tx.Record(Event{Type: typ, TS: l.clock.Now().UTC(), Boot: l.store.Boot(), Data: data})
	if err != nil {
		return fmt.Errorf("record %s: %w", typ, err)
	}
	tx.AfterCommit(func() { l.hub.publish(e) })
	o.FactSeq = e.Seq
	o.markEnded(l.clock.Now())
	return tx.PutOrder(*o)
}

// recordOne writes a single event in its own transaction.
func (l *Locker) recordOne(typ string, data map[string]any) {
	if err := l.update(func(tx Tx) error { return l.record(tx, typ, data) }); err != nil {
		l.log.Error("event not recorded", "type", typ, "err", err)
	}
}

// Start drives every lock to its locked level, brings the stored
// compartments in line with the settings, reads every sensor, settles
// operations a previous run left half done, and records daemon.started.
func (l *Locker) Start(version string) error {
	if err := l.hw.LockAll(); err != nil {
		return fmt.Errorf("drive locks to locked level: %w", err)
	}
	now := l.clock.Now()
	if err := l.store.View(func(tx Tx) error {
		last, err := tx.LastSeq()
		l.hub.start(last + 1)
		if err != nil {
			return err
		}
		// Lockouts survive a restart: a power cycle must not reset one.
		states, err := tx.LockoutStates()
		for dev, st := range states {
			l.lockouts.Restore(dev, st, now)
		}
		return err
	}); err != nil {
		return err
	}
	var openAtStart []string
	for _, d := range l.doors {
		if d.sensor == "" {
			continue
		}
		active, err := l.hw.Read(d.sensor)
		if err != nil {
			// A sensor behind a board that is not answering yet: start,
			// take the door as closed, and let the board's first answer
			// report it (a door then found open raises its alarm).
			l.log.Warn("door state unknown at start", "compartment", d.id, "sensor", d.sensor, "err", err)
			active = false
		}
		d.open, d.since, d.lastAlarm = active, now, now
		if active {
			openAtStart = append(openAtStart, d.id)
		}
	}
	sort.Strings(openAtStart)
	if r := l.set.Return; r != nil && r.BinFullSensor != "" {
		full, err := l.hw.Read(r.BinFullSensor)
		if err != nil {
			l.log.Warn("bin-full sensor unknown at start", "sensor", r.BinFullSensor, "err", err)
			full = false
		}
		l.binFull = full
	}
	return l.update(func(tx Tx) error {
		for _, cfg := range l.set.Compartments {
			c, err := tx.Compartment(cfg.ID)
			if errors.Is(err, ErrNotFound) {
				c = Compartment{ID: cfg.ID, State: CompFree}
			} else if err != nil {
				return err
			}
			c.Size, c.Lock, c.Sensor = cfg.Size, cfg.Lock, cfg.Sensor
			if c.State == CompOpen && !l.doors[c.ID].open {
				if err := l.settleInterrupted(tx, &c); err != nil {
					return err
				}
				l.log.Warn("settled compartment a previous run left open", "compartment", c.ID, "state", c.State)
			}
			if err := tx.PutCompartment(c); err != nil {
				return err
			}
		}
		for h := range l.staffHash {
			if err := tx.PutStaffBadge(h); err != nil {
				return err
			}
		}
		if err := l.record(tx, EvDaemonStarted, map[string]any{
			"version": version, "compartments": len(l.set.Compartments), "doors_open": openAtStart,
		}); err != nil {
			return err
		}
		for _, id := range openAtStart {
			if err := l.record(tx, EvDoorOpened, map[string]any{"compartment": id, "commanded": false, "at_start": true}); err != nil {
				return err
			}
		}
		return nil
	})
}

// settleInterrupted resolves a compartment that a killed run left open
// with its door now closed. Nothing is assumed that was not recorded: a
// load that was not confirmed by a close is undone (staff scan again).
func (l *Locker) settleInterrupted(tx Tx, c *Compartment) error {
	o, err := tx.Order(c.OrderID)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	found := err == nil
	switch {
	case c.Op == OpPickup && found && o.State == OrderPickedUp:
		c.State, c.OrderID = CompFree, ""
	case c.Op == OpLoad && found && o.State == OrderAssigned:
		c.State = CompFree
		if o.Assigned == c.ID {
			c.State = CompReserved
		} else {
			c.OrderID = ""
		}
	case found && (o.State == OrderReady || o.NeedsRetrieval()):
		c.State = CompLoaded
	default:
		c.State, c.OrderID = CompFree, ""
	}
	c.Op = OpNone
	return nil
}

// Run handles sensor changes and periodic work until ctx ends.
func (l *Locker) Run(ctx context.Context) error {
	l.mu.Lock()
	l.bg = ctx
	l.mu.Unlock()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	defer func() {
		// Shutdown: no new pulse, the ones in flight (each at most
		// MaxLockPulse) end, then the goroutines Run and spawn started.
		l.mu.Lock()
		l.stopped = true
		l.mu.Unlock()
		pulsed := make(chan struct{})
		go func() { l.pulsing.Wait(); close(pulsed) }()
		select {
		case <-pulsed:
		case <-time.After(2*MaxLockPulse + 5*time.Second):
			// A lock driver that never returns must not hold the
			// shutdown (and the locks' drive to locked) for ever.
			l.log.Error("a lock pulse did not end: shutting down without it")
		}
		l.wg.Wait()
	}()
	l.lastTick.Store(time.Now().UnixNano())
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		l.runFeedback(ctx)
	}()
	var faults <-chan HardwareFault
	if fr, ok := l.hw.(FaultReporter); ok {
		faults = fr.Faults()
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case f := <-faults:
			l.RecordHardwareFault(f)
		case ch, ok := <-l.hw.Inputs():
			if !ok {
				return errors.New("hardware input stream closed")
			}
			l.guard("the run loop (door input)", func() { l.HandleInput(ch) })
		case <-tick.C:
			l.guard("the run loop (periodic work)", l.Tick)
		}
	}
}

// HandleInput applies one sensor change: door events, forced-door alarms,
// the end of a load, pickup or retrieval when its door closes, bin full.
func (l *Locker) HandleInput(ch InputChange) {
	if r := l.set.Return; r != nil && r.BinFullSensor != "" && ch.Pin == r.BinFullSensor {
		l.mu.Lock()
		was := l.binFull
		l.binFull = ch.Active
		report := ch.Active && !was && !l.binReported
		l.binReported = ch.Active && (l.binReported || report)
		l.mu.Unlock()
		if report {
			l.recordOne(EvReturnBinFull, map[string]any{"source": "sensor"})
		}
		l.log.Info("return bin", "full", ch.Active)
		return
	}
	d := l.doorByPin[ch.Pin]
	if d == nil {
		l.log.Warn("input change on unknown pin", "pin", ch.Pin)
		return
	}
	l.mu.Lock()
	if d.open == ch.Active {
		l.mu.Unlock()
		return
	}
	d.open = ch.Active
	var commanded bool
	// Decisions use the core's clock, not the driver's timestamp, so that
	// all timing rules follow one (injectable) clock.
	now := l.clock.Now()
	var late *lateOp
	if ch.Active {
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
	commanded = d.commanded
	l.mu.Unlock()

	var next *staffSession
	err := l.update(func(tx Tx) error {
		next = nil
		if !ch.Active {
			if err := l.record(tx, EvDoorClosed, map[string]any{"compartment": d.id, "commanded": commanded}); err != nil {
				return err
			}
			var err error
			next, err = l.finishOnClose(tx, d.id)
			return err
		}
		opened := map[string]any{"compartment": d.id, "commanded": commanded}
		if late != nil {
			opened["late"] = true
		}
		if err := l.record(tx, EvDoorOpened, opened); err != nil {
			return err
		}
		if late != nil {
			return l.completeLate(tx, d.id, late)
		}
		if !commanded {
			return l.record(tx, EvDoorForced, map[string]any{"compartment": d.id, "commanded": false})
		}
		return nil
	})
	if err != nil {
		l.log.Error("door change not recorded", "compartment", d.id, "open", ch.Active, "err", err)
		return
	}
	l.log.Info("door", "compartment", d.id, "open", ch.Active, "commanded", commanded)
	if next != nil {
		l.spawn(func(ctx context.Context) { l.retrieveNext(ctx, next) })
	}
}

// guard runs f, turning a panic into a fault (see Fault).
func (l *Locker) guard(where string, f func()) {
	defer l.Recover(where)
	f()
}

// spawn runs f in the background, bound to Run's context.
func (l *Locker) spawn(f func(ctx context.Context)) {
	l.mu.Lock()
	ctx := l.bg
	l.mu.Unlock()
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		f(ctx)
	}()
}

// finishOnClose completes what a compartment's door was opened for. It
// returns the staff session whose retrieval round should go on, if any.
func (l *Locker) finishOnClose(tx Tx, id string) (*staffSession, error) {
	if id == ReturnSlotID {
		return nil, nil
	}
	c, err := tx.Compartment(id)
	if err != nil {
		return nil, err
	}
	if c.State != CompOpen {
		return nil, nil
	}
	now := l.clock.Now().UTC()
	var next *staffSession
	o, err := tx.Order(c.OrderID)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	found := err == nil
	switch {
	case c.Op == OpLoad && found && o.State == OrderAssigned:
		if err := o.Move(OrderReady); err != nil {
			return nil, err
		}
		o.Loaded, o.LoadedAt = true, now
		if !slices.Contains(o.Compartments, id) {
			o.Compartments = append(o.Compartments, id)
		}
		c.State = CompLoaded
		if err := l.recordFact(tx, &o, EvOrderLoaded, map[string]any{"order_id": o.ID, "compartment": id}); err != nil {
			return nil, err
		}
	case c.Op == OpRetrieve && found && o.NeedsRetrieval():
		if err := o.Move(OrderRetrieved); err != nil {
			return nil, err
		}
		c.State, c.OrderID = CompFree, ""
		if err := l.recordFact(tx, &o, EvOrderRetrieved, map[string]any{"order_id": o.ID, "compartment": id}); err != nil {
			return nil, err
		}
		next = l.sessionRetrieving()
	default:
		// A pickup's door closing, or an operation whose order changed
		// meanwhile: the compartment holds what the order says.
		op := c.Op
		if err := l.settleInterrupted(tx, &c); err != nil {
			return nil, err
		}
		if op == OpRetrieve {
			next = l.sessionRetrieving()
		}
	}
	c.Op = OpNone
	return next, tx.PutCompartment(c)
}

// sessionRetrieving returns the live staff session with more to retrieve.
func (l *Locker) sessionRetrieving() *staffSession {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock.Now()
	for _, s := range l.sessions {
		if now.Before(s.until) && len(s.pending) > 0 {
			return s
		}
	}
	return nil
}

// Tick does the periodic work: expiry, left-open alarms, staff timeouts.
func (l *Locker) Tick() {
	l.lastTick.Store(time.Now().UnixNano())
	l.checkSpace(true)
	now := l.clock.Now()
	l.flushRefusals(now)
	if last := l.lastPurge.Load(); last == 0 || now.Sub(time.Unix(0, last)) >= PurgeEvery || now.UnixNano() < last {
		if l.lastPurge.CompareAndSwap(last, now.UnixNano()) {
			l.purge()
		}
	}
	if date, trusted := l.expiryNow(); !trusted {
		if !l.untrusted.Swap(true) {
			l.log.Warn("expiry waits for a trustworthy clock (NTP or the central library's time)", "local_time", now)
		}
	} else if err := l.expireDue(date); err != nil {
		l.log.Error("expiry", "err", err)
	}

	type alarm struct {
		id        string
		openFor   time.Duration
		commanded bool
	}
	var alarms []alarm
	l.mu.Lock()
	for _, d := range l.doors {
		if d.open && now.Sub(d.since) >= l.set.Policy.DoorLeftOpenAlarm && now.Sub(d.lastAlarm) >= l.set.Policy.DoorLeftOpenAlarm {
			d.lastAlarm = now
			alarms = append(alarms, alarm{d.id, now.Sub(d.since), d.commanded})
		}
	}
	var timedOut []string
	for dev, s := range l.sessions {
		if !now.Before(s.until) {
			delete(l.sessions, dev)
			timedOut = append(timedOut, dev)
			l.log.Info("staff session timed out", "scanner", dev)
		}
	}
	l.mu.Unlock()
	for _, dev := range timedOut {
		l.notify(Notice{Type: NoticeStaffSession, Data: map[string]any{"scanner": dev, "on": false}})
	}
	for _, a := range alarms {
		l.recordOne(EvDoorLeftOpen, map[string]any{"compartment": a.id, "commanded": a.commanded, "open_s": int(a.openFor.Seconds())})
	}
}

// expireDue expires the ready orders due at date. It looks first in a
// read transaction: a write transaction syncs the file even when it
// changes nothing, and this runs every second (an SD card wears).
func (l *Locker) expireDue(date time.Time) error {
	l.untrusted.Store(false)
	var due []Order
	if err := l.store.View(func(tx Tx) error {
		var err error
		due, err = tx.ReadyExpiring(date)
		return err
	}); err != nil || len(due) == 0 {
		return err
	}
	return l.update(func(tx Tx) error {
		due, err := tx.ReadyExpiring(date)
		if err != nil {
			return err
		}
		for _, o := range due {
			if err := l.expire(tx, o); err != nil {
				return err
			}
		}
		return nil
	})
}

func (l *Locker) expire(tx Tx, o Order) error {
	if err := o.Move(OrderExpired); err != nil {
		return err
	}
	if err := tx.PutOrder(o); err != nil {
		return err
	}
	l.log.Info("order expired", "order", o.ID)
	return l.record(tx, EvOrderExpired, map[string]any{"order_id": o.ID, "compartments": o.Compartments})
}

// Scan handles one line from an input device.
func (l *Locker) Scan(ctx context.Context, device, text string) (ScanResult, error) {
	dev, ok := l.devices[device]
	if !ok {
		return ScanResult{}, fmt.Errorf("unknown input device %q", device)
	}
	if dev.Role == RoleReturn {
		return l.returnScan(ctx, dev, text), nil
	}
	via := ViaScan
	if device == KeypadDevice {
		via = ViaKeypad
	}
	return l.pickupScan(ctx, dev, text, via), nil
}

// KeypadDevice is the name of the on-screen keypad input device.
const KeypadDevice = "keypad"

func (l *Locker) pickupScan(ctx context.Context, dev Device, text, via string) ScanResult {
	now := l.clock.Now()
	code, codeErr := NormalizeCode(text)
	hash := ""
	if codeErr == nil {
		hash = l.key.Hash(code)
	}
	if l.staffSessionActive(dev.Name, now) {
		if hash != "" && l.isStaff(hash) {
			l.endStaff(dev.Name)
			return ScanResult{Outcome: OutcomeStaffOff}
		}
		return l.staffScan(ctx, dev, text)
	}
	if until, locked := l.lockouts.LockedUntil(dev.Name, now); locked {
		// Aggregated: a scanner flooded with codes must not flood the
		// outbox (or the disk) as well.
		l.refuse(dev, EvPickupDenied, DenyLockedOut, map[string]any{"until": until.UTC()}, false)
		return ScanResult{Outcome: OutcomeDenied, Reason: DenyLockedOut, Until: until}
	}
	if codeErr != nil {
		return l.failCode(dev, now)
	}
	o, err := l.orderByHash(hash)
	if errors.Is(err, ErrNotFound) {
		if l.isStaff(hash) {
			l.startStaff(dev.Name, now)
			return ScanResult{Outcome: OutcomeStaffOn}
		}
		return l.failCode(dev, now)
	}
	if err != nil {
		l.log.Error("order lookup", "err", err)
		return ScanResult{Outcome: OutcomeError, Reason: "store"}
	}
	switch o.State {
	case OrderReady:
		if date, trusted := l.expiryNow(); trusted && !date.Before(o.ExpiresAt) {
			if err := l.update(func(tx Tx) error {
				cur, err := tx.Order(o.ID)
				if err != nil || cur.State != OrderReady {
					return err
				}
				return l.expire(tx, cur)
			}); err != nil {
				l.log.Error("expire on scan", "order", o.ID, "err", err)
			}
			return l.deny(dev, o.ID, DenyExpired)
		}
		return l.pickup(ctx, dev, o, via)
	case OrderPickedUp:
		// A clock that jumped backwards (negative age) grants nothing.
		if age := now.Sub(o.PickedUpAt); age >= 0 && age <= l.set.Policy.ReopenGrace {
			return l.reopen(ctx, o)
		}
		return l.deny(dev, o.ID, DenyNotReady)
	case OrderExpired, OrderRetrieved:
		return l.deny(dev, o.ID, DenyExpired)
	case OrderCancelled:
		return l.deny(dev, o.ID, DenyCancelled)
	default:
		return l.deny(dev, o.ID, DenyNotReady)
	}
}

// orderByHash is the one index read a scanned code costs.
func (l *Locker) orderByHash(hash string) (Order, error) {
	var o Order
	err := l.store.View(func(tx Tx) error {
		var err error
		o, err = tx.OrderByCodeHash(hash)
		return err
	})
	return o, err
}

// FindOrderByCode is the lookup a scan does — normalise, one HMAC, one
// index read — without acting on it (for benchmarks and tools).
func (l *Locker) FindOrderByCode(raw string) (Order, error) {
	code, err := NormalizeCode(raw)
	if err != nil {
		return Order{}, err
	}
	return l.orderByHash(l.key.Hash(code))
}

// deny refuses a code that matched an order that cannot be picked up
// (expired, cancelled, not ready). It counts towards the device's
// lockout like an unknown code: a device that keeps scanning what is
// refused is flooding, whatever it scans.
func (l *Locker) deny(dev Device, orderID, reason string) ScanResult {
	_, started := l.refuse(dev, EvPickupDenied, reason, nil, true)
	l.log.Info("pickup denied", "scanner", dev.Name, "reason", reason, "order", orderID, "lockout_started", started)
	return ScanResult{Outcome: OutcomeDenied, Reason: reason}
}

// failCode records a code that matches nothing, and starts a lockout when
// there were too many.
func (l *Locker) failCode(dev Device, now time.Time) ScanResult {
	_, started := l.refuse(dev, EvPickupDenied, DenyUnknown, nil, true)
	l.log.Info("pickup denied", "scanner", dev.Name, "reason", DenyUnknown, "lockout_started", started)
	return ScanResult{Outcome: OutcomeDenied, Reason: DenyUnknown}
}

func (l *Locker) pickup(ctx context.Context, dev Device, o Order, via string) ScanResult {
	if !l.claim(o.ID) {
		return ScanResult{Outcome: OutcomeDenied, Reason: "busy", OrderID: o.ID}
	}
	defer l.release(o.ID)
	var res ScanResult
	_, _, err := l.openFor(ctx, doorJob{ids: o.Compartments, op: OpPickup, orderID: o.ID, whole: true,
		late: func(lo *lateOp) { lo.via, lo.scanner = via, dev.Name },
		finish: func(tx Tx, opened, jammed []string) error {
			if len(jammed) > 0 {
				res = ScanResult{Outcome: OutcomeJammed, OrderID: o.ID, Compartments: jammed}
				return nil
			}
			cur, err := tx.Order(o.ID)
			if err != nil {
				return err
			}
			res = ScanResult{Outcome: OutcomeOpened, OrderID: o.ID, Compartments: opened}
			return l.completePickup(tx, cur, opened, via, dev.Name, false)
		}})
	switch {
	case errors.Is(err, errUnusable):
		return l.deny(dev, o.ID, DenyNotReady)
	case err != nil:
		l.log.Error("pickup not recorded", "order", o.ID, "err", err)
		return ScanResult{Outcome: OutcomeError, Reason: "store"}
	}
	l.log.Info("pickup", "order", o.ID, "outcome", res.Outcome, "compartments", res.Compartments)
	return res
}

// completePickup records, in tx, that order o was picked up through doors
// opened: the order moves to picked up, a compartment of it that opened
// and closed again before this commit (settled as still holding it) is
// free, and pickup.completed is recorded.
func (l *Locker) completePickup(tx Tx, o Order, opened []string, via, scanner string, late bool) error {
	if err := o.Move(OrderPickedUp); err != nil {
		return err
	}
	o.PickedUpAt = l.clock.Now().UTC()
	for _, id := range o.Compartments {
		c, err := tx.Compartment(id)
		if err != nil {
			return err
		}
		if c.State == CompLoaded && c.OrderID == o.ID {
			c.State, c.OrderID = CompFree, ""
			if err := tx.PutCompartment(c); err != nil {
				return err
			}
		}
	}
	data := map[string]any{"order_id": o.ID, "compartments": opened, "via": via}
	if scanner != "" {
		data["scanner"] = scanner
	}
	if late {
		data["late"] = true
	}
	return l.recordFact(tx, &o, EvPickupCompleted, data)
}

// reopen opens again, within the grace period, the doors of an order just
// picked up (the reader forgot a book) — only doors nobody reused since.
func (l *Locker) reopen(ctx context.Context, o Order) ScanResult {
	if !l.claim(o.ID) {
		return ScanResult{Outcome: OutcomeDenied, Reason: "busy", OrderID: o.ID}
	}
	defer l.release(o.ID)
	var ids []string
	err := l.store.View(func(tx Tx) error {
		for _, id := range o.Compartments {
			c, err := tx.Compartment(id)
			if err != nil {
				return err
			}
			if !c.OutOfService && (c.State == CompFree || c.OrderID == o.ID) {
				ids = append(ids, id)
			}
		}
		return nil
	})
	if err != nil || len(ids) == 0 {
		return ScanResult{Outcome: OutcomeDenied, Reason: DenyNotReady, OrderID: o.ID}
	}
	opened, jammed, err := l.openFor(ctx, doorJob{ids: ids, op: OpPickup, orderID: o.ID})
	if err != nil {
		if len(opened)+len(jammed) == 0 {
			return ScanResult{Outcome: OutcomeError, Reason: "store"}
		}
		l.log.Error("reopen outcome", "err", err)
	}
	l.log.Info("reopened within grace", "order", o.ID, "compartments", opened)
	if len(jammed) > 0 {
		return ScanResult{Outcome: OutcomeJammed, OrderID: o.ID, Compartments: jammed}
	}
	return ScanResult{Outcome: OutcomeOpened, OrderID: o.ID, Compartments: opened, Reason: "reopen"}
}
