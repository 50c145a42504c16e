package hidscan

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// EventSize is the size of the kernel's struct input_event on this
// machine: a struct timeval (two longs) then type, code and value.
const EventSize = int(2*unsafe.Sizeof(uintptr(0))) + 8

// Event types and codes used.
const (
	EvSyn = 0
	EvKey = 1
)

// eviocgrab is EVIOCGRAB: _IOW('E', 0x90, int).
const eviocgrab = 0x40044590

// Device is an open evdev device read as the characters it types.
type Device struct {
	f       *os.File
	stream  bool // a FIFO or file, not a device: end of data means wait for more
	kb      Keyboard
	pending []byte // partial event record
	grabbed bool
	timeout time.Duration
}

// Open opens path. A character device (a real scanner) is grabbed, and
// failing to grab it is an error: its keystrokes would otherwise reach
// whatever has the keyboard focus. A FIFO or file (recorded events, a
// test) is read as it is.
func Open(path string) (*Device, error) {
	// Non-blocking: opening a FIFO with no writer must not block the
	// scanner loop (it could never be stopped).
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	d := &Device{f: f, timeout: 20 * time.Millisecond}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if fi.Mode()&os.ModeCharDevice != 0 {
		if err := grab(f, 1); err != nil {
			f.Close()
			return nil, fmt.Errorf("grab %s (EVIOCGRAB): %w: is another program reading the scanner?", path, err)
		}
		d.grabbed = true
	} else {
		d.stream = true
	}
	return d, nil
}

// Grabbed reports whether the device is held exclusively.
func (d *Device) Grabbed() bool { return d.grabbed }

// grab sets EVIOCGRAB through the raw descriptor (f.Fd() would switch the
// file to blocking mode and lose read deadlines).
func grab(f *os.File, on int) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ioErr error
	if err := rc.Control(func(fd uintptr) { ioErr = unix.IoctlSetInt(int(fd), eviocgrab, on) }); err != nil {
		return err
	}
	return ioErr
}

// SetReadTimeout bounds each Read; a Read that times out returns 0, nil,
// as a serial port does.
func (d *Device) SetReadTimeout(t time.Duration) error {
	d.timeout = t
	return nil
}

// Read returns the characters typed since the last Read (0, nil when the
// timeout passes with none).
func (d *Device) Read(p []byte) (int, error) {
	if len(d.pending) < EventSize {
		if err := d.f.SetReadDeadline(time.Now().Add(d.timeout)); err != nil && !errors.Is(err, os.ErrNoDeadline) {
			return 0, err
		}
		buf := make([]byte, 64*EventSize)
		n, err := d.f.Read(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return 0, nil
		}
		if n == 0 && errors.Is(err, io.EOF) && d.stream {
			// A FIFO without a writer (yet, or any more), or the end of a
			// recording: wait for more, as a device would.
			time.Sleep(d.timeout)
			return 0, nil
		}
		if n == 0 && err != nil {
			return 0, err // ENODEV: unplugged
		}
		d.pending = append(d.pending, buf[:n]...)
	}
	out := p[:0]
	for len(d.pending) >= EventSize && len(out) < cap(p) {
		typ, code, value := decode(d.pending[:EventSize])
		d.pending = d.pending[EventSize:]
		if typ != EvKey {
			continue
		}
		if c, ok := d.kb.Key(code, value); ok {
			out = append(out, c)
		}
	}
	return len(out), nil
}

func decode(rec []byte) (typ, code uint16, value int32) {
	off := EventSize - 8
	return binary.NativeEndian.Uint16(rec[off:]), binary.NativeEndian.Uint16(rec[off+2:]), int32(binary.NativeEndian.Uint32(rec[off+4:]))
}

// Record encodes one input event as the kernel writes it to a process
// of this machine's word size (for tests and replay tools).
func Record(t time.Time, typ, code uint16, value int32) []byte {
	return RecordFor(EventSize, t, typ, code, value)
}

// RecordFor is Record for a process whose events are size bytes: 24 on
// 64-bit (arm64, amd64), 16 on 32-bit (armhf), whatever the kernel.
func RecordFor(size int, t time.Time, typ, code uint16, value int32) []byte {
	rec := make([]byte, size)
	half := (size - 8) / 2
	if half == 8 {
		binary.NativeEndian.PutUint64(rec[0:], uint64(t.Unix()))
		binary.NativeEndian.PutUint64(rec[8:], uint64(t.Nanosecond()/1000))
	} else {
		binary.NativeEndian.PutUint32(rec[0:], uint32(t.Unix()))
		binary.NativeEndian.PutUint32(rec[4:], uint32(t.Nanosecond()/1000))
	}
	off := size - 8
	binary.NativeEndian.PutUint16(rec[off:], typ)
	binary.NativeEndian.PutUint16(rec[off+2:], code)
	binary.NativeEndian.PutUint32(rec[off+4:], uint32(value))
	return rec
}

// Close releases the grab and the device.
func (d *Device) Close() error {
	if d.grabbed {
		_ = grab(d.f, 0)
	}
	return d.f.Close()
}

// Keystrokes encodes s as a scanner would type it: key presses and
// releases with shift where needed, each followed by a SYN report; '\r'
// and '\n' type Enter. Characters with no key are skipped.
func Keystrokes(s string) []byte { return KeystrokesFor(EventSize, s) }

// KeystrokesFor is Keystrokes in records of size bytes (see RecordFor).
func KeystrokesFor(size int, s string) []byte {
	var out []byte
	t := time.Unix(1700000000, 0)
	key := func(code uint16, v int32) {
		out = append(out, RecordFor(size, t, EvKey, code, v)...)
		out = append(out, RecordFor(size, t, EvSyn, 0, 0)...)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\r' || c == '\n' {
			key(keyEnter, 1)
			key(keyEnter, 0)
			continue
		}
		code, shifted, ok := keyFor(c)
		if !ok {
			continue
		}
		if shifted {
			key(keyLeftShift, 1)
		}
		key(code, 1)
		key(code, 0)
		if shifted {
			key(keyLeftShift, 0)
		}
	}
	return out
}

func keyFor(c byte) (code uint16, shifted, ok bool) {
	best := uint16(0)
	for k, v := range keys {
		if k >= 55 && k != 57 { // prefer the main block over the keypad
			continue
		}
		if v[0] == c && (best == 0 || k < best) {
			best, shifted = k, false
		} else if v[1] == c && v[0] != c && (best == 0 || k < best) {
			best, shifted = k, true
		}
	}
	return best, shifted, best != 0
}
