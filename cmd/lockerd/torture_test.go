package main

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockerd/lockerd/drivers/sim"
	"github.com/lockerd/lockerd/locker/httpapi"
	"github.com/lockerd/lockerd/locker/lockertest"
	"github.com/lockerd/lockerd/sync/brokertest"
	"github.com/lockerd/lockerd/sync/hub"
	"github.com/lockerd/lockerd/sync/protocol"
)

// envInt reads a torture size: `make torture` runs the full sizes, the
// normal test run shortened ones.
// workload runs a mixed load on d until stop closes: pickups and returns
// through the API, doors opened by hand, orders from the central library.
// Errors are expected (the daemon is killed under it) and ignored.
func workload(d *daemon, c *central, rng *rand.Rand, stop <-chan struct{}) {
	comps := []string{"A01", "A02", "A03", "B01", "B02", "C01"}
	api := d.client()
	api.HTTP.Timeout = 2 * time.Second
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		switch rng.IntN(5) {
		case 0, 1:
			if rep, err := api.AddOrder(httpapi.AddOrderRequest{Compartment: comps[rng.IntN(len(comps))]}); err == nil {
				api.Scan("keypad", rep.Code)
			}
		case 2:
			api.Scan("returns", "97870200"+strconv.Itoa(10000+rng.IntN(90000)))
		case 3:
			sim.Remote(api.Do, "open", comps[rng.IntN(len(comps))])
		case 4:
			c.CreateOrder(hub.NewOrder{Locker: lockerID, Size: "S"})
		}
		time.Sleep(time.Duration(5+rng.IntN(20)) * time.Millisecond)
	}
}

// checkCentral waits until the central has every event the locker
// recorded, then checks: each seq once, 1..n with no gap, boots in order.
func checkCentral(t *testing.T, d *daemon, c *central) int {
	t.Helper()
	head := d.status().LastSeq
	// After broker restarts in quick succession paho backs off before it
	// reconnects (doubling, up to mqtt's 30 s MaxReconnectInterval), on
	// the locker and on the central alike; with both cores busy a run took
	// longer than 15 s.
	began := time.Now()
	acked := func() bool { li, _ := c.Locker(lockerID); return li.Acked >= head }
	for !acked() {
		if time.Since(began) > reconnectBound {
			li, _ := c.Locker(lockerID)
			t.Fatalf("the central acked %d of %d events after %v\nlockerd log:\n%s", li.Acked, head, reconnectBound, tail(d.logs(), 60))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("the central acked all %d events %v after the workload stopped", head, time.Since(began).Round(time.Millisecond))
	until(t, "outbox empty", func() bool { return d.status().OutboxDepth == 0 })
	evs, err := c.Events(lockerID, hub.Cursor{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var boot uint64
	for i, e := range evs {
		if e.Seq != uint64(i+1) || e.ID != protocol.EventID(lockerID, e.Store, e.Seq) {
			t.Fatalf("central event %d has seq %d id %s: gap or duplicate", i, e.Seq, e.ID)
		}
		if e.Boot < boot {
			t.Fatalf("seq %d from boot %d after boot %d", e.Seq, e.Boot, boot)
		}
		boot = e.Boot
	}
	if uint64(len(evs)) < head {
		t.Fatalf("central has %d events, the locker recorded %d", len(evs), head)
	}
	return len(evs)
}

// reconnectBound covers paho's longest reconnect back-off and a replay.
const reconnectBound = 75 * time.Second

// TestPowerCutTorture SIGKILLs lockerd at random moments during a mixed
// workload and order sync; after every restart the store opens, and at the
// end the central library has every event exactly once, in seq order, with
// no gap. LOCKERD_TORTURE_KILLS sets the number of kills (make torture: 200).
func TestPowerCutTorture(t *testing.T) {
	kills := lockertest.EnvInt("LOCKERD_TORTURE_KILLS", 12)
	mq := brokertest.StartMosquitto(t, brokertest.MosquittoOptions{})
	key, _ := newKey(t)
	c := startCentral(t, mq.URL, key, nil, "lockerhub")
	cab := newCabinet(t, "20ms", withMQTT(mq.URL, c.Pub, ""))
	rng := rand.New(rand.NewPCG(7, uint64(kills)))
	for i := 0; i < kills; i++ {
		d := start(t, cab.Config) // fails the test if the store does not open
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); workload(d, c, rand.New(rand.NewPCG(uint64(i), 1)), stop) }()
		time.Sleep(time.Duration(20+rng.IntN(300)) * time.Millisecond) // a random moment
		d.kill()
		close(stop)
		wg.Wait()
	}
	d := start(t, cab.Config)
	n := checkCentral(t, d, c)
	li, _ := c.Locker(lockerID)
	t.Logf("%d SIGKILLs: central holds %d events from %d boots, each once, seq 1..%d", kills, n, li.Boot, n)
}

// TestBrokerChaos kills and restarts the broker (cutting the link in the
// middle of publishes) during load: zero loss, zero duplicates after
// dedupe by id, outbox empty at the end. LOCKERD_CHAOS_RESTARTS sets the
// number of broker restarts (make torture: 20).
func TestBrokerChaos(t *testing.T) {
	restarts := lockertest.EnvInt("LOCKERD_CHAOS_RESTARTS", 5)
	mq := brokertest.StartMosquitto(t, brokertest.MosquittoOptions{})
	key, _ := newKey(t)
	c := startCentral(t, mq.URL, key, nil, "lockerhub")
	rec := brokertest.Record(t, mq.URL, "chaos-recorder", "", nil, topics.UpEvt())
	cab := newCabinet(t, "20ms", withMQTT(mq.URL, c.Pub, ""))
	d := start(t, cab.Config)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); workload(d, c, rand.New(rand.NewPCG(3, 4)), stop) }()
	rng := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < restarts; i++ {
		time.Sleep(time.Duration(100+rng.IntN(400)) * time.Millisecond)
		mq.Kill()
		time.Sleep(time.Duration(50+rng.IntN(300)) * time.Millisecond)
		mq.Start()
	}
	close(stop)
	wg.Wait()
	n := checkCentral(t, d, c)
	dups := 0
	seen := map[uint64]bool{}
	for _, m := range rec.All() {
		if e := decodeEvent(m.Payload); e != nil {
			if seen[e.Seq] {
				dups++
			}
			seen[e.Seq] = true
		}
	}
	t.Logf("%d broker kills: central holds %d events once each; %d redeliveries on the wire removed by id", restarts, n, dups)
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
