package locker

import "sync"

// hub fans committed events out to live subscribers (the kiosk, the
// event stream, the MQTT link, tests) in seq order. The outbox is the
// record; a subscriber too slow to keep up misses live events rather than
// slowing the locker down, and can read the outbox.
//
// bbolt runs commit callbacks after releasing its write lock, so two
// transactions' callbacks can arrive out of order; committed seqs are
// contiguous (a rolled-back transaction gives its numbers back), so the
// hub holds an early event until the ones before it have arrived.
type hub struct {
	mu      sync.Mutex
	subs    map[chan Event]struct{}
	next    uint64 // next seq to deliver; 0 = not yet known
	pending map[uint64]Event
}

// start sets the first seq to deliver.
func (h *hub) start(next uint64) {
	h.mu.Lock()
	h.next = next
	h.mu.Unlock()
}

func (h *hub) publish(e Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.next == 0 || e.Seq < h.next {
		h.deliver(e)
		return
	}
	if h.pending == nil {
		h.pending = map[uint64]Event{}
	}
	h.pending[e.Seq] = e
	for {
		p, ok := h.pending[h.next]
		if !ok {
			return
		}
		delete(h.pending, h.next)
		h.next++
		h.deliver(p)
	}
}

func (h *hub) deliver(e Event) {
	for c := range h.subs {
		select {
		case c <- e:
		default:
		}
	}
}

// Subscribe returns a channel of events committed from now on, in seq
// order, and a function that ends the subscription.
func (l *Locker) Subscribe() (<-chan Event, func()) {
	c := make(chan Event, 1024)
	l.hub.mu.Lock()
	if l.hub.subs == nil {
		l.hub.subs = map[chan Event]struct{}{}
	}
	l.hub.subs[c] = struct{}{}
	l.hub.mu.Unlock()
	return c, func() {
		l.hub.mu.Lock()
		delete(l.hub.subs, c)
		l.hub.mu.Unlock()
	}
}

// Notice is a live, unrecorded change for the reader's screen (a staff
// session starting or ending): not an event, never in the outbox.
type Notice struct {
	Type string         `json:"type"`
	Data map[string]any `json:"data"`
}

// Notice types.
const (
	NoticeStaffSession = "staff.session" // data: scanner, on
	NoticeStoreHealth  = "store.health"  // data: ok
)

type noticeHub struct {
	mu   sync.Mutex
	subs map[chan Notice]struct{}
}

func (l *Locker) notify(n Notice) {
	l.notices.mu.Lock()
	defer l.notices.mu.Unlock()
	for c := range l.notices.subs {
		select {
		case c <- n:
		default:
		}
	}
}

// SubscribeNotices returns a channel of notices from now on.
func (l *Locker) SubscribeNotices() (<-chan Notice, func()) {
	c := make(chan Notice, 64)
	l.notices.mu.Lock()
	if l.notices.subs == nil {
		l.notices.subs = map[chan Notice]struct{}{}
	}
	l.notices.subs[c] = struct{}{}
	l.notices.mu.Unlock()
	return c, func() {
		l.notices.mu.Lock()
		delete(l.notices.subs, c)
		l.notices.mu.Unlock()
	}
}
