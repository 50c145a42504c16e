package locker

// The Locker's lifecycle and input handling: New, Start (locks to
// locked, sensors read, interrupted operations settled), Run (sensor
// changes, faults, the periodic Tick) and its shutdown.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lockerd/lockerd/locker/fanout"
)

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
	doors    *doors

	devices   map[string]Device
	itemPins  map[string]bool  // item sensor inputs: read when a door closes, their changes not events
	cfgBadges map[string]Badge // the config's badges, by hash

	mu           sync.Mutex
	binFull      bool
	binReported  bool                     // return_bin.full recorded for the current full spell
	emptyingBy   string                   // the badge emptying the return bin ("" = no emptying)
	lastEmptied  *ReturnBinEmptied        // what the last emptying collected (this run)
	card         *pendingCard             // a library card waiting for its PIN
	patrons      PatronChecker            // the central's card check (nil: none)
	holds        HoldAsker                // the central's hold lookup (nil: none)
	sessions     map[string]*staffSession // by device name
	busy         map[string]bool          // order ids being handled
	bg           context.Context          // for work started by door events
	events       *eventOrder
	notices      *fanout.Fanout[Notice]
	scanners     map[string]bool // connected, by name
	hardware     map[string]bool // answering, by device (lock boards, their bus)
	trust        *ClockTrust
	untrusted    atomic.Bool  // expiry is waiting for a trustworthy clock (logged once)
	storeFailing atomic.Bool  // the last store write failed
	lastTick     atomic.Int64 // unix nanos of the run loop's last tick
	space        atomic.Pointer[SpaceLimits]
	spaceChecked atomic.Int64 // unix nanos of the last headroom check
	spaceLow     atomic.Bool  // store.low_space raised and not yet cleared
	fault        atomic.Pointer[string]
	lastPurge    atomic.Int64   // unix nanos of the last purge run
	wg           sync.WaitGroup // goroutines started by Run and spawn
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
		doors:     newDoors(set.MaxConcurrentPulses),
		events:    newEventOrder(),
		notices:   fanout.New[Notice](64),
		devices:   map[string]Device{},
		cfgBadges: map[string]Badge{},
		itemPins:  map[string]bool{},
		sessions:  map[string]*staffSession{},
		busy:      map[string]bool{},
		bg:        context.Background(),
	}
	for _, d := range set.Devices {
		l.devices[d.Name] = d
	}
	for _, c := range set.Compartments {
		l.doors.add(c.ID, c.Lock, c.Sensor)
		if c.ItemSensor != "" {
			l.itemPins[c.ItemSensor] = true
		}
	}
	if r := set.Return; r != nil {
		l.doors.add(ReturnSlotID, r.Lock, r.Sensor)
		if r.ServiceLock != "" {
			l.doors.add(ReturnBinID, r.ServiceLock, r.ServiceSensor)
		}
	}
	for i, h := range set.StaffBadges {
		// The anonymous list of before named badges: each is staff.
		h = strings.ToLower(h)
		l.cfgBadges[h] = Badge{Hash: h, Name: fmt.Sprintf("staff #%d", i+1), Role: RoleStaff, Source: BadgeFromConfig}
	}
	for _, b := range set.Badges {
		b.Hash, b.Source = strings.ToLower(b.Hash), BadgeFromConfig
		if err := b.Check(); err != nil {
			return nil, fmt.Errorf("settings: %w", err)
		}
		l.cfgBadges[b.Hash] = b
	}
	return l, nil
}

// record appends one event inside tx.
func (l *Locker) record(tx Tx, d EventData) error {
	_, err := l.appendEvent(tx, d)
	return err
}

func (l *Locker) appendEvent(tx Tx, d EventData) (Event, error) {
	e, err := tx.Record(Event{Type: d.EventType(), TS: l.clock.Now().UTC(), Boot: l.store.Boot(), Data: DataOf(d)})
	if err != nil {
		return Event{}, fmt.Errorf("record %s: %w", d.EventType(), err)
	}
	tx.AfterCommit(func() { l.events.publish(e) })
	return e, nil
}

// recordFact records an event that is a physical fact about order o and
// stores o with FactSeq pointing at it, in tx.
func (l *Locker) recordFact(tx Tx, o *Order, d EventData) error {
	e, err := l.appendEvent(tx, d)
	if err != nil {
		return err
	}
	o.FactSeq = e.Seq
	o.markEnded(l.clock.Now())
	return tx.PutOrder(*o)
}

// recordOne writes a single event in its own transaction.
func (l *Locker) recordOne(d EventData) {
	if err := l.update(func(tx Tx) error { return l.record(tx, d) }); err != nil {
		l.log.Error("event not recorded", "type", d.EventType(), "err", err)
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
		l.events.start(last + 1)
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
	for _, d := range l.doors.all() {
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
		l.doors.atStart(d, active, now)
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
			c.Size, c.Lock, c.Sensor, c.Accessible, c.ItemSensor = cfg.Size, cfg.Lock, cfg.Sensor, cfg.Accessible, cfg.ItemSensor
			if c.State == CompOpen && !l.doors.isOpen(c.ID) {
				if err := l.settleInterrupted(tx, &c); err != nil {
					return err
				}
				l.log.Warn("settled compartment a previous run left open", "compartment", c.ID, "state", c.State)
			}
			if err := tx.PutCompartment(c); err != nil {
				return err
			}
		}
		if err := l.syncConfigBadges(tx); err != nil {
			return err
		}
		if err := l.record(tx, DaemonStarted{Version: version, Compartments: len(l.set.Compartments), DoorsOpen: openAtStart}); err != nil {
			return err
		}
		for _, id := range openAtStart {
			if err := l.record(tx, DoorOpened{Compartment: id, AtStart: true}); err != nil {
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
		if !l.doors.stop(2*MaxLockPulse + 5*time.Second) {
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
			l.recordOne(ReturnBinFull{Source: "sensor"})
		}
		l.log.Info("return bin", "full", ch.Active)
		return
	}
	d := l.doors.byPin[ch.Pin] // fixed at New
	if d == nil && l.itemPins[ch.Pin] {
		return // read when its door closes
	}
	if d == nil {
		l.log.Warn("input change on unknown pin", "pin", ch.Pin)
		return
	}
	// Decisions use the core's clock, not the driver's timestamp, so that
	// all timing rules follow one (injectable) clock.
	changed, commanded, late := l.doors.sensed(d, ch.Active, l.clock.Now())
	if !changed {
		return
	}

	var next *staffSession
	err := l.update(func(tx Tx) error {
		next = nil
		if !ch.Active {
			if err := l.record(tx, DoorClosed{Compartment: d.id, Commanded: commanded}); err != nil {
				return err
			}
			var err error
			next, err = l.finishOnClose(tx, d.id)
			return err
		}
		if err := l.record(tx, DoorOpened{Compartment: d.id, Commanded: commanded, Late: late != nil}); err != nil {
			return err
		}
		if late != nil {
			return l.completeLate(tx, d.id, late)
		}
		if !commanded {
			return l.record(tx, DoorForced{Compartment: d.id})
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

	alarms := l.doors.leftOpen(now, l.set.Policy.DoorLeftOpenAlarm)
	var timedOut []string
	l.mu.Lock()
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
		l.recordOne(DoorLeftOpen{Compartment: a.id, Commanded: a.commanded, OpenS: int(a.openFor.Seconds())})
	}
}

// KeypadDevice is the name of the on-screen keypad input device.
const KeypadDevice = "keypad"
