package gpiohw

import (
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"periph.io/x/conn/v3/gpio"

	"github.com/lockerd/lockerd/locker"
)

// InputLine is a sensor input as periph's gpio.PinIn offers it.
type InputLine interface {
	In(pull gpio.Pull, edge gpio.Edge) error
	Read() gpio.Level
	// WaitForEdge is always called with a positive timeout: periph's
	// implementations disagree on what 0 and -1 mean.
	WaitForEdge(timeout time.Duration) bool
	Halt() error
}

// OutputLine is an output line that is already driving its first level.
type OutputLine interface {
	Out(l gpio.Level) error
}

// Pins resolves the config's pin names to lines.
type Pins interface {
	// Output requests name as an output whose very first level is
	// initial: a lock line must never show its unlocked level, not even
	// for the microseconds between the request and the first write.
	Output(name string, initial gpio.Level) (OutputLine, error)
	// Input requests name as an input with pull and both-edge detection.
	Input(name string, pull gpio.Pull) (InputLine, error)
	Close() error
}

// Config is the wiring and its electrical conventions.
type Config struct {
	Locks   []string // lock outputs (pulsed, never held)
	Sensors []string // door and bin-full inputs
	Signals []string // buzzer, status LED (active high)

	RelayActiveLow  bool // a lock is energised by a low level
	SensorActiveLow bool // a sensor is active (door open, bin full) at a low level
	Pull            gpio.Pull

	// Debounce is how long an input must stay quiet after an edge before
	// its level counts (0: no debounce). Reread is how often an input is
	// read with no edge seen, so a missed edge heals within it.
	Debounce time.Duration
	Reread   time.Duration
	// MaxConcurrent bounds how many locks are energised at once (the
	// supply's budget), whoever asks.
	MaxConcurrent int
	Log           *slog.Logger
}

type lock struct {
	name string
	line OutputLine
}

type sensor struct {
	name   string
	line   InputLine
	mu     sync.Mutex
	active bool
}

// Hardware implements locker.Hardware on GPIO lines.
type Hardware struct {
	cfg     Config
	pins    Pins
	locks   map[string]*lock
	sensors map[string]*sensor
	signals map[string]OutputLine
	slots   chan struct{} // one token per lock allowed energised at once
	inputs  chan locker.InputChange
	log     *slog.Logger

	stopped  atomic.Bool
	stop     chan struct{}
	wg       sync.WaitGroup
	pulses   atomic.Int64
	lockMu   sync.Mutex // serialises writes to lock lines
	closeErr error
	once     sync.Once
}

var _ locker.Hardware = (*Hardware)(nil)

// New requests every line, drives every lock to its locked level (as the
// first level each lock line ever shows), reads every sensor and starts
// watching them. On error every line requested so far is released.
func New(pins Pins, cfg Config) (*Hardware, error) {
	if cfg.MaxConcurrent < 1 {
		cfg.MaxConcurrent = 1
	}
	if cfg.Reread <= 0 {
		cfg.Reread = 500 * time.Millisecond
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	h := &Hardware{
		cfg: cfg, pins: pins, locks: map[string]*lock{}, sensors: map[string]*sensor{}, signals: map[string]OutputLine{},
		slots: make(chan struct{}, cfg.MaxConcurrent), inputs: make(chan locker.InputChange, 256),
		log: cfg.Log, stop: make(chan struct{}),
	}
	fail := func(err error) (*Hardware, error) {
		_ = pins.Close()
		return nil, err
	}
	for _, name := range cfg.Locks {
		if _, dup := h.locks[name]; dup {
			return fail(fmt.Errorf("gpio: lock %s listed twice", name))
		}
		line, err := pins.Output(name, h.lockedLevel())
		if err != nil {
			return fail(fmt.Errorf("gpio: lock %s: %w", name, err))
		}
		h.locks[name] = &lock{name: name, line: line}
	}
	for _, name := range cfg.Signals {
		line, err := pins.Output(name, gpio.Low)
		if err != nil {
			return fail(fmt.Errorf("gpio: output %s: %w", name, err))
		}
		h.signals[name] = line
	}
	for _, name := range cfg.Sensors {
		line, err := pins.Input(name, cfg.Pull)
		if err != nil {
			return fail(fmt.Errorf("gpio: sensor %s: %w", name, err))
		}
		s := &sensor{name: name, line: line}
		s.active = h.activeAt(line.Read())
		h.sensors[name] = s
	}
	for _, s := range h.sensors {
		h.wg.Add(1)
		go h.watch(s)
	}
	return h, nil
}

func (h *Hardware) lockedLevel() gpio.Level { return gpio.Level(h.cfg.RelayActiveLow) } // active-low: locked = high

func (h *Hardware) activeAt(l gpio.Level) bool { return bool(l) != h.cfg.SensorActiveLow }

// LockAll implements locker.Hardware.
func (h *Hardware) LockAll() error {
	h.lockMu.Lock()
	defer h.lockMu.Unlock()
	var errs []error
	for _, name := range h.lockNames() {
		if err := h.locks[name].line.Out(h.lockedLevel()); err != nil {
			errs = append(errs, fmt.Errorf("gpio: lock %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

func (h *Hardware) lockNames() []string {
	names := make([]string, 0, len(h.locks))
	for n := range h.locks {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Pulse implements locker.Hardware: d is bounded by locker.ClampPulse, at
// most Config.MaxConcurrent locks are energised at once, and the line is
// driven back to its locked level even if energising failed half-way.
func (h *Hardware) Pulse(name string, d time.Duration) error {
	l := h.locks[name]
	if l == nil {
		return fmt.Errorf("gpio: no lock %q", name)
	}
	if h.stopped.Load() {
		return errors.New("gpio: hardware closed")
	}
	d = locker.ClampPulse(d)
	select {
	case h.slots <- struct{}{}:
	case <-h.stop:
		return errors.New("gpio: hardware closed")
	}
	defer func() { <-h.slots }()

	h.lockMu.Lock()
	err := l.line.Out(!h.lockedLevel())
	h.lockMu.Unlock()
	if err == nil {
		h.pulses.Add(1)
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-h.stop: // closing: cut the pulse short
			t.Stop()
		}
	}
	h.lockMu.Lock()
	back := l.line.Out(h.lockedLevel())
	h.lockMu.Unlock()
	if back != nil {
		// A relay left energised is the one failure that matters: say so
		// loudly; the caller's LockAll and the next pulse try again.
		h.log.Error("lock line not driven back to locked", "lock", name, "err", back)
		return fmt.Errorf("gpio: lock %s: relocking: %w", name, back)
	}
	if err != nil {
		return fmt.Errorf("gpio: lock %s: %w", name, err)
	}
	return nil
}

// Pulses counts pulses energised since New.
func (h *Hardware) Pulses() int64 { return h.pulses.Load() }

// Read implements locker.Hardware: the debounced level, kept in software.
func (h *Hardware) Read(pin string) (bool, error) {
	s := h.sensors[pin]
	if s == nil {
		return false, fmt.Errorf("gpio: no sensor %q", pin)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.active, nil
}

// Inputs implements locker.Hardware.
func (h *Hardware) Inputs() <-chan locker.InputChange { return h.inputs }

// SetOutput implements locker.Hardware for signal outputs only; a lock is
// never held.
func (h *Hardware) SetOutput(pin string, on bool) error {
	if _, isLock := h.locks[pin]; isLock {
		return fmt.Errorf("gpio: %s is a lock: it is only ever pulsed", pin)
	}
	o := h.signals[pin]
	if o == nil {
		return fmt.Errorf("gpio: no output %q", pin)
	}
	return o.Out(gpio.Level(on))
}

// watch follows one sensor: an edge starts a settle wait that lasts until
// the line has been quiet for Debounce; no edge within Reread reads the
// line anyway. Either way the level is compared with the one last
// reported.
func (h *Hardware) watch(s *sensor) {
	defer h.wg.Done()
	for !h.stopped.Load() {
		if s.line.WaitForEdge(h.cfg.Reread) && h.cfg.Debounce > 0 {
			// A line that never stops bouncing is read after Reread anyway.
			deadline := time.Now().Add(h.cfg.Reread)
			for !h.stopped.Load() && time.Now().Before(deadline) && s.line.WaitForEdge(h.cfg.Debounce) {
			}
		}
		if h.stopped.Load() {
			return
		}
		h.sample(s)
	}
}

func (h *Hardware) sample(s *sensor) {
	active := h.activeAt(s.line.Read())
	s.mu.Lock()
	changed := active != s.active
	s.active = active
	s.mu.Unlock()
	if !changed {
		return
	}
	select {
	case h.inputs <- locker.InputChange{Pin: s.name, Active: active, At: time.Now()}:
	case <-h.stop:
	}
}

// Close stops the watchers, drives every lock to its locked level and
// releases the lines.
func (h *Hardware) Close() error {
	h.once.Do(func() {
		h.stopped.Store(true)
		close(h.stop)
		for _, s := range h.sensors {
			_ = s.line.Halt()
		}
		h.wg.Wait()
		// Wait for pulses in flight (cut short by stop) to re-lock.
		for range cap(h.slots) {
			h.slots <- struct{}{}
		}
		h.closeErr = errors.Join(h.LockAll(), h.pins.Close())
	})
	return h.closeErr
}
