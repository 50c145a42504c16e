package brokertest

import (
	"crypto/tls"
	"fmt"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/lockerd/lockerd/sync/pahostore"
)

// Msg is one message a Recorder received.
type Msg struct {
	Topic   string
	Payload []byte
	At      time.Time
}

// Recorder is a plain MQTT client that records what it receives on its
// subscriptions and can publish: the test's own view of the wire.
type Recorder struct {
	t      testing.TB
	Client mqtt.Client
	mu     sync.Mutex
	cond   *sync.Cond
	msgs   []Msg
}

// Record connects a client with id to url (tls may be nil) and subscribes
// to topics at QoS 1. A non-empty username is sent (the embedded broker's
// ACL identity).
func Record(t testing.TB, url, id, username string, tlsCfg *tls.Config, topics ...string) *Recorder {
	t.Helper()
	r := &Recorder{t: t}
	r.cond = sync.NewCond(&r.mu)
	o := mqtt.NewClientOptions().AddBroker(url).SetClientID(id).SetCleanSession(false).
		SetAutoReconnect(true).SetConnectRetry(true).SetConnectRetryInterval(200 * time.Millisecond).
		SetMaxReconnectInterval(time.Second).SetOrderMatters(true).
		SetStore(pahostore.New()) // as lockerd's clients: paho's MemoryStore races on resume
	if tlsCfg != nil {
		o.SetTLSConfig(tlsCfg)
	}
	if username != "" {
		o.SetUsername(username)
	}
	subs := map[string]byte{}
	for _, tp := range topics {
		subs[tp] = 1
	}
	// paho runs the connect handler after Connect's token completes:
	// Record returns only once the first subscription is acknowledged, so
	// that a message published right after it is not missed.
	subscribed := make(chan struct{})
	var once sync.Once
	o.SetOnConnectHandler(func(c mqtt.Client) {
		if len(subs) > 0 {
			c.SubscribeMultiple(subs, nil).WaitTimeout(5 * time.Second)
		}
		once.Do(func() { close(subscribed) })
	})
	handler := func(_ mqtt.Client, m mqtt.Message) {
		r.mu.Lock()
		r.msgs = append(r.msgs, Msg{Topic: m.Topic(), Payload: append([]byte(nil), m.Payload()...), At: time.Now()})
		r.mu.Unlock()
		r.cond.Broadcast()
	}
	r.Client = mqtt.NewClient(o)
	for _, tp := range topics {
		r.Client.AddRoute(tp, handler)
	}
	if tok := r.Client.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("recorder %s: connect %s: %v", id, url, tok.Error())
	}
	select {
	case <-subscribed:
	case <-time.After(10 * time.Second):
		t.Fatalf("recorder %s: not subscribed to %v at %s", id, topics, url)
	}
	t.Cleanup(func() { r.Client.Disconnect(100) })
	return r
}

// All returns every message so far.
func (r *Recorder) All() []Msg {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Msg(nil), r.msgs...)
}

// Len is how many messages were received so far.
func (r *Recorder) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

// Wait waits up to timeout for a message matching ok and returns it.
func (r *Recorder) Wait(timeout time.Duration, what string, ok func(Msg) bool) Msg {
	r.t.Helper()
	return r.WaitFrom(0, timeout, what, ok)
}

// WaitFrom is Wait among the messages from the from'th on (see Len). ok
// is called with the recorder locked: it must not call the recorder.
func (r *Recorder) WaitFrom(from int, timeout time.Duration, what string, ok func(Msg) bool) Msg {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	timer := time.AfterFunc(timeout, r.cond.Broadcast)
	defer timer.Stop()
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		for _, m := range r.msgs[min(from, len(r.msgs)):] {
			if ok(m) {
				return m
			}
		}
		if time.Now().After(deadline) {
			var seen []string
			for _, m := range r.msgs {
				seen = append(seen, fmt.Sprintf("%s %s", m.Topic, m.Payload))
			}
			r.t.Fatalf("no message: %s; received %d:\n%v", what, len(r.msgs), seen)
		}
		r.cond.Wait()
	}
}

// Publish publishes at QoS 1 and waits for the broker's acknowledgement.
func (r *Recorder) Publish(topic string, payload []byte) {
	r.t.Helper()
	tok := r.Client.Publish(topic, 1, false, payload)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		r.t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}
