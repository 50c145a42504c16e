package lockboard_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockerd/lockerd/drivers/lockboard"
	"github.com/lockerd/lockerd/drivers/lockboard/lockboardtest"
	"github.com/lockerd/lockerd/drivers/serialscan/serialtest"
	"github.com/lockerd/lockerd/locker"
)

type bench struct {
	t      *testing.T
	link   string
	sim    *lockboardtest.Bus
	hw     *lockboard.Hardware
	unplug func()
	logs   logSink
}

// logSink keeps the driver's log text.
type logSink struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// plug connects the simulated boards to a fresh pseudo-terminal behind
// the adapter's stable name, and returns a function that unplugs it.
func (b *bench) plug() func() {
	dev := serialtest.PlugListening(b.t, b.link)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = b.sim.Serve(dev)
	}()
	return func() {
		dev.Close()
		<-done
	}
}

func newBench(t *testing.T, protocol string, sensors ...string) *bench {
	return newBenchWith(t, protocol, nil, false, sensors...)
}

// echoingAdapter makes the simulated adapter hear what it sends.
func echoingAdapter(s *lockboardtest.Bus) { s.Echo = true }

// newBenchWith is newBench with the simulated bus set up by simSetup
// before it is plugged in, and a driver told (or not) that the adapter
// echoes.
func newBenchWith(t *testing.T, protocol string, simSetup func(*lockboardtest.Bus), echoConfigured bool, sensors ...string) *bench {
	t.Helper()
	return newBenchTimeout(t, protocol, simSetup, echoConfigured, 200*time.Millisecond, sensors...)
}

// newBenchTimeout is newBenchWith with the driver's reply timeout.
func newBenchTimeout(t *testing.T, protocol string, simSetup func(*lockboardtest.Bus), echoConfigured bool, replyTimeout time.Duration, sensors ...string) *bench {
	t.Helper()
	b := &bench{t: t, link: filepath.Join(t.TempDir(), "usb-FTDI_RS485-if00-port0"), sim: lockboardtest.NewBus(protocol, 1, 2)}
	if simSetup != nil {
		simSetup(b.sim)
	}
	b.unplug = b.plug()
	p, err := lockboard.ProtocolByName(protocol)
	if err != nil {
		t.Fatal(err)
	}
	b.hw, err = lockboard.New(lockboard.Config{Port: b.link, Protocol: p, Echo: echoConfigured, ReplyTimeout: replyTimeout,
		Quiet: 2 * time.Millisecond, Poll: 30 * time.Millisecond, MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
		Locks: []string{"B1/L5", "B2/L1"}, Sensors: sensors, Log: slog.New(slog.NewTextHandler(&b.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.hw.Close() })
	return b
}

// wait returns the next input change for pin (skipping others).
func (b *bench) input(pin string, active bool) {
	b.t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case ch := <-b.hw.Inputs():
			if ch.Pin == pin && ch.Active == active {
				return
			}
		case <-deadline:
			b.t.Fatalf("no change of %s to %v", pin, active)
		}
	}
}

func (b *bench) fault(device string, ok bool) locker.HardwareFault {
	b.t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case f := <-b.hw.Faults():
			if strings.HasPrefix(f.Device, device) && f.OK == ok {
				return f
			}
		case <-deadline:
			b.t.Fatalf("no fault report %s ok=%v", device, ok)
		}
	}
}

func TestUnlockOpensTheDoorOnce(t *testing.T) {
	for _, proto := range []string{"cu", "8a"} {
		t.Run(proto, func(t *testing.T) {
			b := newBench(t, proto, "B1/S5", "B2/S1")
			if open, err := b.hw.Read("B1/S5"); err != nil || open {
				t.Fatalf("B1/S5 at start: %v %v", open, err)
			}
			if err := b.hw.Pulse("B1/L5", 500*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			b.input("B1/S5", true)
			if u := b.sim.Unlocks(); len(u) != 1 || u[0].Board != 1 || u[0].Channel != 5 {
				t.Fatalf("unlock frames received %+v", u)
			}
			b.sim.SetDoor(1, 5, false)
			b.input("B1/S5", false)
			if err := b.hw.SetOutput("B1/L5", true); err == nil {
				t.Error("a held lock output accepted")
			}
		})
	}
}

// An unlock is followed at once by a status poll of its board, before
// any other board's: the opening is read without waiting for a round of
// other (perhaps silent) boards.
func TestStatusPollRightAfterUnlock(t *testing.T) {
	for _, proto := range []string{"cu", "8a"} {
		t.Run(proto, func(t *testing.T) {
			b := newBench(t, proto, "B1/S5", "B2/S1")
			for i := range 5 {
				if err := b.hw.Pulse("B2/L1", 100*time.Millisecond); err != nil {
					t.Fatal(err)
				}
				b.input("B2/S1", true)
				reqs := b.sim.Requests()
				at := -1
				for k, r := range reqs {
					if r.Unlock {
						at = k // the last unlock
					}
				}
				if at < 0 || at+1 >= len(reqs) {
					t.Fatalf("pulse %d: no unlock followed by a request in %+v", i, reqs)
				}
				if next := reqs[at+1]; next.Unlock || next.Board != 2 {
					t.Fatalf("pulse %d: after the unlock of board 2 came %+v, want a status query of board 2", i, next)
				}
				b.sim.SetDoor(2, 1, false)
				b.input("B2/S1", false)
			}
		})
	}
}

func TestItemSensor(t *testing.T) {
	b := newBench(t, "cu", "B1/S5", "B1/I5")
	b.sim.SetItem(1, 5, true)
	b.input("B1/I5", true)
	if v, err := b.hw.Read("B1/I5"); err != nil || !v {
		t.Fatalf("item: %v %v", v, err)
	}
	if _, err := lockboard.New(lockboard.Config{Port: "/nonexistent", Protocol: lockboard.EightA{}, Sensors: []string{"B1/I5"}}); err == nil {
		t.Error("item sensor on 8a boards accepted")
	}
}

// A lost reply to an unlock is an error, and the unlock is not sent again.
func TestLostUnlockReplyIsNotResent(t *testing.T) {
	b := newBench(t, "cu", "B1/S5")
	b.sim.DropReplies(1)
	err := b.hw.Pulse("B1/L5", 500*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "did not answer the unlock of channel 5") || !strings.Contains(err.Error(), "not re-sent") {
		t.Fatalf("lost reply: %v", err)
	}
	// The board acted: the door opens, and polling goes on.
	b.input("B1/S5", true)
	if n := len(b.sim.Unlocks()); n != 1 {
		t.Fatalf("%d unlock frames, want exactly 1", n)
	}
}

func TestNoiseOnTheLine(t *testing.T) {
	b := newBench(t, "cu", "B1/S5")
	b.sim.Garbage([]byte{0xFF, 0x02, 0x01, 0x00, 0x00, 0x03, 0x02, 0x55})
	if err := b.hw.Pulse("B1/L5", 500*time.Millisecond); err != nil {
		t.Fatalf("garbage before the reply: %v", err)
	}
	b.input("B1/S5", true)
	// One corrupted status reply is noise: no fault, the door stays known.
	b.sim.CorruptReplies(1)
	frames := b.sim.Frames()
	for b.sim.Frames() < frames+4 {
		select {
		case f := <-b.hw.Faults():
			t.Fatalf("fault after one corrupted reply: %+v", f)
		case <-time.After(10 * time.Millisecond):
		}
	}
	if open, err := b.hw.Read("B1/S5"); err != nil || !open {
		t.Fatalf("after noise: %v %v", open, err)
	}
}

func TestSilentBoardIsUnknownAndAlarms(t *testing.T) {
	b := newBench(t, "cu", "B1/S5", "B2/S1")
	b.sim.Mute(2, true)
	f := b.fault("lock board 2", false)
	if !strings.Contains(f.Detail, "doors unknown") {
		t.Errorf("fault detail %q", f.Detail)
	}
	if _, err := b.hw.Read("B2/S1"); err == nil || !strings.Contains(err.Error(), "unknown") {
		t.Fatalf("door of a silent board: %v", err)
	}
	if _, err := b.hw.Read("B1/S5"); err != nil {
		t.Fatalf("board 1 still answers: %v", err)
	}
	b.sim.Mute(2, false)
	b.fault("lock board 2", true)
	if _, err := b.hw.Read("B2/S1"); err != nil {
		t.Fatal(err)
	}
}

// WaitAnswered lets a board that missed its first poll answer the next
// one, names a board that stays silent, and gives up when told to.
func TestWaitAnswered(t *testing.T) {
	t.Run("first reply lost", func(t *testing.T) {
		b := newBenchWith(t, "cu", func(s *lockboardtest.Bus) { s.DropReplies(1) }, false, "B1/S5", "B2/S1")
		if err := b.hw.WaitAnswered(context.Background(), 3); err != nil {
			t.Fatal(err)
		}
		for _, pin := range []string{"B1/S5", "B2/S1"} {
			if _, err := b.hw.Read(pin); err != nil {
				t.Fatalf("%s after WaitAnswered: %v", pin, err)
			}
		}
	})
	t.Run("board silent", func(t *testing.T) {
		b := newBenchWith(t, "cu", func(s *lockboardtest.Bus) { s.Mute(2, true) }, false, "B1/S5", "B2/S1")
		err := b.hw.WaitAnswered(context.Background(), 2)
		if err == nil || !strings.Contains(err.Error(), "board 2") || strings.Contains(err.Error(), "board 1") {
			t.Fatalf("WaitAnswered with board 2 silent: %v", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := b.hw.WaitAnswered(ctx, 1000); !errors.Is(err, context.Canceled) {
			t.Fatalf("WaitAnswered after cancel: %v", err)
		}
		b.sim.Mute(2, false)
		if err := b.hw.WaitAnswered(context.Background(), 3); err != nil {
			t.Fatalf("board 2 back: %v", err)
		}
	})
}

func TestAdapterUnpluggedAndBack(t *testing.T) {
	b := newBench(t, "8a", "B1/S5")
	b.unplug()
	b.fault("lockboard bus", false)
	if _, err := b.hw.Read("B1/S5"); err == nil {
		t.Fatal("door known with the adapter unplugged")
	}
	if err := b.hw.Pulse("B1/L5", 500*time.Millisecond); err == nil {
		t.Fatal("unlock accepted with no bus")
	}
	b.plug()
	b.fault("lockboard bus", true)
	if err := b.hw.Pulse("B1/L5", 500*time.Millisecond); err != nil {
		t.Fatalf("after replug: %v", err)
	}
	b.input("B1/S5", true)
}

// On an adapter that hears its own transmission, each frame's echo is
// dropped: on 8a the echo of an open is byte for byte the board's "opened"
// reply, and the echo of a status query reads as "all doors closed".
//
// Without hardware.lockboard.echo the driver finds the echo by itself at
// the first status poll (a reply that is the query, followed by a second
// reply), says so, and drops echoes from then on.
func TestEchoingAdapter(t *testing.T) {
	for _, tc := range []struct {
		proto      string
		configured bool
	}{{"cu", true}, {"8a", true}, {"cu", false}, {"8a", false}} {
		t.Run(fmt.Sprintf("%s/configured=%v", tc.proto, tc.configured), func(t *testing.T) {
			b := newBenchWith(t, tc.proto, echoingAdapter, tc.configured, "B1/S5", "B2/S1")
			b.sim.SetDoor(2, 1, true)
			b.input("B2/S1", true)
			if found := strings.Contains(b.logs.String(), "adapter echoes what it sends"); found == tc.configured {
				t.Errorf("echo found by itself: %v, want %v\n%s", found, !tc.configured, b.logs.String())
			}
			b.sim.Mute(1, true)
			b.fault("lock board 1", false)
			// The echo of the unlock comes back, the reply does not: that
			// is no reply, not an opened door.
			err := b.hw.Pulse("B1/L5", 500*time.Millisecond)
			if err == nil || !strings.Contains(err.Error(), "did not answer the unlock") {
				t.Fatalf("unlock on a muted board behind an echoing adapter: %v", err)
			}
			b.sim.Mute(1, false)
			b.fault("lock board 1", true)
			if err := b.hw.Pulse("B1/L5", 500*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			b.input("B1/S5", true)
			// The muted board heard nothing; the second unlock went once.
			if u := b.sim.Unlocks(); len(u) != 1 || u[0].Board != 1 || u[0].Channel != 5 {
				t.Fatalf("unlock frames acted on %+v, want exactly one, board 1 channel 5", u)
			}
		})
	}
}

// echo set on an adapter that does not echo: the boards' replies are not
// the frames sent, and the fault says what to check.
func TestEchoConfiguredButAdapterSilent(t *testing.T) {
	b := newBenchWith(t, "cu", nil, true, "B1/S5")
	f := b.fault("lock board 1", false)
	if !strings.Contains(f.Detail, "hardware.lockboard.echo") {
		t.Errorf("fault detail %q does not point at the echo setting", f.Detail)
	}
}

// An 8a board of eight channels with every door closed answers a query
// with the query's own bytes. That is a reply, not an echo: no second
// reply follows, nothing is said, and the doors read as they are.
func TestEightChannelBoardIsNotAnEcho(t *testing.T) {
	b := newBenchWith(t, "8a", func(s *lockboardtest.Bus) { s.Channels = 8 }, false, "B1/S5", "B2/S1")
	for _, pin := range []string{"B1/S5", "B2/S1"} {
		if open, err := b.hw.Read(pin); err != nil || open {
			t.Fatalf("%s: %v %v, want closed", pin, open, err)
		}
	}
	b.sim.SetDoor(2, 1, true)
	b.input("B2/S1", true)
	b.sim.SetDoor(2, 1, false)
	b.input("B2/S1", false)
	if strings.Contains(b.logs.String(), "echo") {
		t.Errorf("an echo reported on a bus without one:\n%s", b.logs.String())
	}
}

// A cu status reply can start with the very bytes of the query: board 1
// with doors 1 and 2 open (hook byte 0x03, the query's ETX) and 12-14
// open (hook byte 0x38, the query's SUM). It is still the reply.
func TestCUReplyThatStartsLikeTheQuery(t *testing.T) {
	b := newBench(t, "cu", "B1/S1", "B1/S12")
	if q := (lockboard.CU{}).StatusAll(1); q[4] != 0x03 || q[5] != 0x38 {
		t.Fatalf("query % X: the door pattern below no longer mirrors it", q)
	}
	for _, ch := range []int{1, 2, 12, 13, 14} {
		b.sim.SetDoor(1, ch, true)
	}
	b.input("B1/S1", true)
	b.input("B1/S12", true)
	select {
	case f := <-b.hw.Faults():
		t.Fatalf("fault: %+v", f)
	default:
	}
	if strings.Contains(b.logs.String(), "echo") {
		t.Errorf("an echo reported on a bus without one:\n%s", b.logs.String())
	}
}

// An 8a board behind an echoing adapter that answers well after the echo
// (400 ms; the driver used to give the second reply 150 ms): the echo,
// which reads "all doors closed", is never taken for the doors' state.
// The adapter probe at the port's opening finds the echo by itself.
func TestLateReplyBehindAnEchoingAdapter(t *testing.T) {
	b := newBenchTimeout(t, "8a", func(s *lockboardtest.Bus) { s.Echo, s.ReplyDelay = true, 400*time.Millisecond }, false,
		time.Second, "B1/S5", "B2/S1")
	b.sim.SetDoor(2, 1, true)
	b.input("B2/S1", true) // within input's 5 s: two or three polls at 2 × 400 ms
	if !strings.Contains(b.logs.String(), "adapter echoes what it sends") {
		t.Errorf("the echo was not found by itself:\n%s", b.logs.String())
	}
	if open, err := b.hw.Read("B2/S1"); err != nil || !open {
		t.Fatalf("the open door reads %v, %v", open, err)
	}
}
