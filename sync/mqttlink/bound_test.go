package mqttlink

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
)

// readerConn is a net.Conn whose reads come from r.
type readerConn struct {
	net.Conn
	r io.Reader
}

func (c readerConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func packet(first byte, body []byte) []byte {
	return append(append([]byte{first}, encodeRemaining(len(body))...), body...)
}

func publish(qos byte, topic string, id uint16, payload []byte) []byte {
	var b []byte
	b = binary.BigEndian.AppendUint16(b, uint16(len(topic)))
	b = append(b, topic...)
	if qos > 0 {
		b = binary.BigEndian.AppendUint16(b, id)
	}
	return packet(0x30|qos<<1, append(b, payload...))
}

func TestBoundedConn(t *testing.T) {
	marker := oversizeMarker("0123456789abcdef")
	const max = 1000
	connack := packet(0x20, []byte{0, 0})
	small := publish(1, "lockers/v1/x/down/cmd", 7, bytes.Repeat([]byte("a"), max))
	big := bytes.Repeat([]byte("x"), 8<<20)
	replaced := func(qos byte, id uint16, size int) []byte {
		return publish(qos, "lockers/v1/x/down/orders", id, append(append([]byte(nil), marker...), []byte(strconv.Itoa(size))...))
	}
	tests := []struct {
		name    string
		in      [][]byte
		want    [][]byte
		wantErr string
	}{
		{"small packets pass as they are", [][]byte{connack, small, packet(0xd0, nil)}, [][]byte{connack, small, packet(0xd0, nil)}, "EOF"},
		{"exactly the limit passes", [][]byte{publish(0, "t", 0, bytes.Repeat([]byte("b"), max))},
			[][]byte{publish(0, "t", 0, bytes.Repeat([]byte("b"), max))}, "EOF"},
		{"a long topic with a small payload passes", [][]byte{publish(1, strings.Repeat("t", 2*max), 9, []byte("{}"))},
			[][]byte{publish(1, strings.Repeat("t", 2*max), 9, []byte("{}"))}, "EOF"},
		{"oversize QoS 1 is replaced, id and topic kept", [][]byte{publish(1, "lockers/v1/x/down/orders", 42, big), small},
			[][]byte{replaced(1, 42, len(big)), small}, "EOF"},
		{"oversize QoS 0 is replaced", [][]byte{publish(0, "lockers/v1/x/down/orders", 0, bytes.Repeat([]byte("y"), max+1))},
			[][]byte{replaced(0, 0, max+1)}, "EOF"},
		{"a huge control packet ends the connection", [][]byte{connack, packet(0x90, make([]byte, maxControl+1))},
			[][]byte{connack}, "packet of type 9"},
		{"a malformed length ends the connection", [][]byte{{0x30, 0xff, 0xff, 0xff, 0xff, 0x01}}, nil, "malformed remaining length"},
		{"a topic longer than its packet", [][]byte{{0x30, 0x80, 0x10, 0xff, 0xff}}, nil, "topic longer than the packet"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := &countingReader{r: bytes.NewReader(bytes.Join(tt.in, nil))}
			c := newBoundedConn(readerConn{r: src}, max, marker)
			got, err := io.ReadAll(readerOnly{c})
			if err == nil {
				err = io.EOF
			}
			if !bytes.Equal(got, bytes.Join(tt.want, nil)) {
				t.Fatalf("stream out: %d bytes %q…, want %d bytes", len(got), got[:min(len(got), 80)], len(bytes.Join(tt.want, nil)))
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// The oversize payload is never held: reading it through costs the
// reader's buffer, not its size.
func TestBoundedConnDoesNotHoldThePayload(t *testing.T) {
	marker := oversizeMarker("i")
	stream := publish(1, "t", 1, bytes.Repeat([]byte("x"), 64<<20))
	c := newBoundedConn(readerConn{r: bytes.NewReader(stream)}, 1<<20, marker)
	allocs := testing.AllocsPerRun(1, func() {
		c2 := newBoundedConn(readerConn{r: bytes.NewReader(stream)}, 1<<20, marker)
		io.Copy(io.Discard, readerOnly{c2})
	})
	out, _ := io.ReadAll(readerOnly{c})
	if n, ok := oversizeOf(out[len(out)-len(marker)-8:], marker); !ok || n != 64<<20 {
		t.Fatalf("replaced payload %q", out)
	}
	if allocs > 50 {
		t.Fatalf("%v allocations reading a 64 MB message through", allocs)
	}
}

func TestOversizeOf(t *testing.T) {
	m := oversizeMarker("abc")
	for _, tt := range []struct {
		in   string
		size int
		ok   bool
	}{
		{string(m) + "123", 123, true},
		{string(m) + "x", 0, false},
		{"\x00oversize other 123", 0, false},
		{`{"body":"","sig":""}`, 0, false},
	} {
		if n, ok := oversizeOf([]byte(tt.in), m); n != tt.size || ok != tt.ok {
			t.Errorf("oversizeOf(%q) = %d %v", tt.in, n, ok)
		}
	}
}

// readerOnly hides everything of a conn but Read (io.Copy would look for
// WriterTo).
type readerOnly struct{ r io.Reader }

func (r readerOnly) Read(p []byte) (int, error) { return r.r.Read(p) }

// FuzzBoundedConn: whatever the broker sends, the reader never panics,
// never hands paho a PUBLISH payload over the limit, and every packet it
// hands out is whole.
func FuzzBoundedConn(f *testing.F) {
	f.Add(publish(1, "t", 1, bytes.Repeat([]byte("x"), 300)))
	f.Add(append(packet(0x20, []byte{0, 0}), publish(0, "t", 0, []byte("{}"))...))
	f.Add([]byte{0x30, 0xff, 0xff, 0xff, 0x7f})
	f.Fuzz(func(t *testing.T, stream []byte) {
		const max = 256
		marker := oversizeMarker("f")
		out, _ := io.ReadAll(readerOnly{newBoundedConn(readerConn{r: bytes.NewReader(stream)}, max, marker)})
		r := bytes.NewReader(out)
		for r.Len() > 0 {
			first, _ := r.ReadByte()
			n, _, err := readRemaining(r)
			if err != nil || n > r.Len() {
				// The last packet may be cut where the input ended.
				return
			}
			body := make([]byte, n)
			r.Read(body)
			if first>>4 == 3 && n > max+2+65535+2+len(marker)+20 {
				t.Fatalf("a PUBLISH of %d bytes handed out (limit %d)", n, max)
			}
		}
	})
}
