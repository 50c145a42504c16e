package gpiohw

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"github.com/lockerd/lockerd/locker"
)

// cabinet is a bench of periph fake pins: locks record every level they
// are driven to, sensors take edges through EdgesChan.
type cabinet struct {
	mu        sync.Mutex
	levels    map[string][]gpio.Level
	energised atomic.Int32
	maxEnerg  atomic.Int32
	activeLow bool
	sensors   map[string]*gpiotest.Pin
	pins      PinMap
}

// recPin records the levels driven on a lock line and counts energised
// lines across the cabinet.
type recPin struct {
	*gpiotest.Pin
	c *cabinet
}

func (p *recPin) Out(l gpio.Level) error {
	c := p.c
	c.mu.Lock()
	prev := c.levels[p.N]
	c.levels[p.N] = append(prev, l)
	wasOn := len(prev) > 0 && bool(prev[len(prev)-1]) != c.activeLow
	c.mu.Unlock()
	on := bool(l) != c.activeLow
	switch {
	case on && !wasOn:
		n := c.energised.Add(1)
		for m := c.maxEnerg.Load(); n > m && !c.maxEnerg.CompareAndSwap(m, n); m = c.maxEnerg.Load() {
		}
	case !on && wasOn:
		c.energised.Add(-1)
	}
	return p.Pin.Out(l)
}

func (c *cabinet) history(lock string) []gpio.Level {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]gpio.Level(nil), c.levels[lock]...)
}

func newCabinet(t *testing.T, cfg Config) (*Hardware, *cabinet) {
	t.Helper()
	c := &cabinet{levels: map[string][]gpio.Level{}, activeLow: cfg.RelayActiveLow, sensors: map[string]*gpiotest.Pin{}, pins: PinMap{}}
	for i, name := range cfg.Locks {
		c.pins[name] = &recPin{Pin: &gpiotest.Pin{N: name, Num: i}, c: c}
	}
	for i, name := range append(append([]string(nil), cfg.Sensors...), cfg.Signals...) {
		p := &gpiotest.Pin{N: name, Num: 100 + i, EdgesChan: make(chan gpio.Level, 16)}
		c.sensors[name], c.pins[name] = p, p
	}
	if cfg.Reread == 0 {
		cfg.Reread = 20 * time.Millisecond
	}
	h, err := New(c.pins, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h, c
}

func next(t *testing.T, h *Hardware) locker.InputChange {
	t.Helper()
	select {
	case ch := <-h.Inputs():
		return ch
	case <-time.After(5 * time.Second):
		t.Fatal("no input change reported")
	}
	return locker.InputChange{}
}

func TestLocksFirstShowLockedLevelAndArePulsed(t *testing.T) {
	for _, activeLow := range []bool{true, false} {
		t.Run(fmt.Sprintf("active_low=%v", activeLow), func(t *testing.T) {
			h, c := newCabinet(t, Config{Locks: []string{"GPIO4", "GPIO5"}, RelayActiveLow: activeLow, MaxConcurrent: 2})
			locked := gpio.Level(activeLow)
			for _, l := range []string{"GPIO4", "GPIO5"} {
				if got := c.history(l); len(got) != 1 || got[0] != locked {
					t.Fatalf("%s levels after start %v, want only the locked level %v", l, got, locked)
				}
			}
			if err := h.Pulse("GPIO4", 60*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			if got, want := c.history("GPIO4"), []gpio.Level{locked, !locked, locked}; fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("GPIO4 levels %v, want %v", got, want)
			}
			if got := c.history("GPIO5"); len(got) != 1 {
				t.Errorf("GPIO5 touched by GPIO4's pulse: %v", got)
			}
			if err := h.SetOutput("GPIO4", true); err == nil {
				t.Error("SetOutput on a lock accepted: a lock must only be pulsed")
			}
			if err := h.Pulse("GPIO99", time.Millisecond); err == nil {
				t.Error("pulse of an unknown lock accepted")
			}
			if err := h.Close(); err != nil {
				t.Fatal(err)
			}
			if got := c.history("GPIO5"); got[len(got)-1] != locked {
				t.Errorf("GPIO5 not locked on close: %v", got)
			}
			if err := h.Pulse("GPIO4", time.Millisecond); err == nil {
				t.Error("pulse after close accepted")
			}
		})
	}
}

// A pulse asked for far longer than the bound ends at the bound.
func TestPulseIsBounded(t *testing.T) {
	h, c := newCabinet(t, Config{Locks: []string{"GPIO4"}, RelayActiveLow: true, MaxConcurrent: 1})
	start := time.Now()
	if err := h.Pulse("GPIO4", time.Hour); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > locker.MaxLockPulse+time.Second {
		t.Fatalf("a 1h pulse held the lock for %v, bound is %v", took, locker.MaxLockPulse)
	}
	if got := c.history("GPIO4"); len(got) != 3 || got[2] != gpio.High {
		t.Fatalf("levels %v", got)
	}
}

func TestConcurrentPulseLimit(t *testing.T) {
	var locks []string
	for i := range 6 {
		locks = append(locks, fmt.Sprintf("GPIO%d", 4+i))
	}
	h, c := newCabinet(t, Config{Locks: locks, RelayActiveLow: true, MaxConcurrent: 2})
	var wg sync.WaitGroup
	for _, l := range locks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := h.Pulse(l, 60*time.Millisecond); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if m := c.maxEnerg.Load(); m != 2 {
		t.Errorf("at most %d locks energised at once, want exactly the limit 2", m)
	}
	if c.energised.Load() != 0 {
		t.Errorf("%d locks left energised", c.energised.Load())
	}
	if h.Pulses() != 6 {
		t.Errorf("%d pulses, want 6", h.Pulses())
	}
}

func TestSensorEdgesDebounceAndReread(t *testing.T) {
	h, c := newCabinet(t, Config{Sensors: []string{"GPIO17"}, Pull: gpio.PullUp, Debounce: 30 * time.Millisecond, Reread: 50 * time.Millisecond})
	door := c.sensors["GPIO17"]
	// The pull-up leaves the line high: active (open) at start.
	if open, _ := h.Read("GPIO17"); !open {
		t.Fatal("line pulled up, not read as active")
	}

	// A clean edge.
	door.EdgesChan <- gpio.Low
	if ch := next(t, h); ch.Pin != "GPIO17" || ch.Active {
		t.Fatalf("after a falling edge got %+v", ch)
	}

	// A bouncing switch: five edges inside the debounce window settle on
	// high; one change is reported.
	for _, l := range []gpio.Level{gpio.High, gpio.Low, gpio.High, gpio.Low, gpio.High} {
		door.EdgesChan <- l
	}
	if ch := next(t, h); !ch.Active {
		t.Fatalf("after bounce got %+v", ch)
	}
	// A missed edge: the line goes low with no event; the re-read heals it.
	door.Lock()
	door.L = gpio.Low
	door.Unlock()
	if ch := next(t, h); ch.Active {
		t.Fatalf("after a missed edge got %+v", ch)
	}
	// The bounce produced exactly one change: nothing else is queued.
	select {
	case ch := <-h.Inputs():
		t.Fatalf("extra change %+v", ch)
	default:
	}
	if open, _ := h.Read("GPIO17"); open {
		t.Error("Read disagrees with the last change")
	}
}

func TestSensorActiveLow(t *testing.T) {
	h, c := newCabinet(t, Config{Sensors: []string{"GPIO26"}, SensorActiveLow: true, Pull: gpio.PullUp, Debounce: 5 * time.Millisecond})
	if full, _ := h.Read("GPIO26"); full {
		t.Fatal("active-low input read active at a high level")
	}
	c.sensors["GPIO26"].EdgesChan <- gpio.Low
	if ch := next(t, h); !ch.Active {
		t.Fatalf("active-low input low, reported %+v", ch)
	}
}

func TestSignalOutputs(t *testing.T) {
	h, c := newCabinet(t, Config{Locks: []string{"GPIO4"}, Signals: []string{"GPIO12"}, RelayActiveLow: true})
	if err := h.SetOutput("GPIO12", true); err != nil {
		t.Fatal(err)
	}
	if c.sensors["GPIO12"].Read() != gpio.High {
		t.Error("buzzer not on")
	}
}

func TestNewReleasesOnError(t *testing.T) {
	_, err := New(PinMap{"GPIO4": &gpiotest.Pin{N: "GPIO4"}}, Config{Locks: []string{"GPIO4", "GPIO99"}})
	if err == nil {
		t.Fatal("missing pin accepted")
	}
}

// A pulse in progress when lockerd stops (any stop signal ends in Close)
// is cut short and its lock ends at the locked level; nothing energises
// a lock after that.
func TestCloseDuringPulseEndsLocked(t *testing.T) {
	for _, activeLow := range []bool{true, false} {
		h, c := newCabinet(t, Config{Locks: []string{"L1", "L2"}, RelayActiveLow: activeLow, MaxConcurrent: 2})
		locked := gpio.Level(activeLow)
		pulsed := make(chan error, 1)
		go func() { pulsed <- h.Pulse("L1", 2*time.Second) }()
		for len(c.history("L1")) < 2 { // locked at New, then energised
			time.Sleep(time.Millisecond)
		}
		if err := h.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-pulsed; err != nil {
			t.Fatalf("pulse cut short by Close: %v", err)
		}
		if err := h.Pulse("L2", time.Second); err == nil {
			t.Fatal("a pulse after Close was accepted")
		}
		for _, lock := range []string{"L1", "L2"} {
			hist := c.history(lock)
			if last := hist[len(hist)-1]; last != locked {
				t.Fatalf("active-low %v: %s ends at %v after Close (history %v), want locked %v", activeLow, lock, last, hist, locked)
			}
		}
		if n := c.energised.Load(); n != 0 {
			t.Fatalf("%d locks still energised after Close", n)
		}
	}
}
