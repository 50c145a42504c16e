package main

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
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
	"github.com/lockerd/lockerd/sync/hub/circulation"
	"github.com/lockerd/lockerd/sync/hub/hubclient"
	"github.com/lockerd/lockerd/sync/hub/pgstore"
	"github.com/lockerd/lockerd/sync/hub/pgstore/pgtest"
	"github.com/lockerd/lockerd/sync/hub/webhook"
	"github.com/lockerd/lockerd/sync/mqttlink"
	"github.com/lockerd/lockerd/sync/protocol"
	"github.com/lockerd/lockerd/sync/sip2/sip2test"
)

// The central on its real infrastructure, under failure: PostgreSQL, a
// three-node NATS cluster (JetStream, MQTT), two lockerhub replicas on
// different nodes, a fake ILS (SIP2), a webhook receiver, and a fleet of
// simulated lockers spread over the nodes, with returns, loans (orders
// loaded by staff and picked up), orders, cancels and remote opens going
// on, while one NATS node, then one replica (SIGKILL), then PostgreSQL
// (an immediate stop, as a power cut) go down and come back, again and
// again. At the end every locker event is stored once by id with
// contiguous seq, every outbox is empty, every order change was applied
// once at its locker, no rev was issued twice, no command acted twice,
// every loan reached the ILS once and every return at least once (a
// checkin on the wire when its sender died is sent again: harmless), and
// every webhook event was received, each id once after the receiver's
// deduplication (the documented contract: at least once, by id).
// make torture runs it long (LOCKERHUB_CHAOS_KILLS, LOCKERHUB_CHAOS_LOCKERS).
func TestCentralChaos(t *testing.T) {
	kills := lockertest.EnvInt("LOCKERHUB_CHAOS_KILLS", 2)
	nLockers := lockertest.EnvInt("LOCKERHUB_CHAOS_LOCKERS", 20)
	dir := t.TempDir()
	bin := hubproc.Build(t)
	cluster := brokertest.StartNATSCluster(t, 3)
	// A server of its own: it is crashed and restarted. Durable: without
	// synchronous commit an immediate stop loses the last commits (still
	// in its WAL buffers), which no production server is set up to do.
	pg, err := pgtest.Start(pgtest.Options{Durable: true})
	if err != nil {
		t.Fatalf("no PostgreSQL for the chaos test: %v", err)
	}
	t.Cleanup(pg.Stop)
	dsn, err := pg.NewDB(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "hub.dsn"), []byte(dsn+"\n"), 0o600)
	const patron = "C1"
	ils := sip2test.Start(t, []sip2test.Patron{{ID: patron, Name: "Chaos Reader"}}, nil)
	os.WriteFile(filepath.Join(dir, "sip2.pw"), []byte("secret\n"), 0o600)
	hooks := startHookReceiver(t, "chaos-webhook-secret-0123456789")
	os.WriteFile(filepath.Join(dir, "hook.secret"), []byte(hooks.secret+"\n"), 0o600)
	if _, errw, code := cli(t, "keygen", "-out", dir); code != 0 {
		t.Fatal(errw)
	}
	central, err := os.ReadFile(filepath.Join(dir, "central.key"))
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
sip2: {address: %q, user: locker, password_file: sip2.pw, institution: FAKE, timeout: 2s, heartbeat: 5s}
egress_allow: [127.0.0.1]
webhooks:
  - {name: chaos, url: %q, events: [order.loaded, pickup.completed, item.returned], secret_file: hook.secret}
`, r.Addr, brokers, r.Name, idList, ils.Addr, hooks.url)), 0o600)
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

	// The workload: returns at every locker; loans at the first fifth
	// (orders for the reader, loaded by staff, picked up); at the others
	// orders created, some cancelled, and remote opens; through either
	// replica (the other when one is down, as a load balancer would).
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var returns, created, cancelled, opens, apiErrors atomic.Int64
	every := time.Duration(lockertest.EnvInt("LOCKERHUB_CHAOS_RETURN_MS", 500)) * time.Millisecond
	for i, l := range fleet {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; ctx.Err() == nil; k++ {
				barcode := fmt.Sprintf("978%03d%07d", i, k)
				ils.AddItems(sip2test.Item{Barcode: barcode})
				if res, _ := l.L.Scan(ctx, "returns", barcode); res.Outcome == locker.OutcomeReturned {
					returns.Add(1)
				}
				// A return every 0.5-1 s (four events each, and a checkin
				// and a webhook): twice the rate of before the central's
				// scale-out (BENCHMARKS.md §12), within what the NATS
				// cluster carries on this machine (§9), so that what piles
				// up is failure, not overload.
				sleep(ctx, every+rand.N(every))
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
	nLoan := max(1, nLockers/5)
	loans := &loanLog{}
	for i, l := range fleet[:nLoan] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; ctx.Err() == nil; k++ {
				items := []protocol.Item{{Barcode: fmt.Sprintf("39%03d%06d1", i, k)}, {Barcode: fmt.Sprintf("39%03d%06d2", i, k)}}
				for _, it := range items {
					ils.AddItems(sip2test.Item{Barcode: it.Barcode})
				}
				var cr hub.Created
				if !call(k, func(c *hubclient.Client) (err error) {
					cr, err = c.CreateOrder(hub.NewOrder{Locker: l.ID, Patron: patron, Items: items})
					return err
				}) {
					sleep(ctx, time.Second)
					continue
				}
				loans.lend(ctx, l, cr, items)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for k := 0; ctx.Err() == nil; k++ {
			id := ids[nLoan+rand.IntN(len(ids)-nLoan)]
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

	began := time.Now()
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
		t.Logf("kill %d: PostgreSQL (immediate stop)", k+1)
		if err := pg.Crash(); err != nil {
			t.Fatal(err)
		}
		sleep(context.Background(), 2*time.Second)
		if err := pg.Restart(); err != nil {
			t.Fatal(err)
		}
		sleep(context.Background(), 2*time.Second)
	}
	stop()
	wg.Wait()
	worked := time.Since(began)

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
		if open := circOpen(t, replicas, token); open != 0 {
			lagging = append(lagging, fmt.Sprintf("%d circulation transactions not done (-1: no replica answered)", open))
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
	hooked := map[string]bool{}    // event ids a webhook is due for
	returned := map[string]int{}   // barcode -> item.returned events
	pickups := map[string]string{} // order -> pickup.completed event
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
			switch locker.EventType(e.Type) {
			case locker.EvOrderLoaded, locker.EvPickupCompleted, locker.EvItemReturned:
				hooked[e.ID] = true
			}
			switch locker.EventType(e.Type) {
			case locker.EvItemReturned:
				var d locker.ItemReturned
				json.Unmarshal(e.Data, &d)
				returned[d.Barcode]++
			case locker.EvPickupCompleted:
				var d locker.PickupCompleted
				json.Unmarshal(e.Data, &d)
				pickups[d.OrderID] = e.ID
			}
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

	// Loans: every order picked up was lent once, each of its items; and
	// every loan the workload saw opened was picked up at the hub.
	lent := loans.picked()
	for _, pk := range lent {
		if _, ok := pickups[pk.order]; !ok {
			t.Fatalf("order %s opened for its reader, but no pickup.completed stored", pk.order)
		}
		for _, it := range pk.items {
			if n := ils.Checkouts(patron, it.Barcode); n != 1 {
				t.Fatalf("order %s: item %s checked out %d times at the ILS", pk.order, it.Barcode, n)
			}
		}
	}
	// Returns: each at least once at the ILS; a second checkin only when
	// its sender died (a replica or PostgreSQL) with it on the wire, one
	// at a time (one replica works the queue, in order).
	var checkins, again int
	for barcode, n := range returned {
		if n != 1 {
			t.Fatalf("%s returned %d times", barcode, n)
		}
		c := ils.Checkins(barcode)
		if c == 0 {
			t.Fatalf("the return of %s never reached the ILS", barcode)
		}
		checkins += c
		again += c - 1
	}
	if again > 2*kills {
		t.Fatalf("%d checkins sent twice, more than the %d deaths of what sends them", again, 2*kills)
	}
	// Webhooks: each event's delivery received; no id made up; each
	// POSTed again only when its sender died before it could record it.
	received, reposted := hooks.counts()
	for id := range hooked {
		if received[id] == 0 {
			t.Fatalf("webhook for event %s never received", id)
		}
	}
	if len(received) != len(hooked) {
		t.Fatalf("webhooks received for %d event ids, %d events call for one", len(received), len(hooked))
	}
	if reposted > 2*kills {
		t.Fatalf("%d webhooks POSTed twice, more than the %d deaths of what sends them", reposted, 2*kills)
	}
	t.Logf("chaos: %d loans (%d items) lent once each at the ILS; %d returns, %d checkins (%d sent again); %d webhooks received once each by id (%d POSTed again)",
		len(lent), 2*len(lent), len(returned), checkins, again, len(received), reposted)
	t.Logf("chaos: %.0f events/s stored over the %v of the workload", float64(events)/worked.Seconds(), worked.Round(time.Second))
	t.Logf("chaos: %d lockers, %d NATS node kills, %d replica kills (SIGKILL); %d returns, %d orders created (%d cancelled), %d remote opens sent; %d API calls failed on both replicas",
		nLockers, kills, kills, returns.Load(), created.Load(), cancelled.Load(), opens.Load(), apiErrors.Load())
	t.Logf("chaos: %d events stored once each with contiguous seq, every outbox empty; %d orders, %d order changes (revs) each applied once; %d remote opens acted, none twice",
		events, orders, changes, cmdsActed)
}

// loanLog is the loans the chaos workload made: orders loaded by staff
// and opened for their reader.
type loanLog struct {
	mu  sync.Mutex
	out []loan
}

type loan struct {
	order string
	items []protocol.Item
}

// lend loads order cr at l once it reached the locker (as staff: badge,
// the order's id, the door closes by itself) and picks it up with its
// code, as its reader; it gives up when ctx ends.
func (g *loanLog) lend(ctx context.Context, l *fleetsim.Locker, cr hub.Created, items []protocol.Item) {
	state := func() locker.OrderState {
		os, _ := l.L.Orders()
		for _, o := range os {
			if o.ID == cr.Order.ID {
				return o.State
			}
		}
		return ""
	}
	until := func(want locker.OrderState) bool {
		for ctx.Err() == nil {
			if state() == want {
				return true
			}
			sleep(ctx, 50*time.Millisecond)
		}
		return false
	}
	if !until(locker.OrderAssigned) {
		return
	}
	if res, _ := l.L.Scan(ctx, "front", fleetsim.StaffBadge); res.Outcome != locker.OutcomeStaffOn {
		return
	}
	res, _ := l.L.Scan(ctx, "front", cr.Order.ID)
	l.L.Scan(ctx, "front", fleetsim.StaffBadge) // signed off
	if res.Outcome != locker.OutcomeLoading || !until(locker.OrderReady) {
		return
	}
	for ctx.Err() == nil {
		res, _ := l.L.Scan(ctx, "front", cr.Code)
		if res.Outcome == locker.OutcomeOpened {
			g.mu.Lock()
			g.out = append(g.out, loan{cr.Order.ID, items})
			g.mu.Unlock()
			until(locker.OrderPickedUp)
			return
		}
		sleep(ctx, 100*time.Millisecond) // the door not yet closed after loading
	}
}

func (g *loanLog) picked() []loan {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.out)
}

// hookReceiver is a library system's webhook endpoint: it checks each
// delivery's signature and counts them by event id.
type hookReceiver struct {
	url, secret string
	mu          sync.Mutex
	posts       map[string]int
}

func startHookReceiver(t *testing.T, secret string) *hookReceiver {
	h := &hookReceiver{secret: secret, posts: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err := webhook.Verify(secret, r.Header.Get(webhook.HeaderSignature), body, time.Now(), 5*time.Minute); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		h.mu.Lock()
		h.posts[r.Header.Get(webhook.HeaderEventID)]++
		h.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	h.url = srv.URL + "/hook"
	return h
}

// counts are the deliveries received by id, and how many came again.
func (h *hookReceiver) counts() (byID map[string]int, again int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	byID = maps.Clone(h.posts)
	for _, n := range byID {
		again += n - 1
	}
	return byID, again
}

// circOpen is how many circulation transactions are still queued or
// sending, as either replica's API says (-1 when neither answers); a
// refused one or an exception fails the test (every item and the patron
// are known to the ILS).
func circOpen(t *testing.T, replicas []*hubproc.Hub, token string) int {
	for _, r := range replicas {
		c := hubclient.New(r.Addr)
		c.Token = token
		n, answered := 0, true
		for _, state := range []string{circulation.CircQueued, circulation.CircSending, circulation.CircRefused, circulation.CircException} {
			recs, err := c.Circulation(circulation.CircFilter{State: state})
			if err != nil {
				answered = false
				break
			}
			if len(recs) > 0 && (state == circulation.CircRefused || state == circulation.CircException) {
				t.Fatalf("a circulation transaction %s: %+v", state, recs[0])
			}
			n += len(recs)
		}
		if answered {
			return n
		}
	}
	return -1
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
