package lockboard

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"go.bug.st/serial"
)

var (
	errNoReply = errors.New("no reply")
	// errAmbiguous: the only reply was byte for byte the query, on an
	// adapter not yet known to echo or not: it may be the echo (the
	// board's reply lost or late) or the reply of a board whose doors are
	// all closed. No door state is taken from it.
	errAmbiguous = errors.New("the only reply was byte for byte the query (an echo, or every door closed): not taken as the doors' state until the adapter is known")
	// errEcho: the adapter was said to echo, and what came back first was
	// not the frame sent.
	errEcho = errors.New("the adapter's echo is not the frame sent (bus collision, or an adapter that does not echo: check hardware.lockboard.echo)")
)

// exchanger sends one frame and reads its reply, with a bounded wait and
// a quiet gap after.
type exchanger struct {
	port    serial.Port
	proto   Protocol
	timeout time.Duration
	quiet   time.Duration
	// echo: the adapter hears its own transmission (a half-duplex
	// RS-485 adapter without echo suppression), so every frame sent comes
	// back first and is not a reply.
	echo bool
	// noEcho: the adapter is known not to echo (probeAdapter found nothing
	// come back, or a reply came first that was not the frame sent).
	noEcho bool
	// onEcho is called when an echo not configured is found (see
	// probeEcho); from then on this exchanger drops echoes.
	onEcho  func()
	portErr error // set when the port itself failed (unplugged)
	buf     []byte
}

// adapterProbe bounds the wait for an adapter to hear its own test frame.
// An echo is the adapter's own transmission: it comes back within the
// frame's time on the wire and the USB latency, not a board's turnaround.
const adapterProbe = 100 * time.Millisecond

// probeAdapter tells an echoing adapter from one that is not, by content
// and position, before any board is asked anything: it sends a frame no
// board answers (a status query with its checksum spoiled) and looks at
// what comes back first. Byte for byte the frame: the adapter echoes.
// Nothing: it does not. Anything else leaves the question open (see
// exchange). On 8a, the echo of a status query is a valid "all doors
// closed" reply, so a reply alone cannot tell.
func (x *exchanger) probeAdapter(board int) {
	if x.echo || x.noEcho {
		return
	}
	frame := append([]byte(nil), x.proto.StatusAll(board)...)
	frame[len(frame)-1] ^= 0xA5
	_ = x.port.ResetInputBuffer()
	if _, err := x.port.Write(frame); err != nil {
		x.portErr = err
		return
	}
	defer time.Sleep(x.quiet)
	var got []byte
	chunk := make([]byte, 64)
	for end := time.Now().Add(adapterProbe); time.Now().Before(end) && len(got) < len(frame); {
		n, err := x.port.Read(chunk)
		if err != nil {
			x.portErr = err
			return
		}
		got = append(got, chunk[:n]...)
	}
	switch {
	case len(got) == 0:
		x.noEcho = true
	case bytes.HasPrefix(got, frame):
		x.foundEcho()
	}
}

func (x *exchanger) foundEcho() {
	x.echo = true
	if x.onEcho != nil {
		x.onEcho()
	}
}

// exchange writes frame and feeds what arrives to parse until it finds a
// reply or the timeout passes. With probeEcho, a reply that is the frame
// itself is checked for being the adapter's echo (see echoProbe).
func (x *exchanger) exchange(frame []byte, parse func([]byte) error, probeEcho bool) error {
	defer time.Sleep(x.quiet) // the bus's turnaround gap
	// Anything still in the buffer belongs to an earlier exchange.
	_ = x.port.ResetInputBuffer()
	if _, err := x.port.Write(frame); err != nil {
		x.portErr = err
		return err
	}
	x.buf = x.buf[:0]
	echoLeft := 0
	if x.echo {
		echoLeft = len(frame)
	}
	deadline := time.Now().Add(x.timeout)
	chunk := make([]byte, 256)
	for time.Now().Before(deadline) {
		n, err := x.port.Read(chunk)
		if err != nil {
			x.portErr = err
			return err
		}
		got := chunk[:n]
		for echoLeft > 0 && len(got) > 0 {
			if got[0] != frame[len(frame)-echoLeft] {
				return errEcho
			}
			got, echoLeft = got[1:], echoLeft-1
		}
		if len(got) == 0 {
			continue
		}
		x.buf = append(x.buf, got...)
		if len(x.buf) > 4096 { // a babbling line: keep the tail
			x.buf = append(x.buf[:0], x.buf[len(x.buf)-512:]...)
		}
		if err := parse(x.buf); !errors.Is(err, ErrIncomplete) {
			if err == nil && !x.echo && !x.noEcho {
				if bytes.HasPrefix(x.buf, frame) {
					if !probeEcho {
						return errAmbiguous
					}
					return x.probeEcho(frame, parse, chunk, deadline)
				}
				// A reply came first that is not the frame: no echo.
				x.noEcho = true
			}
			return err
		}
	}
	if echoLeft > 0 {
		return fmt.Errorf("%w: the adapter did not echo the frame sent (check hardware.lockboard.echo)", errNoReply)
	}
	return errNoReply
}

// probeEcho is called, on an adapter not known to echo or not, when the
// bytes read hold a reply and start with the frame sent. If another valid
// reply follows them before the reply deadline (a board may answer well
// after the echo), the frame's bytes were the adapter's echo: the second
// reply is taken, and echoes are dropped from now on. If the frame's bytes
// are the whole of it, they may be the echo or a board's reply that
// happens to be the query's bytes: no door state is taken from them
// (errAmbiguous). If more follows that is not a reply, the frame's bytes
// were the start of the board's reply after all (a cu reply can begin
// like the query).
func (x *exchanger) probeEcho(frame []byte, parse func([]byte) error, chunk []byte, deadline time.Time) error {
	for {
		if parse(x.buf[len(frame):]) == nil {
			x.foundEcho()
			return nil
		}
		if !time.Now().Before(deadline) {
			break
		}
		n, err := x.port.Read(chunk)
		if err != nil {
			x.portErr = err
			return err
		}
		x.buf = append(x.buf, chunk[:n]...)
	}
	if len(x.buf) == len(frame) {
		return errAmbiguous
	}
	// Parse again from the start: the first reply found is the one found
	// before, which also sets the caller's result back to it.
	return parse(x.buf)
}

func (x *exchanger) unlock(board, ch int) (open bool, err error) {
	err = x.exchange(x.proto.Unlock(board, ch), func(b []byte) error {
		var perr error
		open, perr = x.proto.ParseUnlock(b, board, ch)
		return perr
	}, false)
	return open, err
}

func (x *exchanger) statusAll(board int) (st Status, err error) {
	err = x.exchange(x.proto.StatusAll(board), func(b []byte) error {
		var perr error
		st, perr = x.proto.ParseStatusAll(b, board)
		return perr
	}, true)
	return st, err
}
