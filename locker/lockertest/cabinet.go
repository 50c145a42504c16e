package lockertest

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/lockerd/lockerd/drivers/sim"
	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/locker/boltstore"
)

// Key is the fixed pickup key of test cabinets (the protocol test vectors'
// key).
var Key = locker.CodeKey{
	0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
	16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
}

// Cabinet is a running locker on a real bbolt file and simulated hardware.
type Cabinet struct {
	L     *locker.Locker
	Store *boltstore.Store
	HW    *sim.Hardware
	Clock *Clock
	Set   locker.Settings
	// Stop ends the core's Run and returns once Run has returned (the
	// test's cleanup calls it too).
	Stop func()
}

// Settings is a small cabinet: compartments S1, S2 (S), M1 (M), L1 (L), a
// return slot with a bin sensor, scanners "front" (pickup) and "returns".
func Settings() locker.Settings {
	p := locker.DefaultPolicy()
	p.DoorOpenConfirm = 300 * time.Millisecond
	return locker.Settings{
		LockerID: "test-01", Policy: p, LockPulse: 50 * time.Millisecond, MaxConcurrentPulses: 2,
		Compartments: []locker.Compartment{
			{ID: "S1", Size: locker.SizeS, Lock: "L1", Sensor: "D1"},
			{ID: "S2", Size: locker.SizeS, Lock: "L2", Sensor: "D2"},
			{ID: "M1", Size: locker.SizeM, Lock: "L3", Sensor: "D3"},
			{ID: "L1", Size: locker.SizeL, Lock: "L4", Sensor: "D4"},
		},
		Devices: []locker.Device{{Name: "front", Role: locker.RolePickup}, {Name: "returns", Role: locker.RoleReturn},
			{Name: locker.KeypadDevice, Role: locker.RolePickup}},
		Return: &locker.ReturnSlot{Lock: "LR", Sensor: "DR", BinFullSensor: "BIN", Pattern: regexp.MustCompile(`^[0-9]{8,14}$`)},
	}
}

// NewCabinet starts a cabinet with set in t's temp dir; the sim's doors
// open 1 ms after a pulse and stay open (tests close them). It is stopped
// when the test ends.
//
// before, if given, runs on the hardware before the core starts (to open a
// door, fill the bin...).
func NewCabinet(t testing.TB, set locker.Settings, before ...func(*sim.Hardware)) *Cabinet {
	t.Helper()
	return NewCabinetWrapped(t, set, nil, before...)
}

// NewCabinetWrapped is NewCabinet with the core driving wrap(simulator)
// (a driver that misbehaves in a way the simulator does not).
func NewCabinetWrapped(t testing.TB, set locker.Settings, wrap func(*sim.Hardware) locker.Hardware, before ...func(*sim.Hardware)) *Cabinet {
	t.Helper()
	var doors []sim.Door
	for _, c := range set.Compartments {
		doors = append(doors, sim.Door{ID: c.ID, Lock: c.Lock, Sensor: c.Sensor, ItemSensor: c.ItemSensor})
	}
	if r := set.Return; r != nil {
		doors = append(doors, sim.Door{ID: locker.ReturnSlotID, Lock: r.Lock, Sensor: r.Sensor})
		if r.ServiceLock != "" {
			doors = append(doors, sim.Door{ID: locker.ReturnBinID, Lock: r.ServiceLock, Sensor: r.ServiceSensor})
		}
	}
	bin := ""
	if set.Return != nil {
		bin = set.Return.BinFullSensor
	}
	var outputs []string
	for _, o := range []string{set.Buzzer, set.StatusLED} {
		if o != "" {
			outputs = append(outputs, o)
		}
	}
	hw, err := sim.New(sim.Config{Doors: doors, BinFullSensor: bin, Outputs: outputs, OpenDelay: time.Millisecond, RelayActiveLow: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range before {
		f(hw)
	}
	// Drain what the changes above reported: Start reads the sensors.
	for len(hw.Inputs()) > 0 {
		<-hw.Inputs()
	}
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "locker.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	clk := NewClock(time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var drive locker.Hardware = hw
	if wrap != nil {
		drive = wrap(hw)
	}
	l, err := locker.New(set, st, drive, Key, clk, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Start("test"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	stop := func() { cancel(); <-done }
	t.Cleanup(func() {
		stop()
		hw.Close()
		st.Close()
	})
	return &Cabinet{L: l, Store: st, HW: hw, Clock: clk, Set: set, Stop: stop}
}

// Events returns every outbox event.
func (c *Cabinet) Events(t testing.TB) []locker.Event {
	t.Helper()
	evs, err := c.L.Events(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// WaitEvent waits (up to 5 s of real time) until an event of type typ
// whose data matches every key of want is in the outbox, and returns it.
func (c *Cabinet) WaitEvent(t testing.TB, typ locker.EventType, want map[string]any) locker.Event {
	t.Helper()
	live, stop := c.L.Subscribe()
	defer stop()
	for _, e := range c.Events(t) {
		if e.Type == typ && Matches(e.Fields(), want) {
			return e
		}
	}
	timeout := time.After(5 * time.Second)
	for {
		select {
		case e := <-live:
			if e.Type == typ && Matches(e.Fields(), want) {
				return e
			}
		case <-timeout:
			t.Fatalf("no %s event with %v; have %v", typ, want, c.Events(t))
		}
	}
}

// Matches reports whether data has every key of want with an equal value
// (compared as printed JSON-ish text, so 2 and 2.0 are equal).
func Matches(data, want map[string]any) bool {
	for k, v := range want {
		got, ok := data[k]
		if !ok || fmtValue(got) != fmtValue(v) {
			return false
		}
	}
	return true
}
