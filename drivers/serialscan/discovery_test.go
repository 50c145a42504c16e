package serialscan

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.bug.st/serial/enumerator"

	"github.com/lockerd/lockerd/drivers/hidscan"
	"github.com/lockerd/lockerd/drivers/serialscan/serialtest"
)

// runScanner runs s until the test ends and returns its lines.
func runScanner(t *testing.T, s *Scanner) <-chan string {
	t.Helper()
	lines := make(chan string, 16)
	s.OnLine = func(l string) { lines <- l }
	if s.Log == nil {
		s.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s.MinBackoff, s.MaxBackoff = 10*time.Millisecond, 50*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return lines
}

func wantLine(t *testing.T, lines <-chan string, want string) {
	t.Helper()
	select {
	case l := <-lines:
		if l != want {
			t.Fatalf("line %q, want %q", l, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("no line %q", want)
	}
}

func TestMatchUSB(t *testing.T) {
	ports := []*enumerator.PortDetails{
		{Name: "/dev/ttyS0"},
		{Name: "/dev/ttyACM0", IsUSB: true, VID: "1EAB", PID: "1a03", SerialNumber: "A1"},
		{Name: "/dev/ttyACM1", IsUSB: true, VID: "1eab", PID: "1a03", SerialNumber: "B2"},
		{Name: "/dev/ttyUSB0", IsUSB: true, VID: "0403", PID: "6001"},
	}
	for _, tc := range []struct{ vid, pid, serial, want, err string }{
		{"0403", "6001", "", "/dev/ttyUSB0", ""},
		{"1eab", "1A03", "B2", "/dev/ttyACM1", ""},
		{"1eab", "1a03", "", "", "2 USB serial devices 1eab:1a03 (/dev/ttyACM0, /dev/ttyACM1): set usb_serial"},
		{"dead", "beef", "", "", "no USB serial device dead:beef plugged in"},
	} {
		got, err := MatchUSB(ports, tc.vid, tc.pid, tc.serial)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s:%s: %q %v, want error %q", tc.vid, tc.pid, got, err, tc.err)
			}
		} else if err != nil || got != tc.want {
			t.Errorf("%s:%s: %q %v, want %q", tc.vid, tc.pid, got, err, tc.want)
		}
	}
}

// port: auto finds the scanner by its USB ids each time it opens: the
// device can come back under another name.
func TestPortAuto(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	current := filepath.Join(dir, "ttyACM0")
	master := serialtest.Plug(t, current)
	s := &Scanner{Name: "front", Port: PortAuto, Baud: 9600, USBVendor: "1eab", USBProduct: "1a03",
		Enumerate: func() ([]*enumerator.PortDetails, error) {
			mu.Lock()
			defer mu.Unlock()
			return []*enumerator.PortDetails{{Name: "/dev/ttyS0"}, {Name: current, IsUSB: true, VID: "1EAB", PID: "1A03"}}, nil
		}}
	lines := runScanner(t, s)
	master.Write([]byte("CODE-ONE\r"))
	wantLine(t, lines, "CODE-ONE")
	master.Close()
	mu.Lock()
	current = filepath.Join(dir, "ttyACM1")
	mu.Unlock()
	master = serialtest.Plug(t, current)
	// Wait until the driver has the new port open: a line written before
	// that is lost, as it would be on a real replug. Keep writing.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		master.Write([]byte("CODE-TWO\r"))
		select {
		case l := <-lines:
			if l != "CODE-TWO" {
				t.Fatalf("line %q", l)
			}
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatal("scanner not found again after replug under a new name")
}

func TestGM65Vectors(t *testing.T) {
	// From the GM65 manual: read zone 0x000A; write 0x3E there; its replies.
	for _, tc := range []struct {
		name      string
		got, want []byte
	}{
		{"read zone", GM65Command(0x07, 0x000A, 0x01), []byte{0x7E, 0x00, 0x07, 0x01, 0x00, 0x0A, 0x01, 0xEE, 0x8A}},
		{"write zone", GM65Command(0x08, 0x000A, 0x3E), []byte{0x7E, 0x00, 0x08, 0x01, 0x00, 0x0A, 0x3E, 0x4C, 0xCF}},
		{"save", GM65Command(0x09, 0x0000, 0x00), []byte{0x7E, 0x00, 0x09, 0x01, 0x00, 0x00, 0x00, 0xDE, 0xC8}},
		{"write ok", GM65Reply(0x00), []byte{0x02, 0x00, 0x00, 0x01, 0x00, 0x33, 0x31}},
		{"read reply", GM65Reply(0x3E), []byte{0x02, 0x00, 0x00, 0x01, 0x3E, 0xE4, 0xAC}},
	} {
		if string(tc.got) != string(tc.want) {
			t.Errorf("%s: % X, want % X", tc.name, tc.got, tc.want)
		}
	}
}

// gm65Module answers zone-bit commands on the device side of a
// pseudo-terminal, as a GM65 does, and types scans.
type gm65Module struct {
	mu      sync.Mutex
	zones   map[uint16]byte
	written chan uint16 // each zone written
	// around, if set for a zone, is typed (as a scan would be) just
	// before and just after the reply to a write of that zone, in the
	// same write: a scan made while the module is being set up.
	around map[uint16][2]string
}

func (m *gm65Module) zone(a uint16) byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.zones[a]
}

func (m *gm65Module) serve(dev *os.File) {
	var buf []byte
	chunk := make([]byte, 64)
	for {
		n, err := dev.Read(chunk)
		if err != nil {
			return
		}
		buf = append(buf, chunk[:n]...)
		for len(buf) >= 9 {
			i := strings.Index(string(buf), "\x7e\x00")
			if i < 0 || len(buf) < i+9 {
				break
			}
			f := buf[i : i+9]
			buf = buf[i+9:]
			if c := crc16(f[2:7]); uint16(f[7])<<8|uint16(f[8]) != c {
				continue // bad CRC: no reply, as the manual says
			}
			addr := uint16(f[4])<<8 | uint16(f[5])
			m.mu.Lock()
			var reply []byte
			switch f[2] {
			case 0x07:
				reply = GM65Reply(m.zones[addr])
			case 0x08:
				m.zones[addr] = f[6]
				reply = GM65Reply(0x00)
				if a, ok := m.around[addr]; ok {
					reply = append(append([]byte(a[0]), reply...), a[1]...)
				}
			}
			m.mu.Unlock()
			dev.Write(reply)
			if f[2] == 0x08 {
				m.written <- addr
			}
		}
	}
}

func TestGM65SetUpOnOpen(t *testing.T) {
	link := filepath.Join(t.TempDir(), "gm65")
	dev := serialtest.PlugListening(t, link)
	// Factory state: manual mode, LED on, sound on, aimer and light standard.
	m := &gm65Module{zones: map[uint16]byte{0x0000: 0xD4}, written: make(chan uint16, 8)}
	go m.serve(dev)
	s := &Scanner{Name: "front", Port: link, Baud: 9600, GM65: &GM65{Mode: "continuous", AIMID: true}}
	lines := runScanner(t, s)
	for _, want := range []uint16{0x0000, 0x00D0} {
		select {
		case a := <-m.written:
			if a != want {
				t.Fatalf("zone %#x written, want %#x", a, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("zone %#x never written", want)
		}
	}
	if got := m.zone(0x0000); got != 0xD6 {
		t.Errorf("mode zone %#x, want 0xd6 (continuous, other bits kept)", got)
	}
	if got := m.zone(0x00D0); got != 0x80 {
		t.Errorf("AIM zone %#x, want 0x80", got)
	}
	// The replies were the set-up's, not scans: the first line is the scan.
	dev.Write([]byte("]Q1ABCD2345\r"))
	wantLine(t, lines, "]Q1ABCD2345")
}

// A scan made while the module is being set up reaches the line reader:
// the set-up keeps what is not its reply.
func TestGM65ScanDuringSetUp(t *testing.T) {
	link := filepath.Join(t.TempDir(), "gm65")
	dev := serialtest.PlugListening(t, link)
	m := &gm65Module{
		zones:   map[uint16]byte{0x0000: 0xD6},
		written: make(chan uint16, 8),
		around:  map[uint16][2]string{0x00D0: {"]Q1BEFORE1\r", "]Q1AFTER22\r"}},
	}
	go m.serve(dev)
	lines := runScanner(t, &Scanner{Name: "front", Port: link, Baud: 9600, GM65: &GM65{Mode: "continuous", AIMID: true}})
	wantLine(t, lines, "]Q1BEFORE1")
	wantLine(t, lines, "]Q1AFTER22")
	if got := m.zone(0x00D0); got != 0x80 {
		t.Errorf("AIM zone %#x, want 0x80", got)
	}
}

func TestHIDScanner(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "usb-Scanner-event-kbd")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	lines := runScanner(t, &Scanner{Name: "front", Kind: KindHID, Port: fifo})
	w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Write(hidscan.Keystrokes("]Q1ABcd-2345\r9787020002207\n"))
	wantLine(t, lines, "]Q1ABcd-2345")
	wantLine(t, lines, "9787020002207")
}
