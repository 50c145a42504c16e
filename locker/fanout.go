package locker

import (
	"sync"

	"github.com/lockerd/lockerd/locker/fanout"
)

// eventOrder fans committed events out to live subscribers (the kiosk,
// the event stream, the MQTT link, tests) in seq order. The outbox is the
// record; a subscriber too slow to keep up misses live events rather than
// slowing the locker down, and can read the outbox.
//
// bbolt runs commit callbacks after releasing its write lock, so two
// transactions' callbacks can arrive out of order; committed seqs are
// contiguous (a rolled-back transaction gives its numbers back), so an
// early event is held until the ones before it have arrived.
type eventOrder struct {
	mu      sync.Mutex
	out     *fanout.Fanout[Event]
	next    uint64 // next seq to deliver; 0 = not yet known
	pending map[uint64]Event
}

func newEventOrder() *eventOrder { return &eventOrder{out: fanout.New[Event](1024)} }

// start sets the first seq to deliver.
func (h *eventOrder) start(next uint64) {
	h.mu.Lock()
	h.next = next
	h.mu.Unlock()
}

func (h *eventOrder) publish(e Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.next == 0 || e.Seq < h.next {
		h.out.Publish(e)
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
		h.out.Publish(p)
	}
}

// Subscribe returns a channel of events committed from now on, in seq
// order, and a function that ends the subscription.
func (l *Locker) Subscribe() (<-chan Event, func()) { return l.events.out.Subscribe() }

// Notice is a live, unrecorded change for the reader's screen (a staff
// session starting or ending): not an event, never in the outbox.
type Notice struct {
	Type string         `json:"type"`
	Data map[string]any `json:"data"`
}

// Notice types.
const (
	NoticeStaffSession = "staff.session" // data: scanner, on, by, role
	NoticeBinEmptied   = "bin.emptied"   // data: count, still_full
	NoticeCard         = "card"          // data: scanner, until: a library card scanned, its PIN asked
	NoticeItems        = "items"         // data: what (load_empty, pickup_items_left, retrieve_items_left), compartment, order_id
	NoticeStoreHealth  = "store.health"  // data: ok
)

func (l *Locker) notify(n Notice) { l.notices.Publish(n) }

// SubscribeNotices returns a channel of notices from now on.
func (l *Locker) SubscribeNotices() (<-chan Notice, func()) { return l.notices.Subscribe() }
