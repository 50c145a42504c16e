package main

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lockerd/lockerd/cmd/internal/fleetsim"
	"github.com/lockerd/lockerd/cmd/internal/hubproc"
	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/locker/lockertest"
	"github.com/lockerd/lockerd/sync/brokertest"
	"github.com/lockerd/lockerd/sync/hub"
	"github.com/lockerd/lockerd/sync/hub/hubclient"
	"github.com/lockerd/lockerd/sync/hub/pgstore"
	"github.com/lockerd/lockerd/sync/hub/pgstore/pgtest"
	"github.com/lockerd/lockerd/sync/mqttlink"
	"github.com/lockerd/lockerd/sync/protocol"
)

// The central on its real infrastructure, under failure: PostgreSQL, a
// three-node NATS cluster (JetStream, MQTT), two lockerhub replicas on
// different nodes and a fleet of simulated lockers spread over the nodes,
// with returns, orders, cancels and remote opens going on, while one NATS
// node and then one replica are killed (SIGKILL) and restarted, again and
// again. At the end every locker event is stored once by id with
// contiguous seq, every outbox is empty, every order change was applied
// once at its locker, no rev was issued twice, and no command acted twice.
// make torture runs it long (LOCKERHUB_CHAOS_KILLS, LOCKERHUB_CHAOS_LOCKERS).
func TestCentralChaos(t *testing.T) {
	kills := lockertest.EnvInt("LOCKERHUB_CHAOS_KILLS", 2)
	nLockers := lockertest.EnvInt("LOCKERHUB_CHAOS_LOCKERS", 20)
	dir := t.TempDir()
	bin := hubproc.Build(t)
	cluster := brokertest.StartNATSCluster(t, 3)
	dsn := pgtest.DB(t)
	os.WriteFile(filepath.Join(dir, "hub.dsn"), []byte(dsn+"\n"), 0o600)
	if _, errw, code := cli(t, "keygen", "-out", dir); code != 0 {
		t.Fatal(errw)
	}
	central, err := os.ReadFile(filepath.Join(dir, "central.key"))
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := hex.DecodeString(strings.TrimSpace(string(central)))
	pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	os.WriteFile(filepath.Join(dir, "pickup.key"), []byte(hex.EncodeToString(lockertest.Key)+"\n"), 0o600)
	ids := make([]string, nLockers)
	for i := range ids {
		ids[i] = fmt.Sprintf("chaos-%02d", i+1)
	}
	idList, _ := json.Marshal(ids)

	replicas := make([]*hubproc.Hub, 2)
	for i := range replicas {
		r := hubproc.New(t, fmt.Sprintf("lockerhub-%d", i+1), bin, filepath.Join(dir, fmt.Sprintf("hub-%d.yaml", i+1)),
			fmt.Sprintf("127.0.0.1:%d", brokertest.FreePort(t)), filepath.Join(dir, fmt.Sprintf("hub-%d.log", i+1)))
		brokers, _ := json.Marshal(cluster.URLs(i))
		os.WriteFile(r.Conf, []byte(fmt.Sprintf(`store: {driver: postgres, dsn_file: hub.dsn}
http: {listen: %q}
mqtt: {brokers: %s, client_id: %s}
keys: {signing_key_file: central.key, pickup_key_file: pickup.key}
lockers: %s
lease_ttl: 3s
resend_after: 3s
`, r.Addr, brokers, r.Name, idList)), 0o600)
		r.Start()
		replicas[i] = r
	}
	token := replicas[0].Token()

	fleet := make([]*fleetsim.Locker, nLockers)
	for i, id := range ids {
		d := filepath.Join(dir, id)
		os.MkdirAll(d, 0o750)
		l, err := fleetsim.New(d, id)
		if err != nil {
			t.Fatal(err)
		}
		lf, err := os.Create(filepath.Join(d, "link.log"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { lf.Close() })
		// Timers as a test can wait for: un-acked events sent again after
		// 3 s of silence (a silent downlink is taken for broken after two).
		fast := func(c *mqttlink.Config) { c.RetransmitAfter = 3 * time.Second }
		if err := l.Connect(cluster.URLs(i%3), pub, slog.New(slog.NewTextHandler(lf, nil)), fast); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(l.Close)
		fleet[i] = l
	}

	// The workload: returns at every locker; orders created, some
	// cancelled, and remote opens, through either replica (the other when
	// one is down, as a load balancer would).
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var returns, created, cancelled, opens, apiErrors atomic.Int64
	for i, l := range fleet {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; ctx.Err() == nil; k++ {
				if res, _ := l.L.Scan(ctx, "returns", fmt.Sprintf("978%03d%07d", i, k)); res.Outcome == locker.OutcomeReturned {
					returns.Add(1)
				}
				// A return every 1-2 s (four events each): within what the
				// cluster carries on this machine (BENCHMARKS.md §9), so
				// that what piles up is failure, not overload.
				sleep(ctx, time.Duration(1000+rand.IntN(1000))*time.Millisecond)
			}
		}()
	}
	call := func(k int, f func(c *hubclient.Client) error) bool {
		for try := range 2 {
			c := hubclient.New(replicas[(k+try)%2].Addr)
			c.Token = token
			if f(c) == nil {
				return true
			}
		}
		apiErrors.Add(1)
		return false
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for k := 0; ctx.Err() == nil; k++ {
			id := ids[rand.IntN(len(ids))]
			var cr hub.Created
			if call(k, func(c *hubclient.Client) (err error) { cr, err = c.CreateOrder(hub.NewOrder{Locker: id}); return err }) {
				created.Add(1)
				if k%4 == 0 && call(k+1, func(c *hubclient.Client) error { _, err := c.CancelOrder(id, cr.Order.ID); return err }) {
					cancelled.Add(1)
				}
			}
			if k%5 == 0 && call(k, func(c *hubclient.Client) error {
				_, err := c.Open(id, "S1", fmt.Sprintf("chaos-open-%d", k))
				return err
			}) {
				opens.Add(1)
			}
			sleep(ctx, 50*time.Millisecond)
		}
	}()

	sleep(context.Background(), 3*time.Second)
	for k := range kills {
		nd := cluster.Nodes[k%3]
		t.Logf("kill %d: NATS node %s", k+1, nd.Name)
		nd.Kill()
		sleep(context.Background(), 3*time.Second)
		restarted := time.Now()
		nd.Start(t)
		cluster.WaitHealthy(t, 120*time.Second) // a Raft group must be current before the next kill
		t.Logf("kill %d: %s current again %v after its start", k+1, nd.Name, time.Since(restarted).Round(100*time.Millisecond))
		r := replicas[k%2]
		t.Logf("kill %d: %s", k+1, r.Name)
		r.Kill()
		sleep(context.Background(), 2*time.Second)
		r.Start()
		sleep(context.Background(), 2*time.Second)
	}
	stop()
	wg.Wait()

	// Everything settles: outboxes empty, every change applied.
	st, err := pgstore.Open(context.Background(), dsn, pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	lastRev := func(id string) (rev uint64) {
		st.View(func(tx hub.Tx) error { rev, _ = tx.Orders.LastRev(id); return nil })
		return rev
	}
	var lagging []string
	for deadline := time.Now().Add(180 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		lagging = nil
		for _, l := range fleet {
			ss, err := l.L.SyncState()
			if err != nil {
				t.Fatal(err)
			}
			var li hub.LockerInfo
			var pending []hub.PendingMsg
			st.View(func(tx hub.Tx) error {
				li, _ = tx.Lockers.Locker(l.ID)
				pending, _ = tx.Orders.PrunePending(l.ID, 0)
				return nil
			})
			if ss.Depth > 0 || ss.OrdersRev != lastRev(l.ID) || len(pending) > 0 {
				lagging = append(lagging, fmt.Sprintf("%s (outbox %d: acked %d of %d, the hub's mark %d; orders rev %d of %d, %d changes unacknowledged)",
					l.ID, ss.Depth, ss.AckedSeq, ss.OutboxHead, li.Acked, ss.OrdersRev, lastRev(l.ID), len(pending)))
			}
		}
		if len(lagging) == 0 {
			break
		}
		if time.Now().After(deadline) {
			for _, l := range fleet {
				if ss, _ := l.L.SyncState(); ss.Depth > 0 || ss.OrdersRev != lastRev(l.ID) {
					raw, _ := os.ReadFile(filepath.Join(l.Dir, "link.log"))
					t.Logf("%s's link log (tail):\n%s", l.ID, tail(string(raw), 8000))
				}
			}
			// Where every goroutine of this process (the simulated
			// lockers' links among them) stands, for the next reader.
			var stacks strings.Builder
			pprof.Lookup("goroutine").WriteTo(&stacks, 2)
			var links []string
			for _, g := range strings.Split(stacks.String(), "\n\n") {
				if strings.Contains(g, "mqttlink") || strings.Contains(g, "paho") {
					links = append(links, g)
				}
			}
			t.Logf("goroutines in the MQTT links and paho (%d):\n%s", len(links), tail(strings.Join(links, "\n\n"), 30000))
			t.Fatalf("not settled after the chaos: %v", lagging)
		}
	}

	var events, orders, changes, cmdsActed int
	for _, l := range fleet {
		ss, _ := l.L.SyncState()
		var evs []hub.StoredEvent
		var hubOrders []hub.OrderRec
		var rev uint64
		st.View(func(tx hub.Tx) error {
			evs, err = tx.Events.Events(l.ID, hub.Cursor{}, 0)
			if err != nil {
				return err
			}
			hubOrders, err = tx.Orders.Orders(l.ID)
			if err != nil {
				return err
			}
			rev, err = tx.Orders.LastRev(l.ID)
			return err
		})
		// Every event once, by id, contiguous from 1 to the outbox head.
		seen := map[string]bool{}
		opened := map[string]int{}
		for i, e := range evs {
			if e.Epoch != 1 || e.Seq != uint64(i+1) || seen[e.ID] || e.ID != protocol.EventID(l.ID, ss.StoreID, e.Seq) {
				t.Fatalf("%s: event %d is %s (epoch %d seq %d): want seq %d once, of store %s", l.ID, i, e.ID, e.Epoch, e.Seq, i+1, ss.StoreID)
			}
			seen[e.ID] = true
			if e.Type == string(locker.EvMaintenanceOpen) {
				var d locker.MaintenanceOpened
				json.Unmarshal(e.Data, &d)
				opened[d.Reason]++
			}
		}
		if uint64(len(evs)) != ss.OutboxHead {
			t.Fatalf("%s: %d events stored, the locker recorded %d", l.ID, len(evs), ss.OutboxHead)
		}
		events += len(evs)
		// No command acted on twice.
		for reason, n := range opened {
			if n > 1 {
				t.Fatalf("%s: the remote open %q acted %d times", l.ID, reason, n)
			}
			cmdsActed += n
		}
		// No rev issued twice; every order as the hub has it, at the
		// locker, at its rev.
		revs := map[uint64]string{}
		local, err := l.L.Orders()
		if err != nil {
			t.Fatal(err)
		}
		at := map[string]locker.Order{}
		for _, o := range local {
			at[o.ID] = o
		}
		for _, o := range hubOrders {
			if other, dup := revs[o.Rev]; dup {
				t.Fatalf("%s: rev %d issued to %s and %s", l.ID, o.Rev, other, o.ID)
			}
			revs[o.Rev] = o.ID
			lo, ok := at[o.ID]
			if !ok || lo.Rev != o.Rev || (o.Status == "cancelled") != (lo.State == locker.OrderCancelled) {
				t.Fatalf("%s: order %s is %s at rev %d at the hub, %s at rev %d at the locker (found %v)", l.ID, o.ID, o.Status, o.Rev, lo.State, lo.Rev, ok)
			}
		}
		if len(local) != len(hubOrders) {
			t.Fatalf("%s: %d orders at the locker, %d at the hub", l.ID, len(local), len(hubOrders))
		}
		orders += len(hubOrders)
		changes += int(rev)
	}
	t.Logf("chaos: %d lockers, %d NATS node kills, %d replica kills (SIGKILL); %d returns, %d orders created (%d cancelled), %d remote opens sent; %d API calls failed on both replicas",
		nLockers, kills, kills, returns.Load(), created.Load(), cancelled.Load(), opens.Load(), apiErrors.Load())
	t.Logf("chaos: %d events stored once each with contiguous seq, every outbox empty; %d orders, %d order changes (revs) each applied once; %d remote opens acted, none twice",
		events, orders, changes, cmdsActed)
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
