package pahostore

import (
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
}

var _ mqtt.Store = (*Store)(nil)

// New returns an empty store; paho opens it when the client connects.
func New() *Store { return &Store{packets: map[string]packets.ControlPacket{}} }

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
		keys = append(keys, k)
	}
	return keys
}

// Del implements mqtt.Store.
func (s *Store) Del(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open {
		delete(s.packets, key)
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
