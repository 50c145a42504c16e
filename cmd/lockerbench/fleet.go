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
	"github.com/lockerd/lockerd/sync/mqttlink"
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
	return withBroker("fleet", func(dir, url string) error { return fleetRun(dir, url, n, duration, period) })
}

func fleetRun(dir, url string, n int, duration, period time.Duration) error {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("fleet-%03d", i)
	}
	h, key, stopHub, err := startHub(dir, url, ids...)
	if err != nil {
		return err
	}
	defer stopHub()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	stored, unsub := h.Subscribe()
	defer unsub()
	var mu sync.Mutex
	var lat []time.Duration
	measuring := false
	go func() {
		for e := range stored {
			mu.Lock()
			if measuring {
				lat = append(lat, time.Since(e.TS))
			}
			mu.Unlock()
		}
	}()

	rigs := make([]*fleetsim.Locker, n)
	for i := range rigs {
		id := ids[i]
		d := filepath.Join(dir, id)
		os.MkdirAll(d, 0o750)
		r, err := fleetsim.New(d, id)
		if err != nil {
			return err
		}
		defer r.Close()
		state, err := r.LinkState()
		if err != nil {
			return err
		}
		link, err := mqttlink.New(mqttlink.Config{Brokers: []string{url}, LockerID: id, CentralKey: key.Public().(ed25519.PublicKey), State: state, Log: quiet}, r.L)
		if err != nil {
			return err
		}
		go link.Run(ctx)
		rigs[i] = r
	}
	time.Sleep(2 * time.Second) // connect and replay start-up events
	mu.Lock()
	measuring = true
	mu.Unlock()
	end := time.Now().Add(duration)
	var wg sync.WaitGroup
	for i, r := range rigs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * period / time.Duration(n)) // spread the fleet over the period
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
	p99 := pct(got, 99)
	fmt.Printf("| %d | %d | %.0f | %s | %s | %v |\n", n, len(got), float64(len(got))/duration.Seconds(),
		ms(pct(got, 50)), ms(p99), p99 < time.Second)
	return nil
}
