package fanout

import "sync"

// Fanout is a set of subscribers. The zero value is not usable; use New.
type Fanout[T any] struct {
	mu     sync.Mutex
	subs   map[chan T]struct{}
	buffer int
}

// New returns a fan-out whose subscribers each buffer up to buffer values.
func New[T any](buffer int) *Fanout[T] {
	return &Fanout[T]{subs: map[chan T]struct{}{}, buffer: buffer}
}

// Subscribe returns a channel of the values published from now on, and a
// function that ends the subscription (the channel is not closed: a
// reader selects on its own context too).
func (f *Fanout[T]) Subscribe() (<-chan T, func()) {
	c := make(chan T, f.buffer)
	f.mu.Lock()
	f.subs[c] = struct{}{}
	f.mu.Unlock()
	return c, func() {
		f.mu.Lock()
		delete(f.subs, c)
		f.mu.Unlock()
	}
}

// Publish hands v to every subscriber with room for it; it never blocks.
// Values published by one goroutine arrive in the order published.
func (f *Fanout[T]) Publish(v T) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for c := range f.subs {
		select {
		case c <- v:
		default:
		}
	}
}

// Subscribers is how many subscriptions are live.
func (f *Fanout[T]) Subscribers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs)
}
