package main

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/locker/boltstore"
	"github.com/lockerd/lockerd/locker/httpapi"
	"github.com/lockerd/lockerd/sync/brokertest"
	"github.com/lockerd/lockerd/sync/mqttlink"
	"github.com/lockerd/lockerd/sync/pahostore"
	"github.com/lockerd/lockerd/sync/protocol"
)

// outsideCentral is a central library as another implementation would
// be: a plain MQTT client with a persistent session, subscribed to
// lockers/v1/LOCKER/# at QoS 1 (again on every connection), acking with a
// signed ack.evt the events it holds without a gap. It publishes no
// central/status of its own, retained or not.
type outsideCentral struct {
	t      *testing.T
	key    []byte // ed25519 private key
	client mqtt.Client

	mu       sync.Mutex
	cond     *sync.Cond
	seen     map[uint64]int // seq → times received
	order    []uint64       // first arrivals, in arrival order
	store    string
	upto     uint64 // held without a gap from 1
	acked    uint64 // last upto acked
	again    bool   // an event held already came again: ack again
	complete time.Time
	want     uint64 // complete is set when upto reaches it
}

func newOutsideCentral(t *testing.T, url string, key []byte) *outsideCentral {
	c := &outsideCentral{t: t, key: key, seen: map[uint64]int{}}
	c.cond = sync.NewCond(&c.mu)
	o := mqtt.NewClientOptions().AddBroker(url).SetClientID("outside-central").SetCleanSession(false).
		SetAutoReconnect(true).SetConnectRetry(true).SetConnectRetryInterval(200 * time.Millisecond).
		SetMaxReconnectInterval(time.Second).SetOrderMatters(true).SetStore(pahostore.New())
	all := fmt.Sprintf("%s/%s/#", protocol.DefaultPrefix, lockerID)
	o.SetOnConnectHandler(func(cl mqtt.Client) { cl.Subscribe(all, 1, nil) })
	c.client = mqtt.NewClient(o)
	c.client.AddRoute(topics.UpEvt(), func(_ mqtt.Client, m mqtt.Message) {
		e := decodeEvent(m.Payload())
		if e == nil {
			return
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		c.store = e.Store
		if c.seen[e.Seq] == 0 {
			c.order = append(c.order, e.Seq)
		} else if e.Seq <= c.upto {
			c.again = true
		}
		c.seen[e.Seq]++
		for c.seen[c.upto+1] > 0 {
			c.upto++
		}
		if c.want > 0 && c.upto >= c.want && c.complete.IsZero() {
			c.complete = time.Now()
		}
		c.cond.Broadcast()
	})
	return c
}

// connect connects and subscribes; acks run until the test ends.
func (c *outsideCentral) connect() {
	c.t.Helper()
	if tok := c.client.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		c.t.Fatalf("outside central: connect: %v", tok.Error())
	}
}

// ackLoop acks what is held, at most every 100 ms (as a central batches
// its acks), until the test ends.
func (c *outsideCentral) ackLoop() {
	done := make(chan struct{})
	c.t.Cleanup(func() { close(done); c.client.Disconnect(100) })
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for n := 0; ; n++ {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			c.mu.Lock()
			upto, store, send := c.upto, c.store, c.upto > c.acked || c.again
			c.acked, c.again = upto, false
			c.mu.Unlock()
			if !send || !c.client.IsConnectionOpen() {
				continue
			}
			exp := time.Now().Add(time.Hour).UTC()
			raw := signed(c.t, c.key, protocol.Message{Type: protocol.TypeAckEvt, ID: fmt.Sprintf("oc-ack-%d", n), Locker: lockerID, Exp: &exp},
				protocol.AckEvt{Upto: upto, Store: store})
			c.client.Publish(topics.DownAck(), 1, false, raw)
		}
	}()
}

// expect arms the clock: complete is when every event up to seq is held.
func (c *outsideCentral) expect(seq uint64) {
	c.mu.Lock()
	c.want = seq
	c.mu.Unlock()
}

// waitAll waits for every event up to seq and returns when they were
// all held.
func (c *outsideCentral) waitAll(seq uint64, within time.Duration) time.Time {
	c.t.Helper()
	timer := time.AfterFunc(within, c.cond.Broadcast)
	defer timer.Stop()
	deadline := time.Now().Add(within)
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.upto < seq {
		if time.Now().After(deadline) {
			c.t.Fatalf("outside central holds events 1..%d of %d after %v", c.upto, seq, within)
		}
		c.cond.Wait()
	}
	return c.complete
}

// TestOfflineEventsReachAnOutsideCentral is the outage of issue 24 as an
// outside central sees it: Mosquitto without persistence (a restart
// forgets every session, subscription and retained message), a central
// that is only a subscriber and says nothing of itself. Orders picked up
// and books returned with the broker down, lockerd SIGKILLed and started
// again still offline, more of both; the broker starts again and lockerd
// publishes its outbox before the central has subscribed again (the
// broker drops it: no one is subscribed). Every event must still reach
// the central, each first arriving once and in seq order, within a bound
// — for an outbox of about 50 events and of 5,000 (a long outage).
func TestOfflineEventsReachAnOutsideCentral(t *testing.T) {
	for _, tc := range []struct {
		name   string
		filler int           // events recorded into the store while lockerd is down
		bound  time.Duration // from the central's subscription to every event held
	}{
		{"outbox of 50", 30, 10 * time.Second},
		{"outbox of 5000", 4980, 20 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mq := brokertest.StartMosquitto(t, brokertest.MosquittoOptions{NoPersistence: true})
			key, pub := newKey(t)
			central := newOutsideCentral(t, mq.URL, key)
			central.connect()
			central.ackLoop()
			c := newCabinet(t, "0s", withMQTT(mq.URL, pub, ""))
			d := start(t, c.Config)
			var orders []httpapi.AddOrderReply
			for _, comp := range []string{"A01", "A02", "B01"} {
				orders = append(orders, d.addOrder(httpAddOrder(comp)))
			}
			until(t, "the events so far held and acked", func() bool { return d.status().OutboxDepth == 0 })

			// The outage: the central is cut off too (its session, with
			// the broker's, is forgotten).
			mq.Stop()
			central.client.Disconnect(100)
			if res := d.scan("returns", "9787532736744"); res.Outcome != locker.OutcomeReturned {
				t.Fatalf("offline return: %+v", res)
			}
			pickup := func(o httpapi.AddOrderReply) {
				t.Helper()
				res := d.scan("keypad", o.Code)
				if res.Outcome != locker.OutcomeOpened {
					t.Fatalf("offline pickup: %+v", res)
				}
				d.sim("close", res.Compartments[0])
				d.waitEvent(locker.EvPickupCompleted, map[string]any{"order_id": o.Order.ID})
			}
			pickup(orders[0])
			d.kill() // a power cut, still offline
			fill(t, c.Store, tc.filler)
			d = start(t, c.Config)
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("lockerd's log:\n%s", d.logs())
				}
			})
			pickup(orders[1])
			if res := d.scan("returns", "9787020002207"); res.Outcome != locker.OutcomeReturned {
				t.Fatalf("offline return after restart: %+v", res)
			}
			st := d.status()
			head := st.LastSeq
			t.Logf("outbox %d events, seq %d..%d", st.OutboxDepth, head-uint64(st.OutboxDepth)+1, head)

			// The broker is back; lockerd connects and publishes to no one.
			// A watcher (not the central) sees it do so: the first event
			// not acked goes out (again and again) while the central is
			// away.
			first := head - uint64(st.OutboxDepth) + 1
			mq.Start()
			back := time.Now()
			watch := brokertest.Record(t, mq.URL, "watcher", "", nil, topics.UpEvt())
			if res := d.scan("returns", "9787544253994"); res.Outcome != locker.OutcomeReturned {
				t.Fatalf("return once the broker is back: %+v", res)
			}
			head = d.status().LastSeq
			watch.Wait(30*time.Second, "lockerd publishing its outbox", func(m brokertest.Msg) bool {
				e := decodeEvent(m.Payload)
				return e != nil && e.Seq == first
			})
			central.expect(head)
			central.mu.Lock()
			before := len(central.order) // the events it held before the outage
			central.mu.Unlock()
			central.connect()
			subscribed := time.Now()
			complete := central.waitAll(head, tc.bound)
			t.Logf("every event held by the central %v after it subscribed again, %v after the broker's return (bound %v)",
				complete.Sub(subscribed).Round(time.Millisecond), complete.Sub(back).Round(time.Millisecond), tc.bound)
			until(t, "outbox empty", func() bool { return d.status().OutboxDepth == 0 })

			central.mu.Lock()
			defer central.mu.Unlock()
			// First arrivals are in seq order from the first event not
			// acked on: a central that subscribes while a pass is under
			// way first sees that pass's tail (at most the ack window),
			// held until the resend from the last ack fills the gap.
			var last, dups uint64
			from := slices.Index(central.order, first)
			if from < before || from-before > mqttlink.DefaultAckWindow {
				t.Fatalf("event %d arrived at position %d of the central's first arrivals since it subscribed again (the ack window is %d)",
					first, from-before, mqttlink.DefaultAckWindow)
			}
			for _, seq := range central.order[from:] {
				if seq < last {
					t.Fatalf("seq %d first arrived after seq %d", seq, last)
				}
				last = seq
			}
			for _, n := range central.seen {
				dups += uint64(n - 1)
			}
			if uint64(len(central.order)) != head || slices.Max(central.order) != head {
				t.Fatalf("central holds %d distinct events, last %d; locker recorded %d", len(central.order), last, head)
			}
			t.Logf("%d events held once each (the central also received %d copies sent again, dropped by id)", head, dups)
			var pickups, returns int
			for _, m := range watch.All() {
				if e := decodeEvent(m.Payload); e != nil && e.Seq >= first && e.Type == string(locker.EvPickupCompleted) {
					pickups++
				} else if e != nil && e.Seq >= first && e.Type == string(locker.EvItemReturned) && e.Seq > head-3 {
					returns++
				}
			}
			if pickups < 2 {
				t.Fatalf("the offline pickups on the wire: %d, want 2", pickups)
			}
		})
	}
}

// fill records n returns into lockerd's store while lockerd is down: a
// long outage's outbox.
func fill(t *testing.T, path string, n int) {
	t.Helper()
	s, err := boltstore.Open(path, boltstore.Options{LockTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for done := 0; done < n; {
		err := s.Update(func(tx locker.Tx) error {
			for i := 0; i < 1000 && done < n; i, done = i+1, done+1 {
				d := locker.ItemReturned{Barcode: fmt.Sprintf("978%010d", done), Scanner: "returns"}
				if _, err := tx.Record(locker.Event{Type: d.EventType(), TS: time.Now().UTC(), Boot: 1, Data: locker.DataOf(d)}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
