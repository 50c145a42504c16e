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
	lastPurge    atomic.Int64 // unix nanos of the last purge run
	wg           sync.WaitGroup
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
	defer l.wg.Wait()
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
func (l *Locker) beginOpen(ids []string, op Op, orderID string) (ok, unusable []string, prev map[string]Compartment, err error) {
	prev = map[string]Compartment{}
	if err := l.roomToRecord(); err != nil {
		l.log.Error("door stays shut: no room to record", "err", err)
		return nil, nil, prev, err
	}
	err = l.update(func(tx Tx) error {
		ok, unusable = nil, nil
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
			c.State, c.Op, c.OrderID = CompOpen, op, orderID
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
	d := l.doors[id]
	select {
	case l.pulses <- struct{}{}:
	case <-ctx.Done():
		return false, nil
	}
	now := l.clock.Now()
	l.mu.Lock()
	d.expectUntil = now.Add(l.set.LockPulse + l.set.Policy.DoorOpenConfirm)
	d.late = nil
	alreadyOpen := d.open
	l.mu.Unlock()
	l.pulseCount.Add(1)
	pulsed := make(chan error, 1)
	go func() {
		defer func() { <-l.pulses }()
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
	opened := make(chan struct{})
	l.mu.Lock()
	if d.open {
		l.mu.Unlock()
		return true
	}
	d.waiters = append(d.waiters, opened)
	l.mu.Unlock()
	select {
	case <-opened:
		return true
	case <-l.clock.After(timeout):
	case <-ctx.Done():
	}
	l.mu.Lock()
	d.waiters = slices.DeleteFunc(d.waiters, func(c chan struct{}) bool { return c == opened })
	open := d.open
	l.mu.Unlock()
	if open {
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
}

// watchLate starts watching door d for a late opening.
func (l *Locker) watchLate(d *door) {
	l.mu.Lock()
	d.late = &lateOp{until: l.clock.Now().Add(LateWindow)}
	l.mu.Unlock()
}

// noteLate tells the late watch of door id what its operation was.
func (l *Locker) noteLate(id string, f func(*lateOp)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if d := l.doors[id]; d != nil && d.late != nil {
		f(d.late)
	}
}

// completeLate finishes, in tx, the operation a door that opened late was
// pulsed for: the pickup is completed (the reader holds the books), a
// load or retrieval goes on as if the door had opened at once (its close
// finishes it), a return is recorded; the jam counted is taken back.
func (l *Locker) completeLate(tx Tx, id string, late *lateOp) error {
	if id == ReturnSlotID {
		if late.barcode == "" {
			return nil
		}
		return l.record(tx, EvItemReturned, map[string]any{"barcode": late.barcode, "scanner": late.scanner, "late": true})
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
		return l.completePickup(tx, o, o.Compartments, late.via, late.scanner, true)
	case OpLoad:
		if o.State == OrderAssigned && (c.State == CompFree || c.State == CompReserved && c.OrderID == o.ID) {
			c.State, c.Op, c.OrderID = CompOpen, OpLoad, o.ID
		}
	case OpRetrieve:
		if o.NeedsRetrieval() && c.OrderID == o.ID {
			c.State, c.Op = CompOpen, OpRetrieve
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
		l.noteLate(id, func(lo *lateOp) { lo.op, lo.orderID = c.Op, c.OrderID })
		p := prev[id]
		c.State, c.Op, c.OrderID = p.State, p.Op, p.OrderID
		if lockErr, fault := lockErrs[id]; fault {
			if err := l.record(tx, EvDoorJammed, map[string]any{"compartment": id, "commanded": true, "jams": c.Jams, "lock_error": lockErr}); err != nil {
				return err
			}
			l.log.Warn("door not opened: lock driver failed", "compartment", id, "err", lockErr)
			if err := tx.PutCompartment(c); err != nil {
				return err
			}
			continue
		}
		c.Jams++
		if err := l.record(tx, EvDoorJammed, map[string]any{"compartment": id, "commanded": true, "jams": c.Jams}); err != nil {
			return err
		}
		if c.Jams >= 2 && !c.OutOfService {
			c.OutOfService = true
			if err := l.record(tx, EvCompartmentService, map[string]any{"compartment": id, "in_service": false, "reason": "jammed"}); err != nil {
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

func (l *Locker) pickup(ctx context.Context, dev Device, o Order, via string) ScanResult {
	if !l.claim(o.ID) {
		return ScanResult{Outcome: OutcomeDenied, Reason: "busy", OrderID: o.ID}
	}
	defer l.release(o.ID)
	ids, unusable, prev, err := l.beginOpen(o.Compartments, OpPickup, o.ID)
	if err != nil {
		l.log.Error("pickup not started: store", "order", o.ID, "err", err)
		return ScanResult{Outcome: OutcomeError, Reason: "store"}
	}
	if len(unusable) > 0 || len(ids) == 0 {
		// Put back what beginOpen marked; the order waits for a technician.
		l.revert(prev)
		return l.deny(dev, o.ID, DenyNotReady)
	}
	opened, jammed, lockErrs := l.openDoors(ctx, ids)
	for _, id := range jammed {
		l.noteLate(id, func(lo *lateOp) { lo.via, lo.scanner = via, dev.Name })
	}
	var res ScanResult
	err = l.update(func(tx Tx) error {
		if err := l.endOpen(tx, opened, jammed, lockErrs, prev); err != nil {
			return err
		}
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
	})
	if err != nil {
		l.log.Error("pickup outcome not recorded", "order", o.ID, "err", err)
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
	ids, _, prev, err := l.beginOpen(ids, OpPickup, o.ID)
	if err != nil {
		return ScanResult{Outcome: OutcomeError, Reason: "store"}
	}
	opened, jammed, lockErrs := l.openDoors(ctx, ids)
	if err := l.update(func(tx Tx) error { return l.endOpen(tx, opened, jammed, lockErrs, prev) }); err != nil {
		l.log.Error("reopen outcome", "err", err)
	}
	l.log.Info("reopened within grace", "order", o.ID, "compartments", opened)
	if len(jammed) > 0 {
		return ScanResult{Outcome: OutcomeJammed, OrderID: o.ID, Compartments: jammed}
	}
	return ScanResult{Outcome: OutcomeOpened, OrderID: o.ID, Compartments: opened, Reason: "reopen"}
}
