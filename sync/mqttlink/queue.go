package mqttlink

import (
	"encoding/base64"
	"fmt"
	"sync"
)

// inbox is a bounded FIFO between paho's message handlers (which must
// never block) and the one worker that acts on downlink messages. It
// bounds what a flood can make the locker hold: a message over maxMsg
// bytes is never copied in (only a note of it is queued, for a nack), and
// past maxItems messages or maxBytes bytes queued, messages are dropped
// and counted; the worker reports the count. Nothing the central library
// needs is lost that way: order changes not acknowledged are sent again,
// and a command not answered has only to be sent again.
type inbox struct {
	mu       sync.Mutex
	cond     *sync.Cond
	items    []inboxItem
	bytes    int
	closed   bool
	dropped  int // messages dropped because the inbox was full, not yet reported
	maxMsg   int
	maxItems int
	maxBytes int
	marker   []byte // a payload replaced by boundedConn starts with it
}

type inboxItem struct {
	topic   string
	payload []byte
	// refused, when set, is why the message was not taken (too large):
	// the worker nacks it without reading a payload.
	refused string
}

func (q *inbox) init(maxMsg, maxItems, maxBytes int, marker []byte) {
	q.cond = sync.NewCond(&q.mu)
	q.maxMsg, q.maxItems, q.maxBytes, q.marker = maxMsg, maxItems, maxBytes, marker
}

// push queues a copy of payload, or a note that it was refused.
func (q *inbox) push(topic string, payload []byte) {
	it := inboxItem{topic: topic}
	if n, ok := oversizeOf(payload, q.marker); ok {
		// Its payload never reached memory (boundedConn).
		it.refused = fmt.Sprintf("message of %d bytes is over the limit of %d (mqtt.max_message)", n, q.maxMsg)
	} else if len(payload) > q.maxMsg {
		it.refused = fmt.Sprintf("message of %d bytes is over the limit of %d (mqtt.max_message)", len(payload), q.maxMsg)
	}
	q.mu.Lock()
	if len(q.items) >= q.maxItems || it.refused == "" && q.bytes+len(payload) > q.maxBytes {
		q.dropped++
		q.mu.Unlock()
		return
	}
	if it.refused == "" {
		it.payload = append([]byte(nil), payload...)
		q.bytes += len(payload)
	}
	q.items = append(q.items, it)
	q.mu.Unlock()
	q.cond.Signal()
}

// pop returns the next message and the number dropped since the last
// pop; ok is false once the inbox is closed and empty.
func (q *inbox) pop() (it inboxItem, dropped int, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.items) == 0 && !q.closed {
		q.cond.Wait()
	}
	dropped, q.dropped = q.dropped, 0
	if len(q.items) == 0 {
		return inboxItem{}, dropped, false
	}
	it = q.items[0]
	q.items[0] = inboxItem{}
	q.items = q.items[1:]
	q.bytes -= len(it.payload)
	return it, dropped, true
}

func (q *inbox) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.cond.Broadcast()
}

func decodeB64(s string) ([]byte, error) { return base64.StdEncoding.DecodeString(s) }
