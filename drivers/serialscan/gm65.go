package serialscan

import (
	"errors"
	"fmt"
	"io"
	"time"
)

// GM65 is the start-up configuration of a GM65-family module (Grow
// GM65/GM805/GM812) in its serial command mode ("zone bit" commands):
// applied every time the port opens, only when the config asks, never
// saved to the module's flash (re-applied after each power cycle instead
// of wearing its EEPROM).
type GM65 struct {
	// Mode is trigger (scan while the button is held), continuous, or
	// sensor (scan when something is in front); "" leaves it.
	Mode string
	// AIMID makes the module prefix each scan with its AIM symbology
	// identifier (]Q1 for QR), which lockerd's code parser strips.
	AIMID bool
}

// Zone-bit addresses and values (GM65 manual §8.5; AIM ID per the
// GM812 command table, same zone-bit set).
const (
	gmZoneMode = 0x0000 // bits 1-0: 00 manual, 01 command, 10 continuous, 11 sensor
	gmZoneAIM  = 0x00D0 // 0x80: AIM ID on
	gmAIMOn    = 0x80
)

var gmModes = map[string]byte{"trigger": 0x00, "continuous": 0x02, "sensor": 0x03}

// ValidGM65Mode reports whether m is a mode GM65 accepts.
func ValidGM65Mode(m string) bool { _, ok := gmModes[m]; return m == "" || ok }

// crc16 is CRC-16/XMODEM (poly 0x1021, init 0), the module's check.
func crc16(b []byte) uint16 {
	var crc uint16
	for _, c := range b {
		crc ^= uint16(c) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// GM65Command builds 7E 00 TYPE LEN ADDR DATA CRC (CRC over TYPE..DATA).
func GM65Command(typ byte, addr uint16, data ...byte) []byte {
	body := append([]byte{typ, byte(len(data)), byte(addr >> 8), byte(addr)}, data...)
	if typ == 0x07 { // read: DATA is the number of bytes to read
		body[1] = 0x01
	}
	c := crc16(body)
	return append(append([]byte{0x7E, 0x00}, body...), byte(c>>8), byte(c))
}

// GM65Reply builds 02 00 STATUS LEN DATA CRC (CRC over STATUS..DATA).
func GM65Reply(data ...byte) []byte {
	body := append([]byte{0x00, byte(len(data))}, data...)
	c := crc16(body)
	return append(append([]byte{0x02, 0x00}, body...), byte(c>>8), byte(c))
}

type timeoutReadWriter interface {
	io.ReadWriter
	SetReadTimeout(time.Duration) error
}

var errGMNoReply = errors.New("no reply from the module (is it a GM65 in serial mode, at this baud rate?)")

// command sends one zone command and returns the reply's data byte.
// Bytes that came in around the reply are not the module's answer but a
// scan made while it was being set up (continuous mode scans at once):
// they are appended to g.extra, for the line reader, rather than lost.
func (g *gm65Session) command(frame []byte) (byte, error) {
	if _, err := g.rw.Write(frame); err != nil {
		return 0, err
	}
	var buf []byte
	chunk := make([]byte, 64)
	deadline := time.Now().Add(500 * time.Millisecond)
	for time.Now().Before(deadline) {
		n, err := g.rw.Read(chunk)
		if err != nil {
			g.extra = append(g.extra, buf...)
			return 0, err
		}
		buf = append(buf, chunk[:n]...)
		// Windows that end before the new bytes were looked at already.
		for i := max(0, len(buf)-n-6); i+7 <= len(buf); i++ {
			r := buf[i : i+7]
			if r[0] == 0x02 && r[1] == 0x00 && r[3] == 0x01 && crc16(r[2:5]) == uint16(r[5])<<8|uint16(r[6]) {
				g.extra = append(append(g.extra, buf[:i]...), buf[i+7:]...)
				if r[2] != 0x00 {
					return 0, fmt.Errorf("module refused the command (status %#x)", r[2])
				}
				return r[4], nil
			}
		}
	}
	g.extra = append(g.extra, buf...)
	return 0, errGMNoReply
}

// gm65Session is one set-up exchange on an open port.
type gm65Session struct {
	rw    timeoutReadWriter
	extra []byte // bytes read that were not replies
}

// Apply configures the module on an open port: the mode bits are changed
// by read-modify-write so the module's other settings in that zone (LED,
// buzzer, aimer) stay as they are. It returns the bytes it read that were
// not replies — the start of a scan — which the caller must treat as
// scanner input, whether or not the set-up succeeded.
func (g GM65) Apply(rw timeoutReadWriter) (scanned []byte, err error) {
	if err := rw.SetReadTimeout(20 * time.Millisecond); err != nil {
		return nil, err
	}
	sess := &gm65Session{rw: rw}
	err = g.apply(sess)
	return sess.extra, err
}

func (g GM65) apply(sess *gm65Session) error {
	if g.Mode != "" {
		bitsWanted, ok := gmModes[g.Mode]
		if !ok {
			return fmt.Errorf("gm65 mode %q unknown", g.Mode)
		}
		cur, err := sess.command(GM65Command(0x07, gmZoneMode, 0x01))
		if err != nil {
			return fmt.Errorf("gm65: read mode: %w", err)
		}
		if want := cur&^0x03 | bitsWanted; want != cur {
			if _, err := sess.command(GM65Command(0x08, gmZoneMode, want)); err != nil {
				return fmt.Errorf("gm65: set mode %s: %w", g.Mode, err)
			}
		}
	}
	if g.AIMID {
		if _, err := sess.command(GM65Command(0x08, gmZoneAIM, gmAIMOn)); err != nil {
			return fmt.Errorf("gm65: AIM ID on: %w", err)
		}
	}
	return nil
}
