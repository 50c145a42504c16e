package sim

import (
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/lockerd/lockerd/locker"
)

// Door is one simulated door: a lock output and a sensor input.
type Door struct {
	ID     string
	Lock   string
	Sensor string // may be empty (a flap without a sensor)
	// ItemSensor reads active while something lies inside ("" = none).
	ItemSensor string
}

// Config describes the simulated cabinet.
type Config struct {
	Doors          []Door
	BinFullSensor  string
	Outputs        []string      // signal outputs (buzzer, status LED)
	OpenDelay      time.Duration // pulse → door open
	AutoClose      time.Duration // open → closed again; 0 = stays open
	RelayActiveLow bool          // energised = low level
}

type door struct {
	Door
	open      bool
	jammed    bool
	lockDead  bool          // the lock's driver fails every pulse (a silent lock board)
	lostReply bool          // the lock acts, but its driver reports a failure (a board whose reply is lost)
	slow      time.Duration // the door opens this long after a pulse (0: Config.OpenDelay)
	stuck     *bool         // sensor stuck at this reading
	items     int           // things lying inside (put and taken through the open door)
	timer     *time.Timer
}

func (d *door) reading() bool {
	if d.stuck != nil {
		return *d.stuck
	}
	return d.open
}

// PulseRecord is one lock pulse as seen on the output.
type PulseRecord struct {
	Lock     string
	At       time.Time
	Duration time.Duration
}

// Hardware is the simulated cabinet. It implements locker.Hardware.
type Hardware struct {
	cfg Config

	mu        sync.Mutex
	doors     map[string]*door // by id
	byLock    map[string]*door
	bySensor  map[string]*door
	byItem    map[string]*door // by item sensor
	high      map[string]bool  // electrical level of each lock output
	energised int
	maxEnerg  int
	pulses    []PulseRecord
	binFull   bool
	closed    bool
	onPulse   func(lock string, at time.Time)
	outputs   map[string][]OutputChange
	offline   bool // the controller is not answering (SetOffline)

	faults chan locker.HardwareFault

	sendMu sync.Mutex
	inputs chan locker.InputChange
}

var (
	_ locker.Hardware      = (*Hardware)(nil)
	_ locker.FaultReporter = (*Hardware)(nil)
)

// ControllerDevice names the simulated controller in hardware faults.
const ControllerDevice = "sim controller"

// New builds the cabinet and drives every lock output to its locked level
// before returning.
func New(cfg Config) (*Hardware, error) {
	h := &Hardware{
		cfg: cfg, doors: map[string]*door{}, byLock: map[string]*door{}, bySensor: map[string]*door{}, byItem: map[string]*door{},
		high: map[string]bool{}, inputs: make(chan locker.InputChange, 1024), outputs: map[string][]OutputChange{},
		faults: make(chan locker.HardwareFault, 64),
	}
	for _, o := range cfg.Outputs {
		h.outputs[o] = nil
	}
	for _, d := range cfg.Doors {
		if _, dup := h.doors[d.ID]; dup {
			return nil, fmt.Errorf("sim: door %s twice", d.ID)
		}
		if _, dup := h.byLock[d.Lock]; dup || d.Lock == "" {
			return nil, fmt.Errorf("sim: door %s: lock %q missing or used twice", d.ID, d.Lock)
		}
		dd := &door{Door: d}
		h.doors[d.ID], h.byLock[d.Lock] = dd, dd
		if d.Sensor != "" {
			h.bySensor[d.Sensor] = dd
		}
		if d.ItemSensor != "" {
			h.byItem[d.ItemSensor] = dd
		}
	}
	if err := h.LockAll(); err != nil {
		return nil, err
	}
	return h, nil
}

func (h *Hardware) lockedLevel() bool { return h.cfg.RelayActiveLow } // active-low: locked = high

// LockAll implements locker.Hardware.
func (h *Hardware) LockAll() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	for lock := range h.byLock {
		h.high[lock] = h.lockedLevel()
	}
	return nil
}

// OnPulse sets a function called (without locks held) when a lock output
// is energised — a timestamp for latency measurements.
func (h *Hardware) OnPulse(f func(lock string, at time.Time)) {
	h.mu.Lock()
	h.onPulse = f
	h.mu.Unlock()
}

// Pulse implements locker.Hardware: the output is energised for d
// (bounded by locker.ClampPulse), then driven back to the locked level.
func (h *Hardware) Pulse(lock string, d time.Duration) error {
	d = locker.ClampPulse(d)
	h.mu.Lock()
	dr := h.byLock[lock]
	if dr == nil {
		h.mu.Unlock()
		return fmt.Errorf("sim: no lock %q", lock)
	}
	if h.closed {
		h.mu.Unlock()
		return fmt.Errorf("sim: closed")
	}
	if dr.lockDead {
		h.mu.Unlock()
		return fmt.Errorf("sim: lock %s: driver not answering", lock)
	}
	if h.offline {
		h.mu.Unlock()
		return fmt.Errorf("sim: lock %s: %s not answering", lock, ControllerDevice)
	}
	at := time.Now()
	h.high[lock] = !h.lockedLevel()
	h.energised++
	h.maxEnerg = max(h.maxEnerg, h.energised)
	h.pulses = append(h.pulses, PulseRecord{Lock: lock, At: at, Duration: d})
	if len(h.pulses) > 4096 {
		h.pulses = h.pulses[len(h.pulses)-2048:]
	}
	if !dr.jammed && !dr.open {
		delay := h.cfg.OpenDelay
		if dr.slow > 0 {
			delay = dr.slow
		}
		time.AfterFunc(delay, func() { h.setOpen(dr.ID, true) })
	}
	cb := h.onPulse
	lost := dr.lostReply
	h.mu.Unlock()
	if cb != nil {
		cb(lock, at)
	}
	time.Sleep(d)
	h.mu.Lock()
	h.high[lock] = h.lockedLevel()
	h.energised--
	h.mu.Unlock()
	if lost {
		return fmt.Errorf("sim: lock %s: no reply (the lock acted)", lock)
	}
	return nil
}

// setOpen moves a door and reports a sensor change if the reading changed.
func (h *Hardware) setOpen(id string, open bool) {
	h.mu.Lock()
	d := h.doors[id]
	if d == nil || h.closed || d.open == open {
		h.mu.Unlock()
		return
	}
	before := d.reading()
	d.open = open
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	if open && h.cfg.AutoClose > 0 {
		d.timer = time.AfterFunc(h.cfg.AutoClose, func() { h.setOpen(id, false) })
	}
	after := d.reading()
	h.mu.Unlock()
	if before != after && d.Sensor != "" {
		h.send(locker.InputChange{Pin: d.Sensor, Active: after, At: time.Now()})
	}
}

func (h *Hardware) send(ch locker.InputChange) {
	h.sendMu.Lock()
	defer h.sendMu.Unlock()
	h.mu.Lock()
	// An offline controller reports nothing; SetOffline(false) sends every
	// reading once it is back.
	quiet := h.closed || h.offline
	h.mu.Unlock()
	if !quiet {
		h.inputs <- ch
	}
}

// Faults implements locker.FaultReporter: a report each time the
// controller goes offline or comes back (SetOffline).
func (h *Hardware) Faults() <-chan locker.HardwareFault { return h.faults }

// SetOffline makes the whole simulated controller stop answering, as a
// lock board does when it loses power or its adapter is unplugged: every
// lock and sensor reads as unknown and every pulse fails until it is back.
// The door physics go on meanwhile; when it is back, every sensor's
// reading is sent, so a door that moved in between is reported.
func (h *Hardware) SetOffline(off bool) error {
	h.mu.Lock()
	if h.closed || h.offline == off {
		h.mu.Unlock()
		return nil
	}
	h.offline = off
	var readings []locker.InputChange
	now := time.Now()
	if !off {
		for _, d := range h.doors {
			if d.Sensor != "" {
				readings = append(readings, locker.InputChange{Pin: d.Sensor, Active: d.reading(), At: now})
			}
		}
		if h.cfg.BinFullSensor != "" {
			readings = append(readings, locker.InputChange{Pin: h.cfg.BinFullSensor, Active: h.binFull, At: now})
		}
	}
	h.mu.Unlock()
	f := locker.HardwareFault{Device: ControllerDevice, OK: !off, At: now}
	if off {
		f.Detail = "simulated: the controller stopped answering; doors unknown"
	}
	select {
	case h.faults <- f:
	default: // nobody is reading faults; the state is in Read and Pulse
	}
	sort.Slice(readings, func(i, j int) bool { return readings[i].Pin < readings[j].Pin })
	for _, r := range readings {
		h.send(r)
	}
	return nil
}

// OutputChange is a signal output switched on or off.
type OutputChange struct {
	On bool      `json:"on"`
	At time.Time `json:"at"`
}

// SetOutput implements locker.Hardware for the signal outputs.
func (h *Hardware) SetOutput(pin string, on bool) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	log, ok := h.outputs[pin]
	if !ok {
		return fmt.Errorf("sim: %q is not a signal output", pin)
	}
	if len(log) > 0 && log[len(log)-1].On == on {
		return nil
	}
	if len(log) > 1024 {
		log = log[len(log)-512:]
	}
	h.outputs[pin] = append(log, OutputChange{On: on, At: time.Now()})
	return nil
}

// Outputs returns each signal output's recent changes.
func (h *Hardware) Outputs() map[string][]OutputChange {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string][]OutputChange, len(h.outputs))
	for k, v := range h.outputs {
		out[k] = append([]OutputChange(nil), v...)
	}
	return out
}

// Read implements locker.Hardware.
func (h *Hardware) Read(pin string) (bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	d := h.bySensor[pin]
	item := h.byItem[pin]
	if d == nil && item == nil && (pin == "" || pin != h.cfg.BinFullSensor) {
		return false, fmt.Errorf("sim: no input %q", pin)
	}
	if h.offline {
		return false, fmt.Errorf("sim: %s unknown: %s not answering", pin, ControllerDevice)
	}
	if item != nil {
		return item.items > 0, nil
	}
	if d == nil {
		return h.binFull, nil
	}
	return d.reading(), nil
}

// Inputs implements locker.Hardware.
func (h *Hardware) Inputs() <-chan locker.InputChange { return h.inputs }

// Close implements locker.Hardware: locks to locked level, timers stopped.
func (h *Hardware) Close() error {
	h.LockAll()
	h.mu.Lock()
	h.closed = true
	for _, d := range h.doors {
		if d.timer != nil {
			d.timer.Stop()
		}
	}
	h.mu.Unlock()
	return nil
}

// Fault injection and inspection — used by `lockerctl sim`, the demo, and
// tests.

func (h *Hardware) door(id string) (*door, error) {
	d := h.doors[id]
	if d == nil {
		return nil, fmt.Errorf("sim: no door %q", id)
	}
	return d, nil
}

// Jam makes pulses on door id do nothing (or work again).
func (h *Hardware) Jam(id string, jammed bool) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	d, err := h.door(id)
	if err == nil {
		d.jammed = jammed
	}
	return err
}

// FailLock makes every pulse of door id's lock fail with an error, as a
// lock board that does not answer does (or work again).
func (h *Hardware) FailLock(id string, dead bool) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	d, err := h.door(id)
	if err == nil {
		d.lockDead = dead
	}
	return err
}

// SlowDoor makes door id open delay after a pulse (a latch that sticks,
// a board that acts late); 0 restores the configured delay.
func (h *Hardware) SlowDoor(id string, delay time.Duration) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	d, err := h.door(id)
	if err == nil {
		d.slow = delay
	}
	return err
}

// LoseLockReply makes every pulse of door id's lock act but report a
// failure, as a lock board whose reply is lost or comes after the
// driver's timeout (or work normally again).
func (h *Hardware) LoseLockReply(id string, lost bool) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	d, err := h.door(id)
	if err == nil {
		d.lostReply = lost
	}
	return err
}

// Open opens door id by hand (forced, if nothing was commanded).
func (h *Hardware) Open(id string) error {
	h.mu.Lock()
	_, err := h.door(id)
	h.mu.Unlock()
	if err == nil {
		h.setOpen(id, true)
	}
	return err
}

// Close closes door id by hand.
func (h *Hardware) CloseDoor(id string) error {
	h.mu.Lock()
	_, err := h.door(id)
	h.mu.Unlock()
	if err == nil {
		h.setOpen(id, false)
	}
	return err
}

// StickSensor makes door id's sensor read reading whatever the door does;
// nil frees it.
func (h *Hardware) StickSensor(id string, reading *bool) error {
	h.mu.Lock()
	d, err := h.door(id)
	if err != nil {
		h.mu.Unlock()
		return err
	}
	before := d.reading()
	d.stuck = reading
	after := d.reading()
	h.mu.Unlock()
	if before != after && d.Sensor != "" {
		h.send(locker.InputChange{Pin: d.Sensor, Active: after, At: time.Now()})
	}
	return nil
}

// Put puts n things into compartment id (n < 0 takes them out): only
// through an open door, as a hand would. Its item sensor reports the
// change.
func (h *Hardware) Put(id string, n int) error {
	h.mu.Lock()
	d, err := h.door(id)
	if err == nil && !d.open {
		err = fmt.Errorf("sim: door %s is closed: nothing goes in or out", id)
	}
	if err == nil && d.ItemSensor == "" {
		err = fmt.Errorf("sim: door %s has no item sensor", id)
	}
	if err != nil {
		h.mu.Unlock()
		return err
	}
	before := d.items > 0
	d.items = max(d.items+n, 0)
	after := d.items > 0
	h.mu.Unlock()
	if before != after {
		h.send(locker.InputChange{Pin: d.ItemSensor, Active: after, At: time.Now()})
	}
	return nil
}

// SetBinFull sets the return bin's fill sensor.
func (h *Hardware) SetBinFull(full bool) error {
	h.mu.Lock()
	if h.cfg.BinFullSensor == "" {
		h.mu.Unlock()
		return fmt.Errorf("sim: no bin-full sensor configured")
	}
	changed := h.binFull != full
	h.binFull = full
	h.mu.Unlock()
	if changed {
		h.send(locker.InputChange{Pin: h.cfg.BinFullSensor, Active: full, At: time.Now()})
	}
	return nil
}

// DoorState is one door as the simulator sees it.
type DoorState struct {
	ID      string `json:"id"`
	Open    bool   `json:"open"`
	Reading bool   `json:"sensor"`
	Jammed  bool   `json:"jammed"`
	Stuck   bool   `json:"stuck"`
	LockHi  bool   `json:"lock_level_high"`
	Pulses  int    `json:"pulses"` // recent pulses of its lock
	Items   int    `json:"items,omitempty"`
}

// State lists every door.
func (h *Hardware) State() []DoorState {
	h.mu.Lock()
	defer h.mu.Unlock()
	pulses := map[string]int{}
	for _, p := range h.pulses {
		pulses[p.Lock]++
	}
	var out []DoorState
	for _, d := range h.doors {
		out = append(out, DoorState{ID: d.ID, Open: d.open, Reading: d.reading(), Jammed: d.jammed, Stuck: d.stuck != nil,
			LockHi: h.high[d.Lock], Pulses: pulses[d.Lock], Items: d.items})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// LevelHigh is the electrical level of a lock output.
func (h *Hardware) LevelHigh(lock string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.high[lock]
}

// Pulses returns the recent pulses, oldest first.
func (h *Hardware) Pulses() []PulseRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]PulseRecord(nil), h.pulses...)
}

// MaxEnergised is the most lock outputs ever energised at once.
func (h *Hardware) MaxEnergised() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.maxEnerg
}
