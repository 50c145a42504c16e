package pahostore

import (
	"crypto/tls"
	"net/url"
	"reflect"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// Store implements mqtt.Store in memory, on copies.
type Store struct {
	mu      sync.Mutex
	open    bool
	packets map[string]packets.ControlPacket
	gen     uint64 // counts connection attempts (MarkConnect)
	resumed uint64 // the attempt whose connection's resume took its snapshot (All)
}

var _ mqtt.Store = (*Store)(nil)

// New returns an empty store; paho opens it when the client connects.
func New() *Store { return &Store{packets: map[string]packets.ControlPacket{}} }

// MarkConnect starts a connection attempt (paho's connection-attempt
// handler calls it, before it dials, on every connect and reconnect).
// On a connection, paho starts the connect handler and then resumes the
// store (All): a publish the handler makes before resume takes its
// snapshot is sent on the connection AND claimed by resume, and its
// PUBACK and the claim complete one token twice — paho closes a channel
// twice and the process panics (seen in CI, TestPublishFromConnectHandler).
// A connect handler waits for WaitResumed before it publishes.
func (s *Store) MarkConnect() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
}

// WaitResumed waits (at most timeout: a clean session is never resumed)
// until paho has taken the snapshot of what to resume on the connection
// of the latest attempt; a publish made after it is sent once.
func (s *Store) WaitResumed(timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		s.mu.Lock()
		done := s.resumed >= s.gen
		s.mu.Unlock()
		if done {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
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
	s.resumed = s.gen // paho resumes what All lists (only resume calls it)
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
	s.resumed = s.gen // a clean session: nothing to resume
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
