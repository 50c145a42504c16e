package mqttlink

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
)

// boundedConn bounds what the broker can make paho allocate. paho reads
// each packet whole into memory before any handler sees it, so a limit
// checked in the handler comes after an 8 MB message has been copied (and
// a flood of them took lockerd past 140 MB). This reader sits between the
// socket and paho and follows the MQTT 3.1.1 stream packet by packet:
//
//   - a PUBLISH whose payload is over max is passed on with its topic,
//     flags and packet id but its payload streamed to nothing and replaced
//     by a short marker (oversizeMarker + the size): paho acknowledges it
//     as usual (so the broker does not send it again), and the inbox
//     refuses it with a nack naming its size;
//   - any other packet over maxControl bytes (the broker's own packets are
//     a few bytes) ends the connection.
//
// The broker's packet limit is not relied on: a locker may be on a broker
// that allows much larger messages (Mosquitto's default is 256 MB).
//
// Only paho's reader goroutine calls Read; the rest of net.Conn is the
// socket's.
type boundedConn struct {
	net.Conn
	r      *bufio.Reader
	max    int    // largest payload of a PUBLISH passed on as it is
	marker []byte // the prefix of a replaced payload (per link: see oversizeMarker)
	out    []byte // bytes of the current packet to hand out before pass
	pass   int    // bytes of the current packet still to hand out from r as they come
}

// maxControl bounds a packet other than PUBLISH from the broker.
const maxControl = 64 << 10

// oversizeMarker starts the payload that replaces an oversize one: a NUL
// (no JSON message starts with it) and the link's random instance id, so
// that a message cannot pass itself off as a replaced one to hide its
// content (it would only be refused anyway).
func oversizeMarker(instance string) []byte { return []byte("\x00oversize " + instance + " ") }

func newBoundedConn(c net.Conn, max int, marker []byte) *boundedConn {
	return &boundedConn{Conn: c, r: bufio.NewReaderSize(c, 4096), max: max, marker: marker}
}

func (c *boundedConn) Read(p []byte) (int, error) {
	for {
		if len(c.out) > 0 {
			n := copy(p, c.out)
			c.out = c.out[n:]
			return n, nil
		}
		if c.pass > 0 {
			if len(p) > c.pass {
				p = p[:c.pass]
			}
			n, err := c.r.Read(p)
			c.pass -= n
			return n, err
		}
		if err := c.nextPacket(); err != nil {
			return 0, err
		}
	}
}

// nextPacket reads the next packet's fixed header (and, for an oversize
// PUBLISH, all of it) and sets out and pass for it.
func (c *boundedConn) nextPacket() error {
	first, err := c.r.ReadByte()
	if err != nil {
		return err
	}
	length, lenBytes, err := readRemaining(c.r)
	if err != nil {
		return err
	}
	header := append([]byte{first}, lenBytes...)
	kind := first >> 4
	if kind != 3 { // not PUBLISH
		if length > maxControl {
			return fmt.Errorf("mqtt: the broker sent a packet of type %d with %d bytes (a broker's own packets are small)", kind, length)
		}
		c.out, c.pass = header, length
		return nil
	}
	if length <= c.max {
		c.out, c.pass = header, length
		return nil
	}
	// Large: read the variable header (topic, packet id) to see the
	// payload's size.
	var tl [2]byte
	if _, err := io.ReadFull(c.r, tl[:]); err != nil {
		return err
	}
	topicLen := int(binary.BigEndian.Uint16(tl[:]))
	varLen := 2 + topicLen
	if qos := (first >> 1) & 3; qos > 0 {
		varLen += 2
	}
	if varLen > length {
		return errors.New("mqtt: malformed PUBLISH from the broker (topic longer than the packet)")
	}
	vh := make([]byte, varLen) // at most 64 KB
	copy(vh, tl[:])
	if _, err := io.ReadFull(c.r, vh[2:]); err != nil {
		return err
	}
	payload := length - varLen
	if payload <= c.max {
		c.out, c.pass = append(header, vh...), payload
		return nil
	}
	// Over the limit: the payload is streamed to nothing, in small reads.
	if _, err := io.CopyN(io.Discard, c.r, int64(payload)); err != nil {
		return err
	}
	body := append(vh, c.marker...)
	body = strconv.AppendInt(body, int64(payload), 10)
	c.out, c.pass = append(append([]byte{first}, encodeRemaining(len(body))...), body...), 0
	return nil
}

// oversizeOf tells a payload replaced by boundedConn and the size it had.
func oversizeOf(payload, marker []byte) (size int, ok bool) {
	rest, found := bytes.CutPrefix(payload, marker)
	if !found || len(marker) == 0 {
		return 0, false
	}
	n, err := strconv.Atoi(string(rest))
	return n, err == nil
}

// readRemaining reads MQTT's variable-length "remaining length" (1 to 4
// bytes, 7 bits each) and returns it with its bytes.
func readRemaining(r io.ByteReader) (int, []byte, error) {
	var n, shift int
	var raw []byte
	for i := 0; i < 4; i++ {
		b, err := r.ReadByte()
		if err != nil {
			return 0, nil, err
		}
		raw = append(raw, b)
		n |= int(b&0x7f) << shift
		if b&0x80 == 0 {
			return n, raw, nil
		}
		shift += 7
	}
	return 0, nil, errors.New("mqtt: malformed remaining length from the broker")
}

func encodeRemaining(n int) []byte {
	var out []byte
	for {
		b := byte(n % 128)
		n /= 128
		if n > 0 {
			b |= 0x80
		}
		out = append(out, b)
		if n == 0 {
			return out
		}
	}
}
