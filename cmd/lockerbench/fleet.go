package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/lockerd/lockerd/cmd/internal/fleetsim"
	"github.com/lockerd/lockerd/sync/brokertest"
	"github.com/lockerd/lockerd/sync/hub"
	"github.com/lockerd/lockerd/sync/hub/hubbolt"
	"github.com/lockerd/lockerd/sync/hub/pgstore"
	"github.com/lockerd/lockerd/sync/hub/pgstore/pgtest"
	"github.com/lockerd/lockerd/sync/protocol"
)

// benchFleet: N simulated lockers in one process, each with its own store
// and MQTT session, against a broker and the hub replicas on loopback.
// Each takes a return every period (about four events); the figure is
// the latency from an event being recorded at a locker to it being stored
// at the central library. Bounded: each fleet size runs for -duration.
//
// The simulated lockers keep their stores on -locker-dir, a RAM disk by
// default: a real locker syncs its own SD card, and a thousand lockers
// syncing this machine's one disk measure that disk, not the central
// (BENCHMARKS.md §12). The hubs' stores (bbolt, PostgreSQL) are on the
// disk, fsync on.
func benchFleet(args []string) error {
	fs := newFlags("fleet")
	sizes := fs.String("n", "10,50,100,200", "fleet sizes")
	duration := fs.Duration("duration", 10*time.Second, "load per fleet size")
	period := fs.Duration("period", 2*time.Second, "one return per locker per period")
	store := fs.String("store", "bolt", "the hubs' store: bolt (one hub) or postgres")
	replicas := fs.String("replicas", "1", "hub replicas, a list to compare (postgres only beyond 1)")
	broker := fs.String("broker", "mosquitto", "mosquitto, or nats (a three-node cluster, JetStream)")
	lockerDir := fs.String("locker-dir", defaultLockerDir(), "where the simulated lockers keep their stores (\"\": beside the hubs', on the disk)")
	replicaCPU := fs.Float64("replica-cpu", 0, "run each replica as a lockerhub process held to this many CPUs (a cgroup; root): a replica's own machine, on this one (postgres)")
	subscribe := fs.String("subscribe", "owned", "owned: each replica subscribes to its own lockers' topics (mqtt.subscribe_owned); all: to every locker's")
	hubBin := fs.String("lockerhub", "", "with -replica-cpu: the lockerhub binary to run (one built from another commit measures it)")
	fs.Parse(args)
	ns, err := ints(*sizes)
	if err != nil {
		return err
	}
	rs, err := ints(*replicas)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "lockerbench-fleet")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var pg *pgtest.Server
	if *store == "postgres" {
		if pg, err = pgtest.Start(pgtest.Options{Durable: true}); err != nil {
			return err
		}
		defer pg.Stop()
	}
	if *replicaCPU > 0 && *hubBin == "" {
		return errors.New("-replica-cpu runs -lockerhub BIN (go build -o /tmp/lockerhub ./cmd/lockerhub)")
	}
	fmt.Printf("lockers' stores: %s; hubs' stores: %s (fsync on)\n", orDisk(*lockerDir), dir)
	if *replicaCPU > 0 {
		fmt.Printf("replicas: %s processes, each held to %.2f CPU; latency: an event recorded → its ack.evt back at the locker\n", *hubBin, *replicaCPU)
	}
	fmt.Println()
	fmt.Println("| store | broker | replicas | lockers | events stored centrally | events/s | latency p50 | latency p99 | p99 < 1 s | CPU s: brokers | CPU s: PostgreSQL | CPU s: hubs + lockers | transactions retried |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	sustained := map[int]int{}
	for _, r := range rs {
		t := topology{store: *store, broker: *broker, replicas: r, lockerDir: *lockerDir, replicaCPU: *replicaCPU, hubBin: *hubBin,
			subscribeOwned: *subscribe == "owned"}
		if err := t.check(); err != nil {
			return err
		}
		for _, n := range ns {
			res, cpu, err := t.run(dir, pg, n, *duration, *period)
			if err != nil {
				return fmt.Errorf("%s, %d lockers: %w", t, n, err)
			}
			fmt.Printf("| %s | %s | %d | %d | %d | %.0f | %s | %s | %v | %.1f | %.1f | %.1f | %d |\n", t.store, t.broker, r, n, res.events,
				float64(res.events)/duration.Seconds(), ms(res.p50), ms(res.p99), res.ok(n, *duration, *period), cpu[0], cpu[1], cpu[2], res.retries)
			if res.ok(n, *duration, *period) && n > sustained[r] {
				sustained[r] = n
			}
		}
	}
	if len(rs) > 1 {
		var parts []string
		for _, r := range rs {
			parts = append(parts, fmt.Sprintf("%d replica(s): %d (%.2f× the first)", r, sustained[r], float64(sustained[r])/float64(max(1, sustained[rs[0]]))))
		}
		fmt.Printf("\nlockers sustained at p99 < 1 s (of the sizes tried): %s\n", strings.Join(parts, "; "))
	}
	return nil
}

// defaultLockerDir is a RAM disk when the machine has one.
func defaultLockerDir() string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		return "/dev/shm"
	}
	return ""
}

func orDisk(d string) string {
	if d == "" {
		return "on the disk, beside the hubs'"
	}
	return d
}

// topology is what a fleet runs against: a broker, hub replicas and
// their store, and where the lockers keep theirs.
type topology struct {
	store     string // bolt, postgres
	broker    string // mosquitto, nats
	replicas  int
	lockerDir string
	// replicaCPU > 0: the replicas are hubBin processes, each held to
	// that many CPUs.
	replicaCPU float64
	hubBin     string
	// subscribeOwned: each replica subscribes to its own lockers' topics.
	subscribeOwned bool
}

func (t topology) String() string {
	return fmt.Sprintf("%s, %s, %d replica(s)", t.store, t.broker, t.replicas)
}

func (t topology) check() error {
	switch {
	case t.store != "bolt" && t.store != "postgres":
		return fmt.Errorf("-store %q: bolt or postgres", t.store)
	case t.broker != "mosquitto" && t.broker != "nats":
		return fmt.Errorf("-broker %q: mosquitto or nats", t.broker)
	case t.replicas < 1 || (t.store == "bolt" && t.replicas > 1):
		return errors.New("-replicas: 1, or more on postgres (replicas share one database)")
	case t.replicaCPU > 0 && t.store != "postgres":
		return errors.New("-replica-cpu: with -store postgres")
	}
	return nil
}

// run runs one fleet size on t and returns its latencies and the CPU
// seconds of the brokers, PostgreSQL and this process (hubs and lockers).
func (t topology) run(dir string, pg *pgtest.Server, n int, duration, period time.Duration) (fleetResult, [3]float64, error) {
	var cpu [3]float64
	d, err := os.MkdirTemp(dir, "fleet")
	if err != nil {
		return fleetResult{}, cpu, err
	}
	defer os.RemoveAll(d)
	ids := fleetIDs(n)
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	c := central{key: key}
	var brokerPIDs []int
	var hubURLs func(r int) []string
	switch t.broker {
	case "mosquitto":
		url, pid, stop, err := startMosquitto(d)
		if err != nil {
			return fleetResult{}, cpu, err
		}
		defer stop()
		brokerPIDs = append(brokerPIDs, pid)
		hubURLs = func(int) []string { return []string{url} }
		c.brokers = hubURLs
	case "nats":
		cluster, err := brokertest.NewNATSCluster(d, 3)
		if cluster != nil {
			defer cluster.Kill()
		}
		if err != nil {
			return fleetResult{}, cpu, err
		}
		for _, nd := range cluster.Nodes {
			brokerPIDs = append(brokerPIDs, nd.PID())
		}
		hubURLs = cluster.URLs
		c.brokers = func(i int) []string { return cluster.URLs(i % 3) }
	}
	open := func() (hub.Store, error) { return hubbolt.Open(filepath.Join(d, "hub.db")) }
	var dsn string
	var pgStores []*pgstore.Store
	if t.store == "postgres" {
		if dsn, err = pg.NewDB(context.Background()); err != nil {
			return fleetResult{}, cpu, err
		}
		defer pg.DropDB(context.Background(), dsn)
		open = func() (hub.Store, error) {
			st, err := pgstore.Open(context.Background(), dsn, pgstore.Options{Log: quiet})
			if err == nil {
				pgStores = append(pgStores, st)
			}
			return st, err
		}
	}
	var hubPIDs []int
	var procs *hubProcs
	if t.replicaCPU > 0 {
		if procs, err = startHubProcs(d, t.hubBin, dsn, hubURLs, key, ids, t.replicas, t.replicaCPU, t.subscribeOwned); err != nil {
			return fleetResult{}, cpu, err
		}
		defer procs.stop()
		hubPIDs = procs.pids
	}
	for r := range t.replicas {
		if t.replicaCPU > 0 {
			break
		}
		st, err := open()
		if err != nil {
			return fleetResult{}, cpu, err
		}
		h, err := hub.New(hub.Config{Brokers: hubURLs(r), ClientID: fmt.Sprintf("lockerhub-%d", r+1), SigningKey: key, Store: st, Lockers: ids, Log: quiet,
			SubscribeOwned: t.subscribeOwned})
		if err != nil {
			return fleetResult{}, cpu, err
		}
		stopHub := runHub(h)
		defer stopHub()
		c.hubs = append(c.hubs, h)
	}
	lockers := d
	if t.lockerDir != "" {
		if lockers, err = os.MkdirTemp(t.lockerDir, "lockerbench-lockers"); err != nil {
			return fleetResult{}, cpu, err
		}
		defer os.RemoveAll(lockers)
	}
	// Measured once the replicas have shared the lockers out (a replica
	// takes its share within two lease renewals of its start).
	if err := settled(c.hubs, procs, 60*time.Second); err != nil {
		return fleetResult{}, cpu, err
	}
	var pgPIDs []int
	if pg != nil {
		pgPIDs = pg.PIDs()
	}
	local := append([]int{os.Getpid()}, hubPIDs...)
	before := [3]int64{ticks(brokerPIDs), ticks(pgPIDs), ticks(local)}
	retries := func() (n uint64) {
		for _, st := range pgStores {
			n += st.Retries()
		}
		return n
	}
	retried := retries()
	res, err := fleetMeasure(lockers, c, ids, duration, period)
	res.retries = retries() - retried
	after := [3]int64{ticks(brokerPIDs), ticks(pgPIDs), ticks(local)}
	for i := range cpu {
		cpu[i] = float64(after[i]-before[i]) / 100 // USER_HZ
	}
	return res, cpu, err
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
	retries  uint64 // PostgreSQL transactions run again (conflicts), in-process hubs
}

// ok: p99 under 1 s, over at least two events a return (a return
// records three or four): a central that stored few has no latency to
// speak of.
func (r fleetResult) ok(n int, duration, period time.Duration) bool {
	returns := float64(n) * duration.Seconds() / period.Seconds()
	return r.p99 < time.Second && float64(r.events) >= 2*returns
}

// fleetMeasure runs lockers ids (their stores under dir) against c: each
// takes a return every period for duration; an event's latency runs from
// its time at the locker to the first replica storing it.
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
		if len(c.hubs) == 0 {
			// The hubs are processes: an event's latency runs to the
			// ack.evt that covers it, back at the locker.
			recorded := map[uint64]time.Time{}
			var rmu sync.Mutex
			events, unsub := r.L.Subscribe()
			defer unsub()
			go func() {
				for e := range events {
					mu.Lock()
					measured := !since.IsZero() && !e.TS.Before(since)
					mu.Unlock()
					if measured {
						rmu.Lock()
						recorded[e.Seq] = e.TS
						rmu.Unlock()
					}
				}
			}()
			r.OnAck = func(upto uint64) {
				now := time.Now()
				var got []time.Duration
				rmu.Lock()
				for seq, ts := range recorded {
					if seq <= upto {
						got = append(got, now.Sub(ts))
						delete(recorded, seq)
					}
				}
				rmu.Unlock()
				mu.Lock()
				lat = append(lat, got...)
				mu.Unlock()
			}
		}
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

// settled waits until every replica holds a share of the lockers' 32
// partitions, together they hold them all, and each is subscribed to its
// lockers' messages (a binary from before the partitions reports none:
// not waited for).
func settled(hubs []*hub.Hub, procs *hubProcs, within time.Duration) error {
	var held []int
	subscribed := false
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		held, subscribed = held[:0], true
		for _, h := range hubs {
			held = append(held, h.Partitions())
			subscribed = subscribed && h.Subscribed()
		}
		if procs != nil {
			n, s := procs.partitions()
			held, subscribed = append(held, n...), subscribed && s
		}
		total, each := 0, true
		for _, n := range held {
			total += n
			each = each && n > 0
		}
		if (total == 32 && each && subscribed) || total == 0 && procs != nil {
			return nil
		}
	}
	return fmt.Errorf("the replicas did not share the lockers out within %v: partitions held %v, all subscribed %v", within, held, subscribed)
}
