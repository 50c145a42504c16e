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
	// onEcho is called when an echo not configured is found (see
	// probeEcho); from then on this exchanger drops echoes.
	onEcho  func()
	portErr error // set when the port itself failed (unplugged)
	buf     []byte
}

// echoProbe bounds the wait for a second reply after a status reply that
// is byte for byte the query sent. On 8a boards the echo of a query is a
// valid "all doors closed" reply, so only a second reply arriving proves
// an echo; a board of eight channels or fewer with every door closed
// really does answer with the query's bytes, and costs this much a poll.
const echoProbe = 150 * time.Millisecond

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
			if err == nil && probeEcho && !x.echo && bytes.HasPrefix(x.buf, frame) {
				return x.probeEcho(frame, parse, chunk)
			}
			return err
		}
	}
	if echoLeft > 0 {
		return fmt.Errorf("%w: the adapter did not echo the frame sent (check hardware.lockboard.echo)", errNoReply)
	}
	return errNoReply
}

// probeEcho is called when the bytes read hold a reply and start with
// the frame sent. If another valid reply follows them within echoProbe,
// the frame's bytes were the adapter's echo: the second reply is taken,
// and echoes are dropped from now on. Otherwise they were (the start of)
// the board's reply after all.
func (x *exchanger) probeEcho(frame []byte, parse func([]byte) error, chunk []byte) error {
	end := time.Now().Add(echoProbe)
	for {
		if parse(x.buf[len(frame):]) == nil {
			x.echo = true
			if x.onEcho != nil {
				x.onEcho()
			}
			return nil
		}
		if !time.Now().Before(end) {
			break
		}
		n, err := x.port.Read(chunk)
		if err != nil {
			x.portErr = err
			return err
		}
		x.buf = append(x.buf, chunk[:n]...)
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
