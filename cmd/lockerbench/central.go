package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/lockerd/lockerd/sync/hub"
	"github.com/lockerd/lockerd/sync/hub/hubbolt"
	"github.com/lockerd/lockerd/sync/hub/pgstore"
	"github.com/lockerd/lockerd/sync/hub/pgstore/pgtest"
	"github.com/lockerd/lockerd/sync/protocol"
)

// benchCentral compares the central's topologies in one run:
//   - ingest: events stored per second by one hub on bbolt and on
//     PostgreSQL (durable: fsync on), batches as the broker's;
//   - the fleet: lockers sustained at an event p99 under 1 s, on the
//     single-process topology (Mosquitto, one hub on bbolt) and on the
//     network one (a three-node NATS cluster, PostgreSQL) with one
//     replica and with two, and the CPU each part used.
func benchCentral(args []string) error {
	fs := newFlags("central")
	sizes := fs.String("n", "50,100,200,400", "fleet sizes on the single-process topology")
	netSizes := fs.String("network-n", "25,50,75,100", "fleet sizes on the network topology (its three broker nodes share this machine's cores)")
	duration := fs.Duration("duration", 10*time.Second, "load per fleet size")
	period := fs.Duration("period", 2*time.Second, "one return per locker per period")
	events := fs.Int("events", 20000, "events for the ingest comparison")
	fs.Parse(args)
	ns, err := ints(*sizes)
	if err != nil {
		return err
	}
	netNs, err := ints(*netSizes)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "lockerbench-central")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	pg, err := pgtest.Start(pgtest.Options{Durable: true})
	if err != nil {
		return err
	}
	defer pg.Stop()

	// Ingest.
	boltRate, err := ingest(func() (hub.Store, error) { return hubbolt.Open(filepath.Join(dir, "ingest.db")) }, *events)
	if err != nil {
		return err
	}
	dsn, err := pg.NewDB(context.Background())
	if err != nil {
		return err
	}
	pgRate, err := ingest(func() (hub.Store, error) {
		return pgstore.Open(context.Background(), dsn, pgstore.Options{Log: quiet})
	}, *events)
	if err != nil {
		return err
	}
	fmt.Printf("\n| store | events stored/s (batches of 100, 20 lockers) | ratio to bbolt |\n|---|---|---|\n")
	fmt.Printf("| bbolt (one file) | %.0f | 1.00 |\n| PostgreSQL 15 (fsync on) | %.0f | %.2f |\n", boltRate, pgRate, pgRate/boltRate)

	// The fleet on each topology.
	fmt.Printf("\n| topology | lockers | events stored | p50 | p99 | p99 < 1 s | CPU s: brokers | CPU s: PostgreSQL | CPU s: hubs + lockers |\n|---|---|---|---|---|---|---|---|---|\n")
	sustained := map[string]int{}
	for _, topo := range []string{"single", "network, 1 replica", "network, 2 replicas"} {
		sizes := netNs
		if topo == "single" {
			sizes = ns
		}
		for _, n := range sizes {
			r, cpu, err := centralTopologies[topo].run(dir, pg, n, *duration, *period)
			if err != nil {
				return fmt.Errorf("%s, %d lockers: %w", topo, n, err)
			}
			fmt.Printf("| %s | %d | %d | %s | %s | %v | %.1f | %.1f | %.1f |\n", topo, n, r.events, ms(r.p50), ms(r.p99), r.ok(n, *duration, *period), cpu[0], cpu[1], cpu[2])
			if r.ok(n, *duration, *period) && n > sustained[topo] {
				sustained[topo] = n
			}
		}
	}
	one, two := sustained["network, 1 replica"], sustained["network, 2 replicas"]
	ratio := 0.0
	if one > 0 {
		ratio = float64(two) / float64(one)
	}
	fmt.Printf("\nlockers sustained at p99 < 1 s (of the sizes tried): single %d, network with 1 replica %d, with 2 replicas %d (ratio 2:1 = %.2f)\n",
		sustained["single"], one, two, ratio)
	return nil
}

// centralTopologies are the ones compared: the lockers' stores on the
// disk, as they were measured first (BENCHMARKS.md §9).
var centralTopologies = map[string]topology{
	"single":              {store: "bolt", broker: "mosquitto", replicas: 1},
	"network, 1 replica":  {store: "postgres", broker: "nats", replicas: 1},
	"network, 2 replicas": {store: "postgres", broker: "nats", replicas: 2},
}

// ingest stores n events from 20 lockers through a hub on the store
// open gives, in batches of 100, and returns events per second.
func ingest(open func() (hub.Store, error), n int) (float64, error) {
	st, err := open()
	if err != nil {
		return 0, err
	}
	ids := fleetIDs(20)
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	h, err := hub.New(hub.Config{Store: st, SigningKey: key, Lockers: ids, Log: quiet})
	if err != nil {
		return 0, err
	}
	defer h.Close()
	var batch []hub.Uplink
	for i, id := range ids {
		raw, _ := json.Marshal(protocol.Status{V: 1, Type: protocol.TypeStatus, Online: true, Boot: 1, Store: fmt.Sprintf("s%d", i), OutboxTail: 1, TS: time.Now().UTC()})
		batch = append(batch, hub.Uplink{Topic: protocol.Topics{Prefix: protocol.DefaultPrefix, Locker: id}.Status(), Payload: raw})
	}
	h.HandleUplinks(batch)
	var msgs []hub.Uplink
	for k := range n {
		i, seq := k%len(ids), uint64(k/len(ids)+1)
		tp := protocol.Topics{Prefix: protocol.DefaultPrefix, Locker: ids[i]}
		store := fmt.Sprintf("s%d", i)
		raw, _ := json.Marshal(protocol.Event{V: 1, ID: protocol.EventID(ids[i], store, seq), Type: "item.returned", Locker: ids[i], Store: store,
			Boot: 1, Seq: seq, TS: time.Now().UTC(), Data: json.RawMessage(`{"barcode":"9780000000000"}`)})
		msgs = append(msgs, hub.Uplink{Topic: tp.UpEvt(), Payload: raw})
	}
	start := time.Now()
	for i := 0; i < len(msgs); i += 100 {
		h.HandleUplinks(msgs[i:min(i+100, len(msgs))])
	}
	rate := float64(n) / time.Since(start).Seconds()
	var stored uint64
	for _, id := range ids {
		li, err := h.Locker(id)
		if err != nil {
			return 0, err
		}
		stored += li.Events
	}
	if stored != uint64(n) {
		return 0, fmt.Errorf("ingest: %d events stored of %d", stored, n)
	}
	return rate, nil
}

func ticks(pids []int) int64 {
	var t int64
	for _, pid := range pids {
		t += cpuTicks(pid)
	}
	return t
}

// runHub runs h until the returned stop, once it is connected.
func runHub(h *hub.Hub) func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	for deadline := time.Now().Add(30 * time.Second); !h.Connected() && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	return func() { cancel(); <-done; h.Close() }
}
