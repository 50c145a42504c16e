package lockboard_test

import (
	"path/filepath"
	"testing"
	"time"

	"go.bug.st/serial"

	"github.com/lockerd/lockerd/drivers/lockboard"
	"github.com/lockerd/lockerd/drivers/lockboard/lockboardtest"
	"github.com/lockerd/lockerd/drivers/serialscan/serialtest"
)

// BenchmarkUnlockRoundTrip is one unlock through the driver (queue, frame,
// reply parse) against the board simulator on a pseudo-terminal. Its
// baseline, BenchmarkPtyRoundTrip, is the same 6-byte frame and 7-byte
// reply over the same kind of pseudo-terminal with a bare serial port:
// the ratio is what the driver adds.
func BenchmarkUnlockRoundTrip(b *testing.B) {
	link := filepath.Join(b.TempDir(), "adapter")
	sim := lockboardtest.NewBus("cu", 1)
	go sim.Serve(serialtest.PlugListening(b, link))
	hw, err := lockboard.New(lockboard.Config{Port: link, Protocol: lockboard.CU{}, Poll: time.Second, Quiet: 0,
		Locks: []string{"B1/L1"}})
	if err != nil {
		b.Fatal(err)
	}
	defer hw.Close()
	if err := hw.Pulse("B1/L1", 100*time.Millisecond); err != nil { // the bus is up
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if err := hw.Pulse("B1/L1", 100*time.Millisecond); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPtyRoundTrip(b *testing.B) {
	link := filepath.Join(b.TempDir(), "adapter")
	sim := lockboardtest.NewBus("cu", 1)
	go sim.Serve(serialtest.PlugListening(b, link))
	port, err := serial.Open(link, &serial.Mode{BaudRate: 19200})
	if err != nil {
		b.Fatal(err)
	}
	defer port.Close()
	port.SetReadTimeout(time.Second)
	frame := lockboard.CU{}.Unlock(1, 1)
	buf := make([]byte, 64)
	b.ResetTimer()
	for range b.N {
		port.Write(frame)
		got := 0
		for got < 7 {
			n, err := port.Read(buf[got:])
			if err != nil || n == 0 {
				b.Fatalf("read: %v", err)
			}
			got += n
		}
	}
}
