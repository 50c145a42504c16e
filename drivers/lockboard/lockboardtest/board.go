package lockboardtest

import (
	"io"
	"sync"
	"time"

	"github.com/lockerd/lockerd/drivers/lockboard"
)

// Bus simulates the boards behind one RS-485 adapter.
type Bus struct {
	Protocol string // "cu" or "8a"
	Channels int    // per board (default 24)
	// OpenAfterUnlock is how long a door takes to swing open after its
	// lock is released; AutoClose closes it again after (0: stays open).
	OpenAfterUnlock, AutoClose time.Duration
	// Echo makes the adapter hear its own transmission, as a half-duplex
	// adapter without echo suppression does: every byte the host sends
	// comes back to it before any reply.
	Echo bool
	// ReplyDelay is how long a board takes to answer (the echo, if any,
	// comes back at once).
	ReplyDelay time.Duration

	mu      sync.Mutex
	boards  map[int]*board
	unlocks []Unlock
	garbage []byte // sent before the next reply
	corrupt int    // replies to send with a bad checksum
	drop    int    // replies to lose (the board acts, the reply never arrives)
	frames  int
	log     []Request
}

// Request is one valid request frame the bus received, in order.
type Request struct {
	Board   int
	Channel int  // 0 for a status query of every channel
	Unlock  bool // an unlock; else a status query
}

// Unlock is one unlock frame a board received.
type Unlock struct {
	Board, Channel int
	At             time.Time
}

type board struct {
	mute bool
	hook map[int]bool
	item map[int]bool
}

// NewBus makes a bus with boards at addrs.
func NewBus(protocol string, addrs ...int) *Bus {
	b := &Bus{Protocol: protocol, Channels: 24, boards: map[int]*board{}}
	for _, a := range addrs {
		b.boards[a] = &board{hook: map[int]bool{}, item: map[int]bool{}}
	}
	return b
}

// Mute makes a board stop (or start again) answering.
func (b *Bus) Mute(addr int, mute bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.boards[addr].mute = mute
}

// SetDoor opens or closes a door (its lock hook) by hand.
func (b *Bus) SetDoor(addr, ch int, open bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.boards[addr].hook[ch] = open
}

// SetItem sets an item-present sensor.
func (b *Bus) SetItem(addr, ch int, present bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.boards[addr].item[ch] = present
}

// Door reports whether a door is open.
func (b *Bus) Door(addr, ch int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.boards[addr].hook[ch]
}

// Garbage queues bytes to send on the line before the next reply.
func (b *Bus) Garbage(p []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.garbage = append(b.garbage, p...)
}

// CorruptReplies makes the next n replies carry a wrong checksum.
func (b *Bus) CorruptReplies(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.corrupt += n
}

// DropReplies makes the next n replies get lost on the line: the board
// still acts on the request.
func (b *Bus) DropReplies(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.drop += n
}

// Unlocks returns every unlock frame received so far.
func (b *Bus) Unlocks() []Unlock {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Unlock(nil), b.unlocks...)
}

// Requests returns the valid request frames received (the last 2048 at
// least), to any board, answered or not, in order.
func (b *Bus) Requests() []Request {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Request(nil), b.log...)
}

// Frames counts the valid request frames received.
func (b *Bus) Frames() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.frames
}

// Serve answers requests read from dev (the device side of the adapter)
// until it fails (the test unplugs it by closing dev).
func (b *Bus) Serve(dev io.ReadWriter) error {
	var buf []byte
	chunk := make([]byte, 256)
	for {
		n, err := dev.Read(chunk)
		if err != nil {
			return err
		}
		if b.Echo {
			if _, err := dev.Write(chunk[:n]); err != nil {
				return err
			}
		}
		buf = append(buf, chunk[:n]...)
		for {
			req, rest, ok := b.nextRequest(buf)
			buf = rest
			if !ok {
				break
			}
			if reply := b.answer(req); reply != nil {
				time.Sleep(b.ReplyDelay)
				if _, err := dev.Write(reply); err != nil {
					return err
				}
			}
		}
		if len(buf) > 1024 {
			buf = buf[len(buf)-64:]
		}
	}
}

type request struct {
	board, ch int
	cmd       byte // cu command, or 0x11 (open) / 0x33 (query) for 8a
}

// nextRequest finds the first valid request frame in buf, dropping bytes
// before it that cannot start one.
func (b *Bus) nextRequest(buf []byte) (request, []byte, bool) {
	size := 6
	if b.Protocol == "8a" {
		size = 5
	}
	for i := 0; i+size <= len(buf); i++ {
		f := buf[i : i+size]
		if b.Protocol == "8a" {
			if (f[0] == 0x8A || f[0] == 0x80) && string(lockboard.EAFrame(f[:4]...)) == string(f) {
				return request{board: int(f[1]), ch: int(f[2]), cmd: f[3]}, buf[i+size:], true
			}
			continue
		}
		if f[0] == 0x02 && f[4] == 0x03 && string(lockboard.CUFrame(f[1], f[2], f[3])) == string(f) {
			return request{board: int(f[1]), ch: int(f[2]), cmd: f[3]}, buf[i+size:], true
		}
	}
	// Keep a possible partial frame at the end.
	if len(buf) >= size {
		buf = buf[len(buf)-size+1:]
	}
	return request{}, buf, false
}

func bitmap(m map[int]bool, channels int) []byte {
	out := make([]byte, (channels+7)/8)
	for ch, on := range m {
		if on && ch >= 1 && ch <= channels {
			out[(ch-1)/8] |= 1 << ((ch - 1) % 8)
		}
	}
	return out
}

func (b *Bus) answer(r request) []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.frames++
	unlock := (b.Protocol != "8a" && r.cmd == lockboard.CUUnlock) || (b.Protocol == "8a" && r.cmd == 0x11)
	if len(b.log) >= 4096 {
		b.log = append(b.log[:0], b.log[2048:]...)
	}
	b.log = append(b.log, Request{Board: r.board, Channel: r.ch, Unlock: unlock})
	bd := b.boards[r.board]
	if bd == nil || bd.mute {
		return nil
	}
	var reply []byte
	switch {
	case b.Protocol != "8a" && r.cmd == lockboard.CUUnlock, b.Protocol == "8a" && r.cmd == 0x11:
		b.unlocks = append(b.unlocks, Unlock{Board: r.board, Channel: r.ch, At: time.Now()})
		b.release(r.board, r.ch)
		if b.Protocol == "8a" {
			reply = lockboard.EAFrame(0x8A, byte(r.board), byte(r.ch), 0x11)
		} else {
			reply = lockboard.CUFrame(byte(r.board), byte(r.ch), lockboard.CUUnlock, 0x01|b.itemBit(bd, r.ch))
		}
	case b.Protocol != "8a" && r.cmd == lockboard.CUStatus:
		var st byte
		if bd.hook[r.ch] {
			st = 1
		}
		reply = lockboard.CUFrame(byte(r.board), byte(r.ch), lockboard.CUStatus, st|b.itemBit(bd, r.ch))
	case b.Protocol != "8a" && r.cmd == lockboard.CUStatusAll:
		data := append(bitmap(bd.hook, b.Channels), bitmap(bd.item, b.Channels)...)
		reply = lockboard.CUFrame(byte(r.board), 0, lockboard.CUStatusAll, data...)
	case b.Protocol == "8a" && r.cmd == 0x33:
		reply = lockboard.EAFrame(append(append([]byte{0x80, byte(r.board)}, bitmap(bd.hook, b.Channels)...), 0x33)...)
	default:
		return nil
	}
	if b.drop > 0 {
		b.drop--
		return nil
	}
	if b.corrupt > 0 {
		b.corrupt--
		reply[len(reply)-1] ^= 0x5A
	}
	if len(b.garbage) > 0 {
		reply = append(b.garbage, reply...)
		b.garbage = nil
	}
	return reply
}

func (b *Bus) itemBit(bd *board, ch int) byte {
	if bd.item[ch] {
		return 0x02
	}
	return 0
}

// release pops a door open after OpenAfterUnlock (at once if 0, so the
// status read after the unlock sees it). Called with mu held.
func (b *Bus) release(addr, ch int) {
	if b.OpenAfterUnlock <= 0 {
		b.boards[addr].hook[ch] = true
		b.closeLater(addr, ch)
		return
	}
	time.AfterFunc(b.OpenAfterUnlock, func() {
		b.SetDoor(addr, ch, true)
		b.closeLater(addr, ch)
	})
}

// closeLater closes a door after AutoClose, if set.
func (b *Bus) closeLater(addr, ch int) {
	if b.AutoClose > 0 {
		time.AfterFunc(b.AutoClose, func() { b.SetDoor(addr, ch, false) })
	}
}
