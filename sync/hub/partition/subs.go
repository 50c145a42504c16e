package partition

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// Subscriber is what Subs needs of paho's client.
type Subscriber interface {
	SubscribeMultiple(filters map[string]byte, callback mqtt.MessageHandler) mqtt.Token
	Unsubscribe(topics ...string) mqtt.Token
}

// Subs are the per-locker topics a replica subscribed to, so that it
// receives only its share (mqtt.subscribe_owned). One goroutine syncs
// them (Sync, on C); Changed and Reset say that what should be subscribed
// moved on, and Ready whether the subscriptions caught up.
type Subs struct {
	mu     sync.Mutex
	topics map[string]bool
	wakeC  chan struct{}
	// want counts the changes of what should be subscribed (a connection,
	// the partitions held, a locker added); done is the count the
	// subscriptions last caught up with.
	want, done atomic.Uint64
}

// NewSubs makes an empty set.
func NewSubs() *Subs { return &Subs{wakeC: make(chan struct{}, 1)} }

// C is where the syncing goroutine is woken.
func (s *Subs) C() <-chan struct{} { return s.wakeC }

// Wake asks the syncing goroutine to bring the subscriptions up to date.
func (s *Subs) Wake() {
	select {
	case s.wakeC <- struct{}{}:
	default:
	}
}

// Changed says what should be subscribed changed, and wakes the syncer.
func (s *Subs) Changed() { s.want.Add(1); s.Wake() }

// Reset forgets every subscription (a new connection has none).
func (s *Subs) Reset() {
	s.mu.Lock()
	s.topics = nil
	s.want.Add(1)
	s.mu.Unlock()
}

// Ready reports whether the subscriptions caught up with the last change.
func (s *Subs) Ready() bool { return s.done.Load() == s.want.Load() }

// Has reports whether topic is subscribed.
func (s *Subs) Has(topic string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.topics[topic]
}

// Sync subscribes to what wanted lists and is not subscribed, and
// unsubscribes from what is and is not listed, 50 filters a packet. On an
// error it stops; the next Sync goes on from where it stopped.
func (s *Subs) Sync(c Subscriber, wanted func() (map[string]bool, error)) (added, dropped int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	gen := s.want.Load()
	want, err := wanted()
	if err != nil {
		return 0, 0, err
	}
	var add, drop []string
	for t := range want {
		if !s.topics[t] {
			add = append(add, t)
		}
	}
	for t := range s.topics {
		if !want[t] {
			drop = append(drop, t)
		}
	}
	for chunk := range slices.Chunk(add, 50) {
		filters := map[string]byte{}
		for _, t := range chunk {
			filters[t] = 1
		}
		if tok := c.SubscribeMultiple(filters, nil); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			return added, dropped, tokenErr(tok)
		}
		if s.topics == nil {
			s.topics = map[string]bool{}
		}
		for _, t := range chunk {
			s.topics[t] = true
		}
		added += len(chunk)
	}
	for chunk := range slices.Chunk(drop, 50) {
		if tok := c.Unsubscribe(chunk...); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			return added, dropped, tokenErr(tok)
		}
		for _, t := range chunk {
			delete(s.topics, t)
		}
		dropped += len(chunk)
	}
	s.done.Store(gen)
	return added, dropped, nil
}

func tokenErr(tok mqtt.Token) error {
	if err := tok.Error(); err != nil {
		return err
	}
	return errTimeout
}

type timeoutErr struct{}

func (timeoutErr) Error() string { return "no answer from the broker within 10s" }

var errTimeout error = timeoutErr{}
