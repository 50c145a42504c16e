package main

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/lockerd/lockerd/cmd/internal/fleetsim"
	"github.com/lockerd/lockerd/sync/hub"
	"github.com/lockerd/lockerd/sync/protocol"
)

// benchFleet: N simulated lockers in one process, each with its own store
// and MQTT session, against Mosquitto and one lockerhub on loopback. Each
// takes a return every period (about four events); the figure is the
// latency from an event being recorded at a locker to it being stored at
// the central library. Bounded: each fleet size runs for -duration.
func benchFleet(args []string) error {
	fs := newFlags("fleet")
	sizes := fs.String("n", "10,50,100,200", "fleet sizes")
	duration := fs.Duration("duration", 10*time.Second, "load per fleet size")
	period := fs.Duration("period", 2*time.Second, "one return per locker per period")
	fs.Parse(args)
	ns, err := ints(*sizes)
	if err != nil {
		return err
	}
	fmt.Println("| lockers | events stored centrally | events/s | latency p50 | latency p99 | p99 < 1 s |")
	fmt.Println("|---|---|---|---|---|---|")
	for _, n := range ns {
		if err := fleetOnce(n, *duration, *period); err != nil {
			return err
		}
	}
	return nil
}

func fleetOnce(n int, duration, period time.Duration) error {
	return withBroker("fleet", func(dir, url string) error {
		ids := fleetIDs(n)
		h, key, stopHub, err := startHub(dir, url, ids...)
		if err != nil {
			return err
		}
		defer stopHub()
		r, err := fleetMeasure(dir, central{hubs: []*hub.Hub{h}, key: key, brokers: func(int) []string { return []string{url} }}, ids, duration, period)
		if err != nil {
			return err
		}
		fmt.Printf("| %d | %d | %.0f | %s | %s | %v |\n", n, r.events, float64(r.events)/duration.Seconds(), ms(r.p50), ms(r.p99), r.p99 < time.Second)
		return nil
	})
}

func fleetIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("fleet-%03d", i)
	}
	return ids
}

// central is what a fleet talks to: the hubs (replicas) storing its
// events, their signing key, and the brokers each locker uses.
type central struct {
	hubs    []*hub.Hub
	key     ed25519.PrivateKey
	brokers func(i int) []string
}

type fleetResult struct {
	events   int
	p50, p99 time.Duration
}

// fleetMeasure runs lockers ids against c: each takes a return every
// period for duration; an event's latency runs from its time at the
// locker to the first replica storing it.
func fleetMeasure(dir string, c central, ids []string, duration, period time.Duration) (fleetResult, error) {
	var mu sync.Mutex
	var lat []time.Duration
	seen := map[string]bool{}
	var since time.Time // events recorded from then on are measured
	for _, h := range c.hubs {
		stored, unsub := h.Subscribe()
		defer unsub()
		go func(stored <-chan protocol.Event) {
			for e := range stored {
				mu.Lock()
				if !since.IsZero() && !e.TS.Before(since) && !seen[e.ID] {
					seen[e.ID] = true
					lat = append(lat, time.Since(e.TS))
				}
				mu.Unlock()
			}
		}(stored)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rigs := make([]*fleetsim.Locker, len(ids))
	for i, id := range ids {
		d := filepath.Join(dir, id)
		os.MkdirAll(d, 0o750)
		r, err := fleetsim.New(d, id)
		if err != nil {
			return fleetResult{}, err
		}
		defer r.Close()
		if err := r.Connect(c.brokers(i), c.key.Public().(ed25519.PublicKey), nil); err != nil {
			return fleetResult{}, err
		}
		rigs[i] = r
	}
	time.Sleep(2 * time.Second) // connect and replay start-up events (not measured)
	mu.Lock()
	since = time.Now()
	mu.Unlock()
	end := time.Now().Add(duration)
	var wg sync.WaitGroup
	for i, r := range rigs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * period / time.Duration(len(rigs))) // spread the fleet over the period
			for k := 0; time.Now().Before(end); k++ {
				r.L.Scan(ctx, "returns", fmt.Sprintf("978%03d%07d", i, k))
				time.Sleep(period)
			}
		}()
	}
	wg.Wait()
	time.Sleep(2 * time.Second) // let the last events arrive
	mu.Lock()
	got := append([]time.Duration(nil), lat...)
	mu.Unlock()
	return fleetResult{events: len(got), p50: pct(got, 50), p99: pct(got, 99)}, nil
}
