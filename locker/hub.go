package locker

import "sync"

// hub fans committed events out to live subscribers (the kiosk, tests).
// The outbox is the record; a subscriber too slow to keep up misses live
// events rather than slowing the locker down, and can read the outbox.
type hub struct {
	mu   sync.Mutex
	subs map[chan Event]struct{}
}

func (h *hub) publish(e Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.subs {
		select {
		case c <- e:
		default:
		}
	}
}

// Subscribe returns a channel of events committed from now on, and a
// function that ends the subscription.
func (l *Locker) Subscribe() (<-chan Event, func()) {
	c := make(chan Event, 256)
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
