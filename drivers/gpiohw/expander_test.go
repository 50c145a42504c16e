package gpiohw

import (
	"strings"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2ctest"

	"github.com/lockerd/lockerd/drivers/gpiohw/gpiohwtest"
	"github.com/lockerd/lockerd/drivers/pinname"
)

func mustPin(t *testing.T, name string) pinname.Pin {
	t.Helper()
	p, err := pinname.Parse(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func playback(ops ...i2ctest.IO) (*i2ctest.Playback, func(int) (i2c.Bus, error)) {
	pb := &i2ctest.Playback{Ops: ops, DontPanic: true}
	return pb, func(int) (i2c.Bus, error) { return pb, nil }
}

// The exact I2C traffic for an MCP23017: known start state, a lock output
// whose latch is written before its direction (no glitch), a pulled-up
// input, a read and a write that keeps the other latches.
func TestMCP23017Traffic(t *testing.T) {
	pb, open := playback(
		i2ctest.IO{Addr: 0x20, W: []byte{0x00, 0xFF, 0xFF}}, // IODIR: all inputs
		i2ctest.IO{Addr: 0x20, W: []byte{0x14, 0x00, 0x00}}, // OLAT
		i2ctest.IO{Addr: 0x20, W: []byte{0x0C, 0x00, 0x00}}, // GPPU
		i2ctest.IO{Addr: 0x20, W: []byte{0x14, 0x08, 0x00}}, // A3 latch high (locked, active-low relay)...
		i2ctest.IO{Addr: 0x20, W: []byte{0x00, 0xF7, 0xFF}}, // ...then A3 an output
		i2ctest.IO{Addr: 0x20, W: []byte{0x0C, 0x00, 0x01}}, // B0 pull-up
		i2ctest.IO{Addr: 0x20, W: []byte{0x00, 0xF7, 0xFF}}, // B0 input
		i2ctest.IO{Addr: 0x20, W: []byte{0x12}, R: []byte{0x08, 0x01}},
		i2ctest.IO{Addr: 0x20, W: []byte{0x14, 0x00, 0x00}}, // A3 low: energised
		i2ctest.IO{Addr: 0x20, W: []byte{0x14, 0x08, 0x00}}, // A3 high again
	)
	e := &Expanders{OpenBus: open, DefaultBus: 1}
	lock, err := e.Output(mustPin(t, "mcp23017@0x20/A3"), "mcp23017@0x20/A3", gpio.High)
	if err != nil {
		t.Fatal(err)
	}
	door, err := e.Input(mustPin(t, "mcp23017@0x20/B0"), "mcp23017@0x20/B0", gpio.PullUp)
	if err != nil {
		t.Fatal(err)
	}
	if door.Read() != gpio.High {
		t.Error("B0 read low, port B was 0x01")
	}
	if err := lock.Out(gpio.Low); err != nil {
		t.Fatal(err)
	}
	if err := lock.Out(gpio.High); err != nil {
		t.Fatal(err)
	}
	if err := pb.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestPCF8574Traffic(t *testing.T) {
	pb, open := playback(
		i2ctest.IO{Addr: 0x21, W: []byte{0xFF}}, // all high (the power-on state)
		i2ctest.IO{Addr: 0x21, W: []byte{0xFF}}, // P0 high: locked (active-low relay)
		i2ctest.IO{Addr: 0x21, W: []byte{0xFF}}, // P5 input (high = weak pull-up)
		i2ctest.IO{Addr: 0x21, R: []byte{0xDF}}, // P5 pulled low by a closed door
		i2ctest.IO{Addr: 0x21, W: []byte{0xFE}}, // P0 low: energised
	)
	e := &Expanders{OpenBus: open, DefaultBus: 1}
	lock, err := e.Output(mustPin(t, "pcf8574@0x21/P0"), "pcf8574@0x21/P0", gpio.High)
	if err != nil {
		t.Fatal(err)
	}
	door, err := e.Input(mustPin(t, "pcf8574@0x21/P5"), "pcf8574@0x21/P5", gpio.PullUp)
	if err != nil {
		t.Fatal(err)
	}
	if door.Read() != gpio.Low {
		t.Error("P5 read high")
	}
	if err := lock.Out(gpio.Low); err != nil {
		t.Fatal(err)
	}
	if err := pb.Close(); err != nil {
		t.Fatal(err)
	}
	// A lock resting low would open at power-on on a PCF8574: refused.
	_, open2 := playback(i2ctest.IO{Addr: 0x22, W: []byte{0xFF}})
	e2 := &Expanders{OpenBus: open2}
	if _, err := e2.Output(mustPin(t, "pcf8574@0x22/P0"), "pcf8574@0x22/P0", gpio.Low); err == nil || !strings.Contains(err.Error(), "power up high") {
		t.Fatalf("active-high lock on a PCF8574: %v", err)
	}
}

func TestExpanderThatDoesNotAnswer(t *testing.T) {
	_, open := playback() // no ops: every transaction fails
	e := &Expanders{OpenBus: open, DefaultBus: 1}
	_, err := e.Output(mustPin(t, "mcp23017@0x27/A0"), "mcp23017@0x27/A0", gpio.High)
	if err == nil || !strings.Contains(err.Error(), "mcp23017@1:0x27 on I2C bus 1 does not answer") {
		t.Fatalf("got %v", err)
	}
	if _, err := e.Input(mustPin(t, "mcp23017@0x20/A0"), "x", gpio.PullDown); err == nil {
		t.Fatal("pull-down on an MCP23017 accepted")
	}
}

func TestHardwareOnExpander(t *testing.T) {
	m := gpiohwtest.NewMCP23017(0x20)
	m.SetInput(8, true) // B0 high: door open
	r := &Resolver{Lines: PinMap{}, Expanders: &Expanders{OpenBus: func(int) (i2c.Bus, error) { return m, nil }, DefaultBus: 1}}
	h, err := New(r, Config{Locks: []string{"mcp23017@0x20/A0"}, Sensors: []string{"mcp23017@0x20/B0"}, RelayActiveLow: true,
		Pull: gpio.PullUp, Debounce: 20 * time.Millisecond, Reread: 100 * time.Millisecond, MaxConcurrent: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if open, _ := h.Read("mcp23017@0x20/B0"); !open {
		t.Fatal("B0 high, not read open")
	}
	m.SetInput(8, false) // door closed
	if ch := next(t, h); ch.Active || ch.Pin != "mcp23017@0x20/B0" {
		t.Fatalf("got %+v", ch)
	}
	if err := h.Pulse("mcp23017@0x20/A0", 60*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	// A0 as seen from outside at every register write since it became an
	// output: high (locked) from the first, one low stretch (the pulse).
	a0 := m.History(0)
	lows := 0
	for i, v := range a0 {
		if !v && (i == 0 || a0[i-1]) {
			lows++
		}
	}
	if len(a0) == 0 || !a0[0] || lows != 1 || !a0[len(a0)-1] {
		t.Fatalf("A0 levels %v: want high first, one low stretch (the pulse), high last", a0)
	}
}
