package pinname

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Kind is what a pin is on.
type Kind string

const (
	Line     Kind = "line"     // a GPIO chip line (the Pi's header)
	MCP23017 Kind = "mcp23017" // 16-pin I2C expander, ports A and B
	PCF8574  Kind = "pcf8574"  // 8-pin quasi-bidirectional I2C expander
	Board    Kind = "board"    // an RS-485 lock-control board channel
)

// Board channel functions.
const (
	BoardLock = 'L' // the lock output
	BoardHook = 'S' // lock-hook feedback: active while the door is open
	BoardItem = 'I' // item-present sensor
)

// Pin is a parsed pin name.
type Pin struct {
	Kind Kind
	// Line is the kernel line name for Kind Line ("GPIO17").
	Line string
	// Bus is the I2C bus number for expanders; -1 means hardware.i2c_bus.
	Bus int
	// Addr is the I2C address of an expander or the board address.
	Addr int
	// Index is the expander pin (0..15, A0=0, B0=8) or the board channel.
	Index int
	// Func is BoardLock, BoardHook or BoardItem for Kind Board.
	Func byte
}

// Device names the chip a pin is on: "mcp23017@1:0x20", "board 1", "gpio".
func (p Pin) Device() string {
	switch p.Kind {
	case MCP23017, PCF8574:
		if p.Bus < 0 {
			return fmt.Sprintf("%s@0x%02x", p.Kind, p.Addr)
		}
		return fmt.Sprintf("%s@%d:0x%02x", p.Kind, p.Bus, p.Addr)
	case Board:
		return fmt.Sprintf("board %d", p.Addr)
	}
	return "gpio"
}

// Key is a canonical form: two names with the same Key are the same pin.
func (p Pin) Key() string {
	switch p.Kind {
	case Line:
		return "line:" + p.Line
	case Board:
		return fmt.Sprintf("board:%d/%c%d", p.Addr, p.Func, p.Index)
	}
	return fmt.Sprintf("%s/%d", p.Device(), p.Index)
}

var (
	lineRe     = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,31}$`)
	expanderRe = regexp.MustCompile(`^(?i)(mcp23017|pcf8574)@(?:(\d{1,2}):)?(0x[0-9a-f]{1,2}|\d{1,3})/([A-Za-z]?\d{1,2})$`)
	boardRe    = regexp.MustCompile(`^(?i)B(\d{1,3})/([LSI])(\d{1,3})$`)
)

// Parse reads a pin name. Errors say what is wrong in words a technician
// can act on.
func Parse(name string) (Pin, error) {
	if n, err := strconv.Atoi(name); err == nil {
		if n < 0 || n > 511 {
			return Pin{}, fmt.Errorf("GPIO number %d out of range", n)
		}
		return Pin{Kind: Line, Line: "GPIO" + name, Bus: -1}, nil
	}
	if m := boardRe.FindStringSubmatch(name); m != nil {
		addr, _ := strconv.Atoi(m[1])
		ch, _ := strconv.Atoi(m[3])
		if addr > 255 {
			return Pin{}, fmt.Errorf("%s: board address %d out of range 0..255", name, addr)
		}
		if ch < 1 || ch > 255 {
			return Pin{}, fmt.Errorf("%s: channel %d out of range 1..255", name, ch)
		}
		return Pin{Kind: Board, Bus: -1, Addr: addr, Index: ch, Func: strings.ToUpper(m[2])[0]}, nil
	}
	if m := expanderRe.FindStringSubmatch(name); m != nil {
		p := Pin{Kind: Kind(strings.ToLower(m[1])), Bus: -1}
		if m[2] != "" {
			p.Bus, _ = strconv.Atoi(m[2])
		}
		addr, err := strconv.ParseInt(m[3], 0, 16)
		if err != nil || addr < 0x03 || addr > 0x77 {
			return Pin{}, fmt.Errorf("%s: I2C address %s out of range 0x03..0x77", name, m[3])
		}
		p.Addr = int(addr)
		idx := strings.ToUpper(m[4])
		switch p.Kind {
		case MCP23017:
			if len(idx) < 2 || (idx[0] != 'A' && idx[0] != 'B') {
				return Pin{}, fmt.Errorf("%s: MCP23017 pins are A0..A7 and B0..B7", name)
			}
			n, _ := strconv.Atoi(idx[1:])
			if n > 7 {
				return Pin{}, fmt.Errorf("%s: MCP23017 pins are A0..A7 and B0..B7", name)
			}
			p.Index = n
			if idx[0] == 'B' {
				p.Index += 8
			}
		case PCF8574:
			idx = strings.TrimPrefix(idx, "P")
			n, err := strconv.Atoi(idx)
			if err != nil || n > 7 {
				return Pin{}, fmt.Errorf("%s: PCF8574 pins are P0..P7", name)
			}
			p.Index = n
		}
		return p, nil
	}
	if strings.Contains(name, "@") {
		return Pin{}, fmt.Errorf("%q: want an expander pin like mcp23017@0x20/A3 or pcf8574@0x21/P5", name)
	}
	if lineRe.MatchString(name) {
		return Pin{Kind: Line, Line: name, Bus: -1}, nil
	}
	return Pin{}, fmt.Errorf("%q is not a pin name (GPIO17, 17, mcp23017@0x20/A3, pcf8574@0x21/P5 or B1/L5)", name)
}

// IndexName is the expander pin's name as printed on the chip (A3, P5).
func (p Pin) IndexName() string {
	switch p.Kind {
	case MCP23017:
		return fmt.Sprintf("%c%d", "AB"[p.Index/8], p.Index%8)
	case PCF8574:
		return fmt.Sprintf("P%d", p.Index)
	}
	return strconv.Itoa(p.Index)
}
