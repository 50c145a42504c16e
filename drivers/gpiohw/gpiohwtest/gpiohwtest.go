package gpiohwtest

import (
	"errors"
	"sync"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
	"periph.io/x/conn/v3/physic"
)

// MCP23017 registers (IOCON.BANK = 0).
const (
	regIODIR = 0x00
	regGPIO  = 0x12
	regOLAT  = 0x14
)

// MCP23017 is an MCP23017 at Addr on a fake I2C bus (it implements
// periph's i2c.Bus). Its pins read back their latch when they are
// outputs and Ext when they are inputs; every register write is
// remembered so a test can see each level a pin ever showed.
type MCP23017 struct {
	Addr uint16

	mu   sync.Mutex
	regs [0x16]byte
	ext  uint16
	seen [][2]uint16 // (IODIR, pins) after each write
}

// NewMCP23017 returns a chip in its power-on state (all inputs).
func NewMCP23017(addr uint16) *MCP23017 {
	m := &MCP23017{Addr: addr}
	m.regs[regIODIR], m.regs[regIODIR+1] = 0xFF, 0xFF
	return m
}

func (m *MCP23017) String() string                  { return "gpiohwtest.MCP23017" }
func (m *MCP23017) SetSpeed(physic.Frequency) error { return nil }

// Tx implements i2c.Bus.
func (m *MCP23017) Tx(addr uint16, w, r []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if addr != m.Addr || len(w) == 0 {
		return errors.New("nack")
	}
	reg := int(w[0])
	if reg+len(w)-1 > len(m.regs) {
		return errors.New("register out of range")
	}
	for i, b := range w[1:] {
		m.regs[reg+i] = b
	}
	if len(w) > 1 {
		m.seen = append(m.seen, [2]uint16{m.dir(), m.pins()})
	}
	for i := range r {
		if a := reg + i; a == regGPIO || a == regGPIO+1 {
			r[i] = byte(m.pins() >> (8 * (a - regGPIO)))
		}
	}
	return nil
}

func (m *MCP23017) dir() uint16 { return uint16(m.regs[regIODIR]) | uint16(m.regs[regIODIR+1])<<8 }

func (m *MCP23017) pins() uint16 {
	olat := uint16(m.regs[regOLAT]) | uint16(m.regs[regOLAT+1])<<8
	return olat&^m.dir() | m.ext&m.dir()
}

// SetInput sets the level the outside world puts on pin i (0..15).
func (m *MCP23017) SetInput(i int, high bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if high {
		m.ext |= 1 << i
	} else {
		m.ext &^= 1 << i
	}
}

// Output reports pin i's level and whether it is an output.
func (m *MCP23017) Output(i int) (high, isOutput bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pins()&(1<<i) != 0, m.dir()&(1<<i) == 0
}

// History returns pin i's level after every write during which it was an
// output, in order.
func (m *MCP23017) History(i int) []bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []bool
	for _, s := range m.seen {
		if s[0]&(1<<i) == 0 {
			out = append(out, s[1]&(1<<i) != 0)
		}
	}
	return out
}

// Pins makes a periph fake pin for each name, with a buffered EdgesChan so
// a test can send edges.
func Pins(names ...string) map[string]*gpiotest.Pin {
	out := make(map[string]*gpiotest.Pin, len(names))
	for i, n := range names {
		out[n] = &gpiotest.Pin{N: n, Num: i, EdgesChan: make(chan gpio.Level, 16)}
	}
	return out
}
