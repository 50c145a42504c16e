package hidscan

// Linux input key codes (include/uapi/linux/input-event-codes.h) for the
// US layout scanners type in.
const (
	keyLeftShift  = 42
	keyRightShift = 54
	keyCapsLock   = 58
	keyEnter      = 28
	keyKPEnter    = 96
	keyTab        = 15
)

// keys maps a key code to its character without and with shift.
var keys = map[uint16][2]byte{
	2: {'1', '!'}, 3: {'2', '@'}, 4: {'3', '#'}, 5: {'4', '$'}, 6: {'5', '%'},
	7: {'6', '^'}, 8: {'7', '&'}, 9: {'8', '*'}, 10: {'9', '('}, 11: {'0', ')'},
	12: {'-', '_'}, 13: {'=', '+'},
	16: {'q', 'Q'}, 17: {'w', 'W'}, 18: {'e', 'E'}, 19: {'r', 'R'}, 20: {'t', 'T'},
	21: {'y', 'Y'}, 22: {'u', 'U'}, 23: {'i', 'I'}, 24: {'o', 'O'}, 25: {'p', 'P'},
	26: {'[', '{'}, 27: {']', '}'},
	30: {'a', 'A'}, 31: {'s', 'S'}, 32: {'d', 'D'}, 33: {'f', 'F'}, 34: {'g', 'G'},
	35: {'h', 'H'}, 36: {'j', 'J'}, 37: {'k', 'K'}, 38: {'l', 'L'},
	39: {';', ':'}, 40: {'\'', '"'}, 41: {'`', '~'}, 43: {'\\', '|'},
	44: {'z', 'Z'}, 45: {'x', 'X'}, 46: {'c', 'C'}, 47: {'v', 'V'}, 48: {'b', 'B'},
	49: {'n', 'N'}, 50: {'m', 'M'},
	51: {',', '<'}, 52: {'.', '>'}, 53: {'/', '?'}, 57: {' ', ' '},
	// keypad
	55: {'*', '*'}, 71: {'7', '7'}, 72: {'8', '8'}, 73: {'9', '9'}, 74: {'-', '-'},
	75: {'4', '4'}, 76: {'5', '5'}, 77: {'6', '6'}, 78: {'+', '+'}, 79: {'1', '1'},
	80: {'2', '2'}, 81: {'3', '3'}, 82: {'0', '0'}, 83: {'.', '.'}, 98: {'/', '/'},
}

// Keyboard turns key events into characters.
type Keyboard struct {
	shift int // shift keys held
	caps  bool
}

// Key applies one EV_KEY event (value 1 press, 0 release, 2 repeat) and
// returns the character typed, if any.
func (k *Keyboard) Key(code uint16, value int32) (byte, bool) {
	switch code {
	case keyLeftShift, keyRightShift:
		switch value {
		case 1:
			k.shift++
		case 0:
			k.shift = max(k.shift-1, 0)
		}
		return 0, false
	case keyCapsLock:
		if value == 1 {
			k.caps = !k.caps
		}
		return 0, false
	}
	if value != 1 { // releases, and auto-repeat a scanner never means
		return 0, false
	}
	switch code {
	case keyEnter, keyKPEnter:
		return '\r', true
	case keyTab:
		return '\t', true
	}
	c, ok := keys[code]
	if !ok {
		return 0, false
	}
	shifted := k.shift > 0
	if k.caps && c[0] >= 'a' && c[0] <= 'z' {
		shifted = !shifted
	}
	if shifted {
		return c[1], true
	}
	return c[0], true
}
