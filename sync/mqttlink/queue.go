package mqttlink

import (
	"encoding/base64"
	"sync"
)

// inbox is an unbounded FIFO between paho's message handlers (which must
// never block) and the one worker that acts on downlink messages.
type inbox struct {
	mu     sync.Mutex
	cond   *sync.Cond
	items  []inboxItem
	closed bool
}

type inboxItem struct {
	topic   string
	payload []byte
}

func (q *inbox) init() { q.cond = sync.NewCond(&q.mu) }

func (q *inbox) push(topic string, payload []byte) {
	q.mu.Lock()
	q.items = append(q.items, inboxItem{topic, append([]byte(nil), payload...)})
	q.mu.Unlock()
	q.cond.Signal()
}

func (q *inbox) pop() (string, []byte, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.items) == 0 && !q.closed {
		q.cond.Wait()
	}
	if len(q.items) == 0 {
		return "", nil, false
	}
	it := q.items[0]
	q.items = q.items[1:]
	return it.topic, it.payload, true
}

func (q *inbox) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.cond.Broadcast()
}

func decodeB64(s string) ([]byte, error) { return base64.StdEncoding.DecodeString(s) }
