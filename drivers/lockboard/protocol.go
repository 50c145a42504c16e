package lockboard

import (
	"errors"
	"fmt"
)

// Status is what a board reports for its channels (index 0 = channel 1).
type Status struct {
	Hook []bool // lock hook released: the door is open
	Item []bool // item present (cu only; nil on 8a)
}

// Protocol encodes requests and finds their replies in the bytes read.
type Protocol interface {
	Name() string
	Baud() int
	Unlock(board, ch int) []byte
	StatusAll(board int) []byte
	// ParseUnlock and ParseStatusAll look for the reply to the request
	// for board in buf, skipping anything before it that is not that
	// reply (garbage, a corrupted frame, another board's frame). They
	// return ErrIncomplete while a reply may still be arriving.
	ParseUnlock(buf []byte, board, ch int) (open bool, err error)
	ParseStatusAll(buf []byte, board int) (Status, error)
}

// ErrIncomplete means no whole reply is in the buffer yet.
var ErrIncomplete = errors.New("incomplete reply")

// ProtocolByName returns the protocol for hardware.lockboard.protocol.
func ProtocolByName(name string) (Protocol, error) {
	switch name {
	case "cu":
		return CU{}, nil
	case "8a":
		return EightA{}, nil
	}
	return nil, fmt.Errorf("lock-board protocol %q unknown (cu or 8a)", name)
}

func sum(b []byte) byte {
	var s byte
	for _, c := range b {
		s += c
	}
	return s
}

func xor(b []byte) byte {
	var x byte
	for _, c := range b {
		x ^= c
	}
	return x
}

func bits(data []byte, n int) []bool {
	out := make([]bool, n)
	for i := range n {
		out[i] = data[i/8]&(1<<(i%8)) != 0
	}
	return out
}

// maxBitmap is the widest channel bitmap accepted (64 channels a board).
const maxBitmap = 8

// CU is the "CU" family: 02 ADDR CH CMD 03 SUM.
type CU struct{}

const (
	cuSTX       = 0x02
	cuETX       = 0x03
	CUStatus    = 0x30
	CUUnlock    = 0x31
	CUStatusAll = 0x32
)

func (CU) Name() string { return "cu" }
func (CU) Baud() int    { return 19200 }

// CUFrame builds 02 ADDR CH CMD [DATA...] 03 SUM.
func CUFrame(addr, ch, cmd byte, data ...byte) []byte {
	f := append([]byte{cuSTX, addr, ch, cmd}, data...)
	f = append(f, cuETX)
	return append(f, sum(f))
}

func (CU) Unlock(board, ch int) []byte { return CUFrame(byte(board), byte(ch), CUUnlock) }
func (CU) StatusAll(board int) []byte  { return CUFrame(byte(board), 0, CUStatusAll) }

// cuFind returns the data of the first valid reply 02 addr ch cmd DATA 03
// SUM in buf whose data length is one of lens.
func cuFind(buf []byte, addr, ch, cmd byte, lens func(n int) bool, maxData int) ([]byte, error) {
	for i := 0; i < len(buf); i++ {
		if buf[i] != cuSTX {
			continue
		}
		rest := buf[i:]
		if len(rest) < 4 || rest[1] != addr || rest[2] != ch || rest[3] != cmd {
			continue
		}
		for n := 0; n <= maxData && 4+n+2 <= len(rest); n++ {
			end := 4 + n + 2
			if lens(n) && rest[4+n] == cuETX && rest[end-1] == sum(rest[:end-1]) {
				return rest[4 : 4+n], nil
			}
		}
	}
	// Nothing valid yet: a reply may still be arriving after the noise.
	return nil, ErrIncomplete
}

// ParseUnlock reads 02 ADDR CH 31 ST 03 SUM; ST bit 0 is the hook.
func (CU) ParseUnlock(buf []byte, board, ch int) (bool, error) {
	d, err := cuFind(buf, byte(board), byte(ch), CUUnlock, func(n int) bool { return n == 1 }, 1)
	if err != nil {
		return false, err
	}
	return d[0]&1 != 0, nil
}

// ParseStatusAll reads 02 ADDR 00 32 H[N] I[N] 03 SUM: N bytes of hook
// bits then N bytes of item bits, channel 1 in bit 0 of the first byte.
func (CU) ParseStatusAll(buf []byte, board int) (Status, error) {
	d, err := cuFind(buf, byte(board), 0, CUStatusAll, func(n int) bool { return n > 0 && n%2 == 0 }, 2*maxBitmap)
	if err != nil {
		return Status{}, err
	}
	n := len(d) / 2
	return Status{Hook: bits(d[:n], 8*n), Item: bits(d[n:], 8*n)}, nil
}

// EightA is the "8A/80" family.
type EightA struct{}

const (
	eaOpen     = 0x8A
	eaQuery    = 0x80
	eaOpenCmd  = 0x11
	eaQueryCmd = 0x33
)

func (EightA) Name() string { return "8a" }
func (EightA) Baud() int    { return 9600 }

// EAFrame appends the XOR of b to b.
func EAFrame(b ...byte) []byte { return append(append([]byte(nil), b...), xor(b)) } // a copy: b may be a slice of a caller's buffer

func (EightA) Unlock(board, ch int) []byte { return EAFrame(eaOpen, byte(board), byte(ch), eaOpenCmd) }
func (EightA) StatusAll(board int) []byte  { return EAFrame(eaQuery, byte(board), 0, eaQueryCmd) }

// ParseUnlock reads 8A BOARD LOCK ST XOR; ST 0x11 is open.
func (EightA) ParseUnlock(buf []byte, board, ch int) (bool, error) {
	for i := 0; i < len(buf); i++ {
		r := buf[i:]
		if r[0] != eaOpen || len(r) < 5 {
			continue
		}
		if r[1] == byte(board) && r[2] == byte(ch) && r[4] == xor(r[:4]) && (r[3] == 0x11 || r[3] == 0x00) {
			return r[3] == 0x11, nil
		}
	}
	return false, ErrIncomplete
}

// ParseStatusAll reads 80 BOARD D[N] 33 XOR: N bytes of door-open bits,
// channel 1 in bit 0 of the first byte.
func (EightA) ParseStatusAll(buf []byte, board int) (Status, error) {
	for i := 0; i < len(buf); i++ {
		r := buf[i:]
		if r[0] != eaQuery || len(r) < 2 || r[1] != byte(board) {
			continue
		}
		for n := 1; n <= maxBitmap && 2+n+2 <= len(r); n++ {
			end := 2 + n + 2
			if r[2+n] == eaQueryCmd && r[end-1] == xor(r[:end-1]) {
				return Status{Hook: bits(r[2:2+n], 8*n)}, nil
			}
		}
	}
	return Status{}, ErrIncomplete
}
