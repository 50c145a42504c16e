package pahostore

import (
	"crypto/tls"
	"net/url"
	"reflect"
	"sync"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// Store implements mqtt.Store in memory, on copies.
type Store struct {
	mu      sync.Mutex
	open    bool
	packets map[string]packets.ControlPacket
	gens    map[string]uint64 // the connection attempt each packet was put during
	gen     uint64            // counts connection attempts (MarkConnect)
}

var _ mqtt.Store = (*Store)(nil)

// New returns an empty store; paho opens it when the client connects.
func New() *Store {
	return &Store{packets: map[string]packets.ControlPacket{}, gens: map[string]uint64{}}
}

// MarkConnect starts a connection attempt: All (what paho resumes on the
// connection) lists only what was put before it. A publish made once the
// connection is being made — from the connect handler, which paho starts
// beside its resume, or by any other goroutine — goes out on its own; if
// resume took it as well, its PUBACK could complete its token while
// resume's claim of the same message id completes it too, and paho's
// token closes its channel twice: a panic (seen in CI,
// TestPublishFromConnectHandler). Call it from the client's
// connection-attempt handler (SetConnectionAttemptHandler), which paho
// runs before it dials, on every connect and reconnect.
func (s *Store) MarkConnect() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
}

// AttemptHandler is MarkConnect as paho's connection-attempt handler.
func (s *Store) AttemptHandler(_ *url.URL, cfg *tls.Config) *tls.Config {
	s.MarkConnect()
	return cfg
}

// Open implements mqtt.Store.
func (s *Store) Open() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.open = true
}

// Put keeps a copy of m: what the caller does with m afterwards (send it,
// while another goroutine resumes the store) does not touch what is kept.
func (s *Store) Put(key string, m packets.ControlPacket) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.open {
		return
	}
	s.packets[key] = clone(m)
	s.gens[key] = s.gen
}

// Get returns a copy of the packet kept under key, or nil.
func (s *Store) Get(key string) packets.ControlPacket {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.packets[key]
	if !s.open || !ok {
		return nil
	}
	return clone(m)
}

// All implements mqtt.Store.
func (s *Store) All() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.open {
		return nil
	}
	keys := make([]string, 0, len(s.packets))
	for k := range s.packets {
		if s.gens[k] < s.gen || s.gen == 0 {
			keys = append(keys, k)
		}
	}
	return keys
}

// Del implements mqtt.Store.
func (s *Store) Del(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open {
		delete(s.packets, key)
		delete(s.gens, key)
	}
}

// Close implements mqtt.Store. Like paho's MemoryStore, the packets are
// kept: a client that connects again resumes them.
func (s *Store) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.open = false
}

// Reset implements mqtt.Store.
func (s *Store) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.packets = map[string]packets.ControlPacket{}
	s.gens = map[string]uint64{}
}

// clone copies the packet struct: its fixed header (where DUP lives) and
// message id become its own. Payload and topic slices are shared; paho
// never writes them once a packet is built.
func clone(m packets.ControlPacket) packets.ControlPacket {
	if m == nil {
		return nil
	}
	v := reflect.ValueOf(m)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return m
	}
	c := reflect.New(v.Elem().Type())
	c.Elem().Set(v.Elem())
	return c.Interface().(packets.ControlPacket)
}
