package pahostore_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/lockerd/lockerd/sync/brokertest"
	"github.com/lockerd/lockerd/sync/pahostore"
)

func publish(id uint16) *packets.PublishPacket {
	p := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
	p.Qos, p.MessageID, p.TopicName, p.Payload = 1, id, "t", []byte("x")
	return p
}

// TestCopies: what paho does to a packet after Put, and to what Get
// returned, never reaches what the store keeps.
func TestCopies(t *testing.T) {
	s := pahostore.New()
	s.Put("o.1", publish(1))
	if s.Get("o.1") != nil || len(s.All()) != 0 {
		t.Fatal("a closed store kept a packet")
	}
	s.Open()
	sub := packets.NewControlPacket(packets.Subscribe).(*packets.SubscribePacket)
	sub.Qos, sub.MessageID, sub.Topics, sub.Qoss = 1, 2, []string{"a"}, []byte{1}
	cases := []struct {
		key string
		m   packets.ControlPacket
	}{
		{"o.1", publish(1)},
		{"o.2", sub},
		{"i.3", publish(3)},
	}
	for _, c := range cases {
		s.Put(c.key, c.m)
		// The sender goes on with its packet: paho sets DUP on resume.
		setDup(c.m)
		got := s.Get(c.key)
		if got == c.m {
			t.Fatalf("%s: Get returned the packet that was Put", c.key)
		}
		if got.Details() != c.m.Details() || got.String() == "" {
			t.Fatalf("%s: Get %v, Put %v", c.key, got.Details(), c.m.Details())
		}
		if dupOf(got) {
			t.Fatalf("%s: the sender's DUP reached the store", c.key)
		}
		setDup(got)
		if again := s.Get(c.key); dupOf(again) || again == got {
			t.Fatalf("%s: a change to what Get returned reached the store", c.key)
		}
	}
	if n := len(s.All()); n != len(cases) {
		t.Fatalf("All: %d keys", n)
	}
	s.Del("o.1")
	if s.Get("o.1") != nil {
		t.Fatal("Del kept the packet")
	}
	s.Close()
	s.Open()
	if len(s.All()) != len(cases)-1 {
		t.Fatal("Close and Open lost packets (a client that reconnects resumes them)")
	}
	s.Reset()
	if len(s.All()) != 0 {
		t.Fatal("Reset kept packets")
	}
}

func dupOf(m packets.ControlPacket) bool {
	switch m := m.(type) {
	case *packets.PublishPacket:
		return m.Dup
	case *packets.SubscribePacket:
		return m.Dup
	}
	return false
}

func setDup(m packets.ControlPacket) {
	switch m := m.(type) {
	case *packets.PublishPacket:
		m.Dup = true
	case *packets.SubscribePacket:
		m.Dup = true
	}
}

// TestPublishFromConnectHandler is the race as lockerhub met it: a
// client with a persistent session publishes from its connect handler
// while paho's resume, on the same connect, walks the store. Under the
// race detector it fails at once with paho's MemoryStore (checked with
// `SetStore(mqtt.NewMemoryStore())`: "WARNING: DATA RACE" within the
// first connects); with Store it passes, and the broker acknowledges every
// publish.
func TestPublishFromConnectHandler(t *testing.T) {
	mq := brokertest.StartMosquitto(t, brokertest.MosquittoOptions{})
	const connects, each = 60, 20
	for i := range connects {
		store := pahostore.New()
		done := make(chan struct{})
		o := mqtt.NewClientOptions().AddBroker(mq.URL).SetClientID(fmt.Sprintf("handler-%d", i)).
			SetCleanSession(false).SetConnectRetry(true).SetStore(store).SetConnectionAttemptHandler(store.AttemptHandler)
		o.SetOnConnectHandler(func(c mqtt.Client) {
			store.WaitResumed(2 * time.Second) // as the link and the hub do
			for j := range each {
				c.Publish(fmt.Sprintf("handler/%d/%d", i, j), 1, false, []byte("x"))
			}
			close(done)
		})
		cl := mqtt.NewClient(o)
		if tok := cl.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("connect %d: %v", i, tok.Error())
		}
		<-done
		// paho's tokens complete early here (resume claims their ids for
		// its own copies), so "acknowledged" is read off the store: a
		// QoS 1 publish leaves it only with its PUBACK.
		deadline := time.Now().Add(10 * time.Second)
		for len(store.All()) > 0 {
			if time.Now().After(deadline) {
				t.Fatalf("connect %d: %v never acknowledged", i, store.All())
			}
			time.Sleep(5 * time.Millisecond)
		}
		cl.Disconnect(50)
	}
}

// TestResumeWhilePublishing runs paho the way lockerd does (persistent
// session, auto reconnect, QoS 1 publishes from other goroutines, one from
// the connect handler) against a Mosquitto that is killed and restarted:
// what was stored while the broker was away is resumed from the store's
// copies, until the broker has acknowledged every publish.
func TestResumeWhilePublishing(t *testing.T) {
	mq := brokertest.StartMosquitto(t, brokertest.MosquittoOptions{})
	ps := pahostore.New()
	var store mqtt.Store = ps
	o := mqtt.NewClientOptions().AddBroker(mq.URL).SetClientID("resume-publisher").SetConnectionAttemptHandler(ps.AttemptHandler).
		SetCleanSession(false).SetAutoReconnect(true).SetConnectRetry(true).
		SetConnectRetryInterval(50 * time.Millisecond).SetMaxReconnectInterval(200 * time.Millisecond).
		SetOrderMatters(true).SetStore(store)
	var connects atomic.Int32
	o.SetOnConnectHandler(func(c mqtt.Client) {
		n := connects.Add(1)
		c.Publish(fmt.Sprintf("resume/connect/%d", n), 1, true, []byte("up"))
	})
	cl := mqtt.NewClient(o)
	cl.Connect()
	t.Cleanup(func() { cl.Disconnect(100) })

	const kills = 8
	const publishers, each = 4, 1000
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				cl.Publish(fmt.Sprintf("resume/p%d/%d", p, i), 1, false, []byte("x"))
			}
		}()
	}
	for range kills {
		time.Sleep(60 * time.Millisecond)
		mq.Kill()
		time.Sleep(20 * time.Millisecond)
		mq.Start()
	}
	wg.Wait()
	// Every publish was acknowledged by the broker in the end: the store
	// is empty. A store that lost packets, or gave resume nothing to send,
	// keeps them here.
	deadline := time.Now().Add(60 * time.Second)
	for len(store.All()) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d publishes never acknowledged by the broker", len(store.All()))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("%d publishes acknowledged across %d broker kills, %d connects", publishers*each, kills, connects.Load())
}

// TestWaitResumed: a connect handler waits until the store was resumed
// on the latest attempt's connection (or cleared, for a clean session),
// and not longer than it is told.
func TestWaitResumed(t *testing.T) {
	s := pahostore.New()
	s.Open()
	s.MarkConnect()
	resumed := make(chan struct{})
	go func() {
		s.WaitResumed(time.Minute)
		close(resumed)
	}()
	select {
	case <-resumed:
		t.Fatal("done waiting before the resume")
	case <-time.After(50 * time.Millisecond):
	}
	s.All() // paho's resume takes its snapshot
	select {
	case <-resumed:
	case <-time.After(5 * time.Second):
		t.Fatal("still waiting after the resume")
	}
	s.MarkConnect()
	s.Reset() // a clean session: nothing is resumed
	s.WaitResumed(time.Minute)
	s.MarkConnect()
	start := time.Now()
	s.WaitResumed(100 * time.Millisecond)
	if time.Since(start) > 5*time.Second {
		t.Fatal("waited past its bound")
	}
}
