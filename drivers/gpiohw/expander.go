package gpiohw

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/i2c"

	"github.com/lockerd/lockerd/drivers/pinname"
)

// expander is an I2C GPIO expander chip. Output latches and directions
// are kept in software: a read-modify-write never reads an output back.
type expander interface {
	output(index int, initial gpio.Level) error
	input(index int, pull gpio.Pull) error
	write(index int, l gpio.Level) error
	// levels returns every pin's level, read at most once per poll.
	levels() (uint16, error)
}

// MCP23017 registers (IOCON.BANK = 0, the power-on default; sequential
// access pairs port A with port B).
const (
	mcpIODIR = 0x00
	mcpGPPU  = 0x0C
	mcpGPIO  = 0x12
	mcpOLAT  = 0x14
)

// expanderPoll is how stale a cached port reading may be: inputs on an
// expander are polled (its interrupt line is not wired), well within the
// debounce time.
const expanderPoll = 10 * time.Millisecond

type portCache struct {
	mu     sync.Mutex
	at     time.Time
	value  uint16
	err    error
	readFn func() (uint16, error)
}

func (c *portCache) levels() (uint16, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.at) >= expanderPoll || c.err != nil {
		c.value, c.err = c.readFn()
		c.at = time.Now()
	}
	return c.value, c.err
}

func (c *portCache) invalidate() {
	c.mu.Lock()
	c.at = time.Time{}
	c.mu.Unlock()
}

// mcp23017 is a 16-pin expander: A0..A7 are bits 0..7, B0..B7 bits 8..15.
type mcp23017 struct {
	dev   i2c.Dev
	mu    sync.Mutex
	olat  uint16
	iodir uint16 // 1 = input (power-on: all inputs)
	gppu  uint16
	portCache
}

func newMCP23017(bus i2c.Bus, addr uint16) (*mcp23017, error) {
	m := &mcp23017{dev: i2c.Dev{Bus: bus, Addr: addr}, iodir: 0xFFFF}
	m.readFn = m.readPorts
	// Start from a known state: every pin an input, latches low, no
	// pull-ups. Inputs cannot unlock anything.
	if err := m.writePair(mcpIODIR, m.iodir); err != nil {
		return nil, fmt.Errorf("mcp23017@0x%02x: %w", addr, err)
	}
	if err := m.writePair(mcpOLAT, 0); err != nil {
		return nil, fmt.Errorf("mcp23017@0x%02x: %w", addr, err)
	}
	if err := m.writePair(mcpGPPU, 0); err != nil {
		return nil, fmt.Errorf("mcp23017@0x%02x: %w", addr, err)
	}
	return m, nil
}

func (m *mcp23017) writePair(reg byte, v uint16) error {
	return m.dev.Tx([]byte{reg, byte(v), byte(v >> 8)}, nil)
}

func (m *mcp23017) readPorts() (uint16, error) {
	var b [2]byte
	if err := m.dev.Tx([]byte{mcpGPIO}, b[:]); err != nil {
		return 0, err
	}
	return uint16(b[0]) | uint16(b[1])<<8, nil
}

func setBit(v uint16, i int, on bool) uint16 {
	if on {
		return v | 1<<i
	}
	return v &^ (1 << i)
}

// output sets the latch first, then turns the pin into an output: the pin
// drives the latched level from its first instant as an output.
func (m *mcp23017) output(i int, initial gpio.Level) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.olat = setBit(m.olat, i, bool(initial))
	if err := m.writePair(mcpOLAT, m.olat); err != nil {
		return err
	}
	m.iodir = setBit(m.iodir, i, false)
	return m.writePair(mcpIODIR, m.iodir)
}

func (m *mcp23017) input(i int, pull gpio.Pull) error {
	switch pull {
	case gpio.PullDown:
		return errors.New("the MCP23017 has pull-ups only: use sensor_pull up, or none with external pull-down resistors")
	case gpio.PullUp, gpio.Float, gpio.PullNoChange:
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gppu = setBit(m.gppu, i, pull == gpio.PullUp)
	if err := m.writePair(mcpGPPU, m.gppu); err != nil {
		return err
	}
	m.iodir = setBit(m.iodir, i, true)
	if err := m.writePair(mcpIODIR, m.iodir); err != nil {
		return err
	}
	m.invalidate()
	return nil
}

func (m *mcp23017) write(i int, l gpio.Level) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.iodir&(1<<i) != 0 {
		return fmt.Errorf("pin %d is an input", i)
	}
	m.olat = setBit(m.olat, i, bool(l))
	return m.writePair(mcpOLAT, m.olat)
}

// pcf8574 is an 8-pin quasi-bidirectional expander: writing 1 leaves a
// pin weakly pulled high (which is also how it is read as an input),
// writing 0 drives it low. It powers up with every pin high.
type pcf8574 struct {
	dev    i2c.Dev
	mu     sync.Mutex
	state  uint8
	inputs uint8
	portCache
}

func newPCF8574(bus i2c.Bus, addr uint16) (*pcf8574, error) {
	p := &pcf8574{dev: i2c.Dev{Bus: bus, Addr: addr}, state: 0xFF}
	p.readFn = p.readPort
	if err := p.dev.Tx([]byte{p.state}, nil); err != nil {
		return nil, fmt.Errorf("pcf8574@0x%02x: %w", addr, err)
	}
	return p, nil
}

func (p *pcf8574) readPort() (uint16, error) {
	var b [1]byte
	if err := p.dev.Tx(nil, b[:]); err != nil {
		return 0, err
	}
	return uint16(b[0]), nil
}

func (p *pcf8574) output(i int, initial gpio.Level) error {
	if !initial {
		// A pin that must rest low shows high from power-on until this
		// write: on a lock that is an unlock.
		return errors.New("PCF8574 pins power up high, so a lock resting low would open at power-on: use an active-low relay board (relay_active_low: true)")
	}
	return p.write(i, initial)
}

func (p *pcf8574) input(i int, pull gpio.Pull) error {
	if pull == gpio.PullDown {
		return errors.New("the PCF8574 has weak pull-ups only: use sensor_pull up or none")
	}
	p.mu.Lock()
	p.inputs |= 1 << i
	p.mu.Unlock()
	if err := p.write(i, gpio.High); err != nil {
		return err
	}
	p.invalidate()
	return nil
}

func (p *pcf8574) write(i int, l gpio.Level) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if l {
		p.state |= 1 << i
	} else {
		if p.inputs&(1<<i) != 0 {
			return fmt.Errorf("pin P%d is an input", i)
		}
		p.state &^= 1 << i
	}
	return p.dev.Tx([]byte{p.state}, nil)
}

// expanderPin is one pin of an expander, as an OutputLine or InputLine.
type expanderPin struct {
	chip  expander
	index int

	mu   sync.Mutex
	last gpio.Level
	halt chan struct{}
}

func (p *expanderPin) Out(l gpio.Level) error { return p.chip.write(p.index, l) }

func (p *expanderPin) In(pull gpio.Pull, _ gpio.Edge) error {
	if err := p.chip.input(p.index, pull); err != nil {
		return err
	}
	p.mu.Lock()
	p.last = p.Read()
	p.mu.Unlock()
	return nil
}

// Read returns the pin's level; a failed bus read reads as the last level
// seen (the re-read and the next poll try again).
func (p *expanderPin) Read() gpio.Level {
	v, err := p.chip.levels()
	if err != nil {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.last
	}
	return gpio.Level(v&(1<<p.index) != 0)
}

// WaitForEdge polls the chip until the level differs from the one seen
// at the previous return, or timeout passes, or Halt is called.
func (p *expanderPin) WaitForEdge(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	t := time.NewTicker(expanderPoll)
	defer t.Stop()
	for {
		l := p.Read()
		p.mu.Lock()
		changed := l != p.last
		p.last = l
		p.mu.Unlock()
		if changed {
			return true
		}
		if !time.Now().Before(deadline) {
			return false
		}
		select {
		case <-t.C:
		case <-p.halt:
			return false
		}
	}
}

func (p *expanderPin) Halt() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.halt:
	default:
		close(p.halt)
	}
	return nil
}

// Expanders opens expander chips on I2C buses as pins are asked for, one
// chip object per bus and address.
type Expanders struct {
	// OpenBus opens /dev/i2c-N (or a test bus).
	OpenBus func(n int) (i2c.Bus, error)
	// DefaultBus is the bus of pins named without one.
	DefaultBus int

	buses map[int]i2c.Bus
	chips map[string]expander
}

func (e *Expanders) pin(p pinname.Pin, name string) (*expanderPin, error) {
	bus := p.Bus
	if bus < 0 {
		bus = e.DefaultBus
	}
	key := fmt.Sprintf("%s@%d:0x%02x", p.Kind, bus, p.Addr)
	if e.chips == nil {
		e.chips, e.buses = map[string]expander{}, map[int]i2c.Bus{}
	}
	chip := e.chips[key]
	if chip == nil {
		b := e.buses[bus]
		if b == nil {
			if e.OpenBus == nil {
				return nil, fmt.Errorf("no I2C bus %d", bus)
			}
			var err error
			if b, err = e.OpenBus(bus); err != nil {
				return nil, fmt.Errorf("I2C bus %d: %w", bus, err)
			}
			e.buses[bus] = b
		}
		var err error
		switch p.Kind {
		case pinname.MCP23017:
			chip, err = newMCP23017(b, uint16(p.Addr))
		case pinname.PCF8574:
			chip, err = newPCF8574(b, uint16(p.Addr))
		default:
			return nil, fmt.Errorf("%s is not an expander pin", name)
		}
		if err != nil {
			return nil, fmt.Errorf("%s on I2C bus %d does not answer (address, wiring, dtparam=i2c_arm=on?): %w", key, bus, err)
		}
		e.chips[key] = chip
	}
	return &expanderPin{chip: chip, index: p.Index, halt: make(chan struct{})}, nil
}

// Output requests an expander pin as an output at its initial level.
func (e *Expanders) Output(p pinname.Pin, name string, initial gpio.Level) (OutputLine, error) {
	pin, err := e.pin(p, name)
	if err != nil {
		return nil, err
	}
	if err := pin.chip.output(p.Index, initial); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return pin, nil
}

// Input requests an expander pin as an input.
func (e *Expanders) Input(p pinname.Pin, name string, pull gpio.Pull) (InputLine, error) {
	pin, err := e.pin(p, name)
	if err != nil {
		return nil, err
	}
	if err := pin.In(pull, gpio.BothEdges); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return pin, nil
}

// Close closes the buses that were opened.
func (e *Expanders) Close() error {
	var errs []error
	for _, b := range e.buses {
		if c, ok := b.(interface{ Close() error }); ok {
			errs = append(errs, c.Close())
		}
	}
	e.buses, e.chips = nil, nil
	return errors.Join(errs...)
}
