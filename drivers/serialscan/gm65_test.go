package serialscan

import (
	"io"
	"testing"
	"time"
)

// moduleBytes is a module's side of the line as a fuzz input gives it:
// it reads out in chunks of up to chunk bytes and then fails with io.EOF
// (a port that went away), so a set-up never waits out its deadline.
type moduleBytes struct {
	out   []byte
	chunk int
	read  int
}

func (m *moduleBytes) Write(p []byte) (int, error)        { return len(p), nil }
func (m *moduleBytes) SetReadTimeout(time.Duration) error { return nil }
func (m *moduleBytes) Read(p []byte) (int, error) {
	if len(m.out) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), m.chunk, len(m.out))
	copy(p, m.out[:n])
	m.out = m.out[n:]
	m.read += n
	return n, nil
}

// isGM65Reply reports whether f is one whole one-byte reply frame.
func isGM65Reply(f []byte) bool {
	return len(f) == 7 && f[0] == 0x02 && f[1] == 0x00 && f[3] == 0x01 && crc16(f[2:5]) == uint16(f[5])<<8|uint16(f[6])
}

// splitsIntoReplies reports whether read becomes scanned by deleting whole
// reply frames, at most max of them: nothing else was dropped or altered.
func splitsIntoReplies(read, scanned []byte, max int) bool {
	type key struct{ i, j, k int }
	memo := map[key]bool{}
	var f func(i, j, k int) bool
	f = func(i, j, k int) bool {
		if i == len(read) {
			return j == len(scanned)
		}
		kk := key{i, j, k}
		if v, ok := memo[kk]; ok {
			return v
		}
		v := (j < len(scanned) && read[i] == scanned[j] && f(i+1, j+1, k)) ||
			(k < max && i+7 <= len(read) && isGM65Reply(read[i:i+7]) && f(i+7, j, k+1))
		memo[kk] = v
		return v
	}
	return f(0, 0, 0)
}

// FuzzGM65SetUp feeds arbitrary module output to the set-up exchange.
// Whatever arrives, it must not panic, and every byte read must either be
// a reply frame the set-up took (one per command, three commands at most)
// or come back as scanner input, in order: a scan made during set-up is
// never lost or mangled.
func FuzzGM65SetUp(f *testing.F) {
	f.Add(append(GM65Reply(0xD4), GM65Reply(0x00)...), byte(3))
	f.Add(append(append([]byte("]Q1AB\r"), GM65Reply(0xD6)...), []byte("CD\r")...), byte(63))
	f.Add(GM65Reply(0x3E)[:5], byte(1))
	f.Add([]byte{0x02, 0x00, 0x01, 0x01, 0x00, 0xFF, 0xFF, 0x02, 0x00}, byte(2))
	f.Add(append(GM65Reply(0xD4), append([]byte("9787"), GM65Reply(0x00)...)...), byte(5))
	// chunk is a byte, not an int: the minimiser walks an int down one
	// step at a time through values that all mean the same here.
	f.Fuzz(func(t *testing.T, out []byte, chunk byte) {
		if len(out) > 256 { // a scan or two and three replies fit
			out = out[:256]
		}
		m := &moduleBytes{out: append([]byte(nil), out...), chunk: 1 + int(chunk)%64}
		scanned, _ := GM65{Mode: "continuous", AIMID: true}.Apply(m)
		read := out[:m.read]
		if !splitsIntoReplies(read, scanned, 3) {
			t.Fatalf("read % X, handed back % X: something other than whole replies went missing", read, scanned)
		}
	})
}
