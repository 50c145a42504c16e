package hubtest

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockerd/lockerd/locker/lockertest"
	"github.com/lockerd/lockerd/sync/hub"
	"github.com/lockerd/lockerd/sync/hub/alarm"
	"github.com/lockerd/lockerd/sync/hub/alarm/alarmtest"
	"github.com/lockerd/lockerd/sync/hub/auth"
	"github.com/lockerd/lockerd/sync/hub/auth/authtest"
	"github.com/lockerd/lockerd/sync/hub/circulation"
	"github.com/lockerd/lockerd/sync/hub/circulation/circtest"
	"github.com/lockerd/lockerd/sync/hub/fleet"
	"github.com/lockerd/lockerd/sync/hub/fleet/fleettest"
	"github.com/lockerd/lockerd/sync/hub/notice"
	"github.com/lockerd/lockerd/sync/hub/notice/noticetest"
	"github.com/lockerd/lockerd/sync/hub/stock"
	"github.com/lockerd/lockerd/sync/hub/stock/stocktest"
	"github.com/lockerd/lockerd/sync/hub/webhook"
	"github.com/lockerd/lockerd/sync/hub/webhook/webhooktest"
	"github.com/lockerd/lockerd/sync/protocol"
	"github.com/lockerd/lockerd/sync/sip2"
)

// Opener makes a fresh, empty store for one case and returns how to open
// it: each call is one more handle on the same data, as another replica
// of the hub would have (an engine that allows one handle returns the
// same one, not closed by the hubs that use it).
type Opener func(t *testing.T) (open func() hub.Store)

// TestStore is the conformance suite of the hub's stores: every Store
// passes the same cases with the same expectations, first at the level of
// its records, then with hubs on it — two at once, as two replicas.
func TestStore(t *testing.T, fresh Opener) {
	cases := []struct {
		name string
		run  func(t *testing.T, open func() hub.Store)
	}{
		{"records", func(t *testing.T, open func() hub.Store) { records(t, open()) }},
		{"events are kept once by key and by id", eventsOnce},
		{"leases", leases},
		{"lockers' status", lockerStatus},
		{"contiguous ack", contiguousAck},
		{"replicas ingest the same events", replicasIngest},
		{"order revs from two replicas", replicaRevs},
		{"replicas share the lockers", replicasShare},
		{"commands", commands},
		{"circulation queue", circulationQueue},
		{"alarms: one per condition", alarmsOnce},
		// Each capability's own suite, on this engine.
		{"alarms (alarmtest)", func(t *testing.T, open func() hub.Store) {
			alarmtest.TestStore(t, hub.Capability(open(), func(tx hub.Tx) alarm.Tx { return tx.Alarms }))
		}},
		{"auth (authtest)", func(t *testing.T, open func() hub.Store) {
			authtest.TestStore(t, hub.Capability(open(), func(tx hub.Tx) auth.Tx { return tx.Auth }))
		}},
		{"circulation queue (circtest)", func(t *testing.T, open func() hub.Store) {
			circtest.TestStore(t, hub.Capability(open(), func(tx hub.Tx) circulation.CircTx { return tx.Circ }))
		}},
		{"fleet documents (fleettest)", func(t *testing.T, open func() hub.Store) {
			fleettest.TestStore(t, hub.Capability(open(), func(tx hub.Tx) fleet.Docs { return tx.Docs }))
		}},
		{"stock (stocktest)", func(t *testing.T, open func() hub.Store) {
			stocktest.TestStore(t, hub.Capability(open(), func(tx hub.Tx) stock.Tx { return tx.Stock }))
		}},
		{"notices (noticetest)", func(t *testing.T, open func() hub.Store) {
			noticetest.TestStore(t, hub.Capability(open(), func(tx hub.Tx) notice.Tx { return tx.Notices }))
		}},
		{"webhooks (webhooktest)", func(t *testing.T, open func() hub.Store) {
			webhooktest.TestStore(t, hub.Capability(open(), func(tx hub.Tx) webhook.Tx { return tx.Webhooks }))
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(t, fresh(t)) })
	}
}

// newHub is a hub on the store with no broker (it is driven through
// HandleUplink), serving locker L1.
func newHub(t *testing.T, st hub.Store, name string) *hub.Hub {
	t.Helper()
	h, err := hub.New(hub.Config{Store: st, SigningKey: signer, PickupKey: lockertest.Key, Lockers: []string{"L1"},
		ClientID: name, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// newCircHub is newHub with a circulation bridge whose ILS is never
// reached (its session is not run): transactions are queued, not sent.
func newCircHub(t *testing.T, st hub.Store, name string) *hub.Hub {
	t.Helper()
	h, err := hub.New(hub.Config{Store: st, SigningKey: signer, PickupKey: lockertest.Key, Lockers: []string{"L1"},
		ClientID: name, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Circulation: circulation.Circulation{ILS: sip2.NewSession(sip2.Config{Address: "127.0.0.1:1"})}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// signer signs the suite's hubs' messages.
var signer = ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))

var l1 = protocol.Topics{Prefix: protocol.DefaultPrefix, Locker: "L1"}

func status(online bool, boot uint64, store, inst string, rev, head, tail uint64) []byte {
	raw, _ := json.Marshal(protocol.Status{V: 1, Type: protocol.TypeStatus, Online: online, Boot: boot, Store: store,
		Instance: inst, OrdersRev: rev, OutboxHead: head, OutboxTail: tail, TS: time.Now().UTC()})
	return raw
}

var t0 = time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)

func event(store string, seq uint64, typ string) []byte {
	raw, _ := json.Marshal(protocol.Event{V: 1, ID: protocol.EventID("L1", store, seq), Type: typ, Locker: "L1",
		Store: store, Boot: 1, Seq: seq, TS: t0.Add(time.Duration(seq) * time.Second), Data: json.RawMessage(`{}`)})
	return raw
}

func locker(t *testing.T, h *hub.Hub) hub.LockerInfo {
	t.Helper()
	li, err := h.Locker("L1")
	if err != nil {
		t.Fatal(err)
	}
	return li
}

func eventIDs(t *testing.T, h *hub.Hub) []string {
	t.Helper()
	evs, err := h.Events("L1", hub.Cursor{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range evs {
		ids = append(ids, e.ID)
	}
	return ids
}

func eventsOnce(t *testing.T, open func() hub.Store) {
	s := open()
	for range 2 {
		if err := s.Update(func(tx hub.Tx) error {
			return tx.Events.PutEvent("L1", 1, protocol.Event{ID: "L1-s-1", Seq: 1, Locker: "L1", Type: "door.closed"})
		}); err != nil {
			t.Fatal(err)
		}
	}
	s.View(func(tx hub.Tx) error {
		evs, err := tx.Events.Events("L1", hub.Cursor{}, 0)
		if err != nil || len(evs) != 1 {
			t.Fatalf("one event written twice under one key: %d rows (%v)", len(evs), err)
		}
		return nil
	})
}

func leases(t *testing.T, open func() hub.Store) {
	s := open()
	claim := func(name, holder string, ttl time.Duration) bool {
		t.Helper()
		var held bool
		if err := s.Update(func(tx hub.Tx) error {
			var err error
			held, err = tx.Leases.Claim(name, holder, ttl)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return held
	}
	for _, step := range []struct {
		name, holder string
		ttl          time.Duration
		want         bool
	}{
		{"leader", "a", time.Minute, true},
		{"leader", "b", time.Minute, false}, // held by a
		{"leader", "a", time.Minute, true},  // renewed
		{"other", "b", time.Minute, true},   // leases are by name
	} {
		if got := claim(step.name, step.holder, step.ttl); got != step.want {
			t.Fatalf("claim %s by %s: %v, want %v", step.name, step.holder, got, step.want)
		}
	}
	held := func(prefix string) []hub.Lease {
		t.Helper()
		var out []hub.Lease
		if err := s.View(func(tx hub.Tx) error {
			var err error
			out, err = tx.Leases.Held(prefix)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	claim("member/b", "b", time.Minute)
	claim("member/a", "a", time.Minute)
	claim("member/c", "c", time.Millisecond)
	time.Sleep(5 * time.Millisecond)
	if got := held("member/"); !slices.Equal(got, []hub.Lease{{Name: "member/a", Holder: "a"}, {Name: "member/b", Holder: "b"}}) {
		t.Fatalf("held member/: %+v, want a's and b's by name (c's expired, leader and other apart)", got)
	}
	if got := held("nothing/"); len(got) != 0 {
		t.Fatalf("held nothing/: %+v", got)
	}
	if err := s.Update(func(tx hub.Tx) error { return tx.Leases.Release("leader", "b") }); err != nil {
		t.Fatal(err)
	}
	if claim("leader", "b", time.Minute) {
		t.Fatal("b released a lease a holds, and took it")
	}
	if err := s.Update(func(tx hub.Tx) error { return tx.Leases.Release("leader", "a") }); err != nil {
		t.Fatal(err)
	}
	if !claim("leader", "b", time.Millisecond) {
		t.Fatal("a released the lease and b could not take it")
	}
	// b's lease runs out on the store's clock: a replica that died leaves
	// its work to another within the lease's time.
	deadline := time.Now().Add(10 * time.Second)
	for !claim("leader", "a", time.Minute) {
		if time.Now().After(deadline) {
			t.Fatal("an expired lease was never taken over")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func lockerStatus(t *testing.T, open func() hub.Store) {
	h := newHub(t, open(), "a")
	for _, step := range []struct {
		name    string
		payload []byte
		online  bool
		boot    uint64
	}{
		{"birth", status(true, 2, "s1", "i1", 0, 0, 1), true, 2},
		{"an old will (an earlier boot) changes nothing", status(false, 1, "s1", "i0", 0, 0, 1), true, 2},
		{"its own will", status(false, 2, "s1", "i1", 0, 0, 1), false, 2},
		{"back", status(true, 3, "s1", "i2", 0, 0, 1), true, 3},
	} {
		h.HandleUplink(l1.Status(), step.payload)
		if li := locker(t, h); li.Online != step.online || li.Boot != step.boot || li.Store != "s1" {
			t.Fatalf("%s: online %v boot %d store %q", step.name, li.Online, li.Boot, li.Store)
		}
	}
	ls, err := h.Lockers()
	if err != nil || len(ls) != 1 || ls[0].ID != "L1" {
		t.Fatalf("lockers: %+v %v", ls, err)
	}
	// A locker the hub does not serve is not recorded.
	h.HandleUplink(protocol.Topics{Prefix: protocol.DefaultPrefix, Locker: "ZZ"}.Status(), status(true, 1, "s9", "i9", 0, 0, 1))
	if ls, _ := h.Lockers(); len(ls) != 1 {
		t.Fatalf("a stranger's birth recorded: %+v", ls)
	}
}

func contiguousAck(t *testing.T, open func() hub.Store) {
	h := newHub(t, open(), "a")
	h.HandleUplink(l1.Status(), status(true, 1, "s1", "i1", 0, 0, 1))
	for _, step := range []struct {
		seq   uint64
		acked uint64
		n     int
	}{
		{1, 1, 1}, {2, 2, 2}, {4, 2, 3}, // a gap: the mark stays
		{2, 2, 3}, // redelivered: stored once
		{3, 4, 4}, // the gap filled: the mark moves over 3 and 4
	} {
		h.HandleUplink(l1.UpEvt(), event("s1", step.seq, "door.closed"))
		li := locker(t, h)
		if ids := eventIDs(t, h); li.Acked != step.acked || len(ids) != step.n || li.Events != uint64(step.n) {
			t.Fatalf("after seq %d: acked %d events %v (counted %d), want acked %d and %d events", step.seq, li.Acked, ids, li.Events, step.acked, step.n)
		}
	}
	// Another event under an id already stored is a second cabinet.
	h.HandleUplink(l1.UpEvt(), event("s1", 2, "door.forced"))
	alarms, _ := h.Alarms(0)
	if len(alarms) != 1 || alarms[0].Type != alarm.Cloned {
		t.Fatalf("alarms %+v, want one %s", alarms, alarm.Cloned)
	}
	// A new store (an SD card replaced) counts from 1 under a new epoch.
	h.HandleUplink(l1.Status(), status(true, 2, "s2", "i2", 0, 0, 1))
	h.HandleUplink(l1.UpEvt(), event("s2", 1, "door.closed"))
	if li := locker(t, h); li.Store != "s2" || li.Acked != 1 || li.Epochs != 2 {
		t.Fatalf("after a new store: %+v", li)
	}
	if ids := eventIDs(t, h); len(ids) != 5 || ids[4] != protocol.EventID("L1", "s2", 1) {
		t.Fatalf("events %v", ids)
	}
}

// Replicas share the lockers by partition: a hub that has not taken its
// share takes every message; the first takes all, a second takes its
// share once the first gives it up, every locker is exactly one's, and
// the share of a replica whose leases run out (it died) goes to the other.
func replicasShare(t *testing.T, open func() hub.Store) {
	mk := func(name string, ttl time.Duration) *hub.Hub {
		h, err := hub.New(hub.Config{Store: open(), SigningKey: signer, PickupKey: lockertest.Key, ClientID: name, LeaseTTL: ttl,
			Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		return h
	}
	a, b := mk("a", time.Minute), mk("b", 300*time.Millisecond)
	ids := make([]string, 200)
	for i := range ids {
		ids[i] = fmt.Sprintf("nb-%03d", i)
	}
	count := func(h *hub.Hub) (n int) {
		for _, id := range ids {
			if h.Owns(id) {
				n++
			}
		}
		return n
	}
	if count(a) != len(ids) || count(b) != len(ids) {
		t.Fatal("a hub that has not taken its share does not take every message")
	}
	a.Rebalance()
	b.Rebalance() // b's share is still a's
	if count(a) != len(ids) || count(b) != 0 {
		t.Fatalf("a owns %d, b %d: want all and none until a gives b's share up", count(a), count(b))
	}
	a.Rebalance()
	b.Rebalance()
	na, nb := count(a), count(b)
	for _, id := range ids {
		if a.Owns(id) == b.Owns(id) {
			t.Fatalf("locker %s: owned by a %v, by b %v: want exactly one", id, a.Owns(id), b.Owns(id))
		}
	}
	if na < len(ids)/5 || nb < len(ids)/5 {
		t.Fatalf("a owns %d of %d lockers, b %d: far from a share each", na, len(ids), nb)
	}
	// b stops renewing (it died): a, renewing, takes b's share once b's
	// leases (300 ms) run out.
	deadline := time.Now().Add(10 * time.Second)
	for a.Rebalance(); count(a) != len(ids); a.Rebalance() {
		if time.Now().After(deadline) {
			t.Fatalf("b's leases ran out, a owns %d of %d", count(a), len(ids))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Two replicas receive every event (each is subscribed to all), in their
// own order and at once: each event is stored once, the counts agree, and
// the mark is contiguous.
func replicasIngest(t *testing.T, open func() hub.Store) {
	a, b := newHub(t, open(), "a"), newHub(t, open(), "b")
	a.HandleUplink(l1.Status(), status(true, 1, "s1", "i1", 0, 0, 1))
	const n = 120
	var wg sync.WaitGroup
	for _, h := range []*hub.Hub{a, b} {
		seqs := mrand.Perm(n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, s := range seqs {
				h.HandleUplink(l1.UpEvt(), event("s1", uint64(s+1), "door.closed"))
			}
		}()
	}
	wg.Wait()
	li := locker(t, a)
	ids := eventIDs(t, b)
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Fatalf("event %s stored twice", id)
		}
		seen[id] = true
	}
	if len(ids) != n || li.Acked != n || li.Events != n {
		t.Fatalf("%d events stored (counted %d), acked %d; want %d of each", len(ids), li.Events, li.Acked, n)
	}
}

// Two replicas creating orders for one locker at once never issue one rev
// twice: revs are strictly increasing, with a pending change each, until
// the locker acknowledges them.
func replicaRevs(t *testing.T, open func() hub.Store) {
	a, b := newHub(t, open(), "a"), newHub(t, open(), "b")
	const each = 15
	var wg sync.WaitGroup
	errs := make(chan error, 2*each)
	for _, h := range []*hub.Hub{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				if _, err := h.CreateOrder(hub.NewOrder{Locker: "L1"}); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	orders, err := a.Orders("L1")
	if err != nil {
		t.Fatal(err)
	}
	var revs []uint64
	for _, o := range orders {
		revs = append(revs, o.Rev)
	}
	sort.Slice(revs, func(i, j int) bool { return revs[i] < revs[j] })
	for i, r := range revs {
		if r != uint64(i+1) {
			t.Fatalf("revs %v: want 1..%d, each once", revs, 2*each)
		}
	}
	if len(revs) != 2*each {
		t.Fatalf("%d orders, want %d", len(revs), 2*each)
	}
	// The locker reports rev 10: the changes up to it are dropped, those
	// after it are kept (to send again), in rev order.
	var rest []hub.PendingMsg
	if err := open().Update(func(tx hub.Tx) error {
		var err error
		rest, err = tx.Orders.PrunePending("L1", 10)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(rest) != 2*each-10 {
		t.Fatalf("%d changes pending after rev 10, want %d", len(rest), 2*each-10)
	}
	var m protocol.Message
	body, err := protocol.Open(rest[0].Payload, signer.Public().(ed25519.PublicKey))
	if err != nil || json.Unmarshal(body, &m) != nil || m.Type != protocol.TypeOrdersUpsert {
		t.Fatalf("first pending change after rev 10: %s (%v)", rest[0].Payload, err)
	}
	var up protocol.OrdersUpsert
	if json.Unmarshal(m.Data, &up) != nil || len(up.Orders) != 1 || up.Orders[0].Rev != 11 {
		t.Fatalf("first pending change after rev 10: %+v", up)
	}
}

func commands(t *testing.T, open func() hub.Store) {
	h := newHub(t, open(), "a")
	id, err := h.Open("L1", "A01", "conformance")
	if err != nil {
		t.Fatal(err)
	}
	if rec, err := h.Command(id); err != nil || rec.Type != protocol.TypeCmdOpen || rec.Locker != "L1" {
		t.Fatalf("command %+v %v", rec, err)
	}
	raw, _ := protocol.Encode(protocol.TypeAckCmd, "r-1", "L1", id, time.Now(), protocol.AckCmd{Status: "done"})
	h.HandleUplink(l1.UpAck(), raw)
	if rec, _ := h.Command(id); rec.Status != "done" {
		t.Fatalf("command after its ack: %+v", rec)
	}
	if _, err := h.Command("nope"); err == nil || !strings.Contains(err.Error(), "no command") {
		t.Fatalf("an unknown command: %v", err)
	}
}

// records: each record type written, read back and listed.
func records(t *testing.T, s hub.Store) {
	t.Helper()
	update := func(what string, fn func(hub.Tx) error) {
		t.Helper()
		if err := s.Update(fn); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	now := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	update("lockers", func(tx hub.Tx) error {
		li, err := tx.Lockers.Locker("L1")
		if err != nil || li.ID != "L1" || li.Online {
			return fmt.Errorf("a locker not heard from: %+v %v", li, err)
		}
		li.Online, li.Boot = true, 3
		if err := tx.Lockers.PutLocker(li); err != nil {
			return err
		}
		all, err := tx.Lockers.Lockers()
		if err != nil || len(all) != 1 || all[0].Boot != 3 {
			return fmt.Errorf("lockers %+v %v", all, err)
		}
		if ok, _ := tx.Lockers.Known("L1"); ok {
			return fmt.Errorf("L1 known before it was added")
		}
		if err := tx.Lockers.PutKnown(hub.KnownLocker{ID: "L1", Added: now, Source: "test"}); err != nil {
			return err
		}
		known, err := tx.Lockers.KnownLockers()
		if ok, _ := tx.Lockers.Known("L1"); !ok || err != nil || len(known) != 1 || known[0].Source != "test" {
			return fmt.Errorf("known %+v %v", known, err)
		}
		return nil
	})
	update("stores and events", func(tx hub.Tx) error {
		if _, found, err := tx.Lockers.StoreRec("L1", "s1"); found || err != nil {
			return fmt.Errorf("a store not met: %v %v", found, err)
		}
		for _, rec := range []hub.StoreRec{{Store: "s1", Epoch: 1, Acked: 2}, {Store: "s2", Epoch: 2}} {
			if err := tx.Lockers.PutStoreRec("L1", rec); err != nil {
				return err
			}
		}
		if rec, found, err := tx.Lockers.StoreRec("L1", "s1"); !found || err != nil || rec.Acked != 2 {
			return fmt.Errorf("store s1: %+v %v %v", rec, found, err)
		}
		if recs, err := tx.Lockers.StoreRecs("L1"); err != nil || len(recs) != 2 || recs[0].Store != "s1" || recs[1].Epoch != 2 {
			return fmt.Errorf("stores of L1 by epoch: %+v %v", recs, err)
		}
		// Epoch 2 written first: events come back by epoch, then seq.
		for _, ev := range []struct {
			epoch uint32
			seq   uint64
		}{{2, 1}, {1, 2}, {1, 1}, {2, 2}, {1, 10}} {
			e := protocol.Event{ID: fmt.Sprintf("L1-%d-%d", ev.epoch, ev.seq), Seq: ev.seq, Type: "door.closed", Locker: "L1"}
			if err := tx.Events.PutEvent("L1", ev.epoch, e); err != nil {
				return err
			}
		}
		if err := tx.Events.PutEvent("L2", 1, protocol.Event{Seq: 1, Locker: "L2"}); err != nil {
			return err
		}
		if ok, _ := tx.Events.HasEvent("L1", 1, 2); !ok {
			return fmt.Errorf("event 1/2 not there")
		}
		if ok, _ := tx.Events.HasEvent("L1", 1, 3); ok {
			return fmt.Errorf("event 1/3 there")
		}
		if e, found, _ := tx.Events.Event("L1", 2, 2); !found || e.ID != "L1-2-2" {
			return fmt.Errorf("event 2/2: %+v", e)
		}
		for _, tc := range []struct {
			after hub.Cursor
			limit int
			want  []string
		}{
			{hub.Cursor{}, 0, []string{"L1-1-1", "L1-1-2", "L1-1-10", "L1-2-1", "L1-2-2"}},
			{hub.Cursor{Epoch: 1, Seq: 2}, 2, []string{"L1-1-10", "L1-2-1"}},
			{hub.Cursor{Epoch: 1, Seq: math.MaxUint64}, 0, []string{"L1-2-1", "L1-2-2"}},
		} {
			evs, err := tx.Events.Events("L1", tc.after, tc.limit)
			var got []string
			for _, e := range evs {
				got = append(got, e.ID)
			}
			if err != nil || fmt.Sprint(got) != fmt.Sprint(tc.want) {
				return fmt.Errorf("events after %+v: %v, want %v (%v)", tc.after, got, tc.want, err)
			}
		}
		// The same, many at once: only what is there comes back.
		at, err := tx.Events.EventsAt([]hub.EventKey{{Locker: "L1", Epoch: 1, Seq: 2}, {Locker: "L1", Epoch: 1, Seq: 3}, {Locker: "L1", Epoch: 2, Seq: 1}, {Locker: "L2", Epoch: 1, Seq: 1}, {Locker: "L2", Epoch: 2, Seq: 1}, {Locker: "L1", Epoch: 1, Seq: math.MaxUint64}})
		if err != nil || len(at) != 3 || at[hub.EventKey{Locker: "L1", Epoch: 1, Seq: 2}].ID != "L1-1-2" || at[hub.EventKey{Locker: "L1", Epoch: 2, Seq: 1}].ID != "L1-2-1" || at[hub.EventKey{Locker: "L2", Epoch: 1, Seq: 1}].Locker != "L2" {
			return fmt.Errorf("events at keys: %+v %v", at, err)
		}
		if at, err := tx.Events.EventsAt(nil); err != nil || len(at) != 0 {
			return fmt.Errorf("events at no keys: %+v %v", at, err)
		}
		known, err := tx.Lockers.KnownAmong([]string{"L1", "L9"})
		if err != nil || !known["L1"] || known["L9"] || len(known) != 1 {
			return fmt.Errorf("known among L1, L9: %v %v", known, err)
		}
		lis, err := tx.Lockers.LockersOf([]string{"L1", "L9"})
		if err != nil || len(lis) != 2 || lis["L1"].Boot != 3 || lis["L9"].ID != "L9" || lis["L9"].Online {
			return fmt.Errorf("lockers of L1, L9: %+v %v", lis, err)
		}
		recs, err := tx.Lockers.StoreRecsOf([]hub.StoreKey{{Locker: "L1", Store: "s1"}, {Locker: "L1", Store: "s9"}, {Locker: "L9", Store: "s1"}, {Locker: "L1", Store: "s2"}})
		if err != nil || len(recs) != 2 || recs[hub.StoreKey{Locker: "L1", Store: "s1"}].Acked != 2 || recs[hub.StoreKey{Locker: "L1", Store: "s2"}].Epoch != 2 {
			return fmt.Errorf("store records of keys: %+v %v", recs, err)
		}
		return nil
	})
	update("orders, revs, pending", func(tx hub.Tx) error {
		for i, want := range []uint64{1, 2, 3} {
			if rev, err := tx.Orders.NextRev("L1"); err != nil || rev != want {
				return fmt.Errorf("rev %d: %d %v", i, rev, err)
			}
		}
		if rev, _ := tx.Orders.NextRev("L2"); rev != 1 {
			return fmt.Errorf("L2's first rev %d: revs are per locker", rev)
		}
		if rev, err := tx.Orders.LastRev("L1"); rev != 3 || err != nil {
			return fmt.Errorf("L1's last rev %d %v", rev, err)
		}
		if rev, _ := tx.Orders.LastRev("L9"); rev != 0 {
			return fmt.Errorf("a locker never given a rev has %d", rev)
		}
		if err := tx.Orders.SetLastRev("L9", 41); err != nil {
			return err
		}
		if rev, _ := tx.Orders.NextRev("L9"); rev != 42 {
			return fmt.Errorf("after SetLastRev 41, NextRev %d", rev)
		}
		for _, o := range []hub.OrderRec{{Order: protocol.Order{ID: "B", Rev: 3}, Locker: "L1"}, {Order: protocol.Order{ID: "A", Rev: 2}, Locker: "L1"}, {Order: protocol.Order{ID: "C", Rev: 1}, Locker: "L2"}} {
			if err := tx.Orders.PutOrder(o); err != nil {
				return err
			}
		}
		orders, err := tx.Orders.Orders("L1")
		if err != nil || len(orders) != 2 || orders[0].ID != "A" || orders[1].ID != "B" {
			return fmt.Errorf("orders by rev: %+v %v", orders, err)
		}
		if o, found, _ := tx.Orders.Order("L1", "B"); !found || o.Rev != 3 {
			return fmt.Errorf("order B: %+v", o)
		}
		if _, found, _ := tx.Orders.Order("L1", "C"); found {
			return fmt.Errorf("L2's order found under L1")
		}
		for rev := uint64(1); rev <= 3; rev++ {
			for part := 1; part <= 2; part++ {
				if err := tx.Orders.PutPending("L1", rev, part, hub.PendingMsg{Topic: fmt.Sprintf("r%d-p%d", rev, part)}); err != nil {
					return err
				}
			}
		}
		rest, err := tx.Orders.PrunePending("L1", 2)
		if err != nil || len(rest) != 2 || rest[0].Topic != "r3-p1" || rest[1].Topic != "r3-p2" || rest[1].Rev != 3 || rest[1].Part != 2 {
			return fmt.Errorf("pending after rev 2: %+v %v", rest, err)
		}
		if rest, _ := tx.Orders.PrunePending("L1", 0); len(rest) != 2 {
			return fmt.Errorf("pruned twice: %+v", rest)
		}
		if err := tx.Orders.PutPending("L1", 4, 0, hub.PendingMsg{ID: "m4", Topic: "r4"}); err != nil {
			return err
		}
		if found, err := tx.Orders.DropPending("L1", "m4"); !found || err != nil {
			return fmt.Errorf("drop m4: %v %v", found, err)
		}
		if found, _ := tx.Orders.DropPending("L1", "m4"); found {
			return fmt.Errorf("m4 dropped twice")
		}
		if found, _ := tx.Orders.DropPending("L1", ""); found {
			return fmt.Errorf("a change without an id dropped")
		}
		if rest, _ := tx.Orders.PrunePending("L1", 0); len(rest) != 2 {
			return fmt.Errorf("after dropping m4: %+v", rest)
		}
		return nil
	})
	update("commands and alarms", func(tx hub.Tx) error {
		if _, found, _ := tx.Commands.Command("c1"); found {
			return fmt.Errorf("a command never sent found")
		}
		if err := tx.Commands.PutCommand(hub.CmdRec{ID: "c1", Locker: "L1", Type: "cmd.ping", Sent: now}); err != nil {
			return err
		}
		if rec, found, _ := tx.Commands.Command("c1"); !found || rec.Type != "cmd.ping" {
			return fmt.Errorf("command %+v", rec)
		}
		if err := tx.Commands.PutCommand(hub.CmdRec{ID: "c0", Locker: "L1", Type: "cmd.open", Sent: now}); err != nil {
			return err
		}
		if cmds, err := tx.Commands.Commands(); err != nil || len(cmds) != 2 || cmds[0].ID != "c0" || cmds[1].ID != "c1" {
			return fmt.Errorf("commands by id: %+v %v", cmds, err)
		}
		for i := range 3 {
			a, err := tx.Alarms.AddAlarm(alarm.Alarm{Locker: "L1", Type: "test", Detail: fmt.Sprint(i)})
			if err != nil || a.Seq != uint64(i+1) {
				return fmt.Errorf("alarm %d numbered %d (%v)", i, a.Seq, err)
			}
		}
		alarms, err := tx.Alarms.Alarms(1)
		if err != nil || len(alarms) != 2 || alarms[0].Detail != "1" {
			return fmt.Errorf("alarms after 1: %+v %v", alarms, err)
		}
		return nil
	})
	// A failed transaction leaves nothing behind.
	if err := s.Update(func(tx hub.Tx) error {
		if err := tx.Orders.PutOrder(hub.OrderRec{Order: protocol.Order{ID: "ROLLED", Rev: 9}, Locker: "L1"}); err != nil {
			return err
		}
		return fmt.Errorf("abort")
	}); err == nil {
		t.Fatal("an aborted transaction reported no error")
	}
	s.View(func(tx hub.Tx) error {
		// Reading every pending change (up to rev 0, nothing to drop) is
		// allowed in a read-only transaction.
		if rest, err := tx.Orders.PrunePending("L1", 0); err != nil || len(rest) != 2 {
			t.Fatalf("pending, read only: %d %v", len(rest), err)
		}
		if _, found, _ := tx.Orders.Order("L1", "ROLLED"); found {
			t.Fatal("an aborted transaction's order is there")
		}
		return nil
	})
}

func eventWith(store string, seq uint64, typ string, data any) []byte {
	raw, _ := json.Marshal(data)
	e, _ := json.Marshal(protocol.Event{V: 1, ID: protocol.EventID("L1", store, seq), Type: typ, Locker: "L1",
		Store: store, Boot: 1, Seq: seq, TS: t0.Add(time.Duration(seq) * time.Second), Data: raw})
	return e
}

// The circulation queue: a pickup and a return heard by two replicas at
// once are queued once each (one checkout per item of the order, one
// checkin), numbered from 1 in order, with the event's time; a finished
// transaction leaves the open list; the list pages by id.
func circulationQueue(t *testing.T, open func() hub.Store) {
	a, b := newCircHub(t, open(), "a"), newCircHub(t, open(), "b")
	a.HandleUplink(l1.Status(), status(true, 1, "s1", "i1", 0, 0, 1))
	cr, err := a.CreateOrder(hub.NewOrder{Locker: "L1", ID: "O1", Patron: "P1",
		Items: []protocol.Item{{Barcode: "B1", Title: "西游记"}, {Barcode: "B2"}}})
	if err != nil {
		t.Fatal(err)
	}
	if cr.Order.Patron != "P1" {
		t.Fatalf("order's patron: %q", cr.Order.Patron)
	}
	evs := [][]byte{
		eventWith("s1", 1, "pickup.completed", protocol.PickupCompleted{OrderID: "O1", Compartments: []string{"A1"}, Via: "code"}),
		eventWith("s1", 2, "item.returned", protocol.ItemReturned{Barcode: "B9", Scanner: "return"}),
	}
	var wg sync.WaitGroup
	for _, h := range []*hub.Hub{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 3 {
				for _, e := range evs {
					h.HandleUplink(l1.UpEvt(), e)
				}
			}
		}()
	}
	wg.Wait()
	cs, err := b.Circulation(circulation.CircFilter{})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ kind, patron, item string }{{"checkout", "P1", "B1"}, {"checkout", "P1", "B2"}, {"checkin", "", "B9"}}
	if len(cs) != len(want) {
		t.Fatalf("%d transactions queued, want %d: %+v", len(cs), len(want), cs)
	}
	for i, w := range want {
		c := cs[i]
		if c.ID != uint64(i+1) || c.Kind != w.kind || c.Patron != w.patron || c.Item != w.item || c.State != circulation.CircQueued || c.Locker != "L1" {
			t.Fatalf("transaction %d: %+v, want %+v", i+1, c, w)
		}
	}
	if !cs[0].EventAt.Equal(t0.Add(time.Second)) || cs[0].Order != "O1" || cs[0].Title != "西游记" || cs[0].Event != protocol.EventID("L1", "s1", 1) {
		t.Fatalf("checkout's event, order, title: %+v", cs[0])
	}
	s := open()
	if err := s.Update(func(tx hub.Tx) error {
		c, found, err := tx.Circ.Circ(2)
		if err != nil || !found {
			return fmt.Errorf("circ 2: %v %v", found, err)
		}
		c.State, c.OK, c.Due = circulation.CircDone, true, "20261219    235900"
		if err := tx.Circ.PutCirc(c); err != nil {
			return err
		}
		c3, _, _ := tx.Circ.Circ(3)
		c3.State, c3.Alert, c3.AlertType = circulation.CircException, true, "02"
		return tx.Circ.PutCirc(c3)
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.View(func(tx hub.Tx) error {
		openCs, err := tx.Circ.OpenCircs(0)
		if err != nil || len(openCs) != 2 || openCs[0].ID != 1 || openCs[1].ID != 3 {
			return fmt.Errorf("open: %+v %v", openCs, err)
		}
		if one, err := tx.Circ.OpenCircs(1); err != nil || len(one) != 1 {
			return fmt.Errorf("open, limit 1: %+v %v", one, err)
		}
		page, err := tx.Circ.Circs(1, 1)
		if err != nil || len(page) != 1 || page[0].ID != 2 || page[0].Due != "20261219    235900" {
			return fmt.Errorf("after 1, one: %+v %v", page, err)
		}
		if _, found, _ := tx.Circ.Circ(99); found {
			return fmt.Errorf("transaction 99 found")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if ex, err := a.Circulation(circulation.CircFilter{State: circulation.CircException}); err != nil || len(ex) != 1 || ex[0].AlertType != "02" {
		t.Fatalf("exceptions: %+v %v", ex, err)
	}
	if _, err := a.RetryCirc(3); err == nil {
		t.Fatal("a checkin with an alert retried: it went through")
	}
	if r, err := a.ResolveCirc(3, "put on the hold shelf"); err != nil || r.State != circulation.CircResolved {
		t.Fatalf("resolve: %+v %v", r, err)
	}
	if ex, _ := a.Circulation(circulation.CircFilter{State: circulation.CircException}); len(ex) != 0 {
		t.Fatalf("resolved, still an exception: %+v", ex)
	}
	// The patron stays at the hub: the locker's order change does not
	// carry it.
	if err := s.View(func(tx hub.Tx) error {
		pend, err := tx.Orders.PrunePending("L1", 0)
		for _, p := range pend {
			var env struct{ Body []byte }
			if err := json.Unmarshal(p.Payload, &env); err != nil || !strings.Contains(string(env.Body), `"O1"`) {
				return fmt.Errorf("pending change not read: %s %v", env.Body, err)
			}
			if strings.Contains(string(env.Body), "P1") {
				return fmt.Errorf("the patron went into the downlink: %s", env.Body)
			}
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// Alarms: the same condition again updates its unresolved alarm (two
// replicas hearing the same events included); another compartment is
// another alarm; acknowledged it is still the one updated, resolved a new
// one is raised; a recovered fault and a locker back online resolve
// their alarms themselves; a locker silent for OfflineAfter raises one.
func alarmsOnce(t *testing.T, open func() hub.Store) {
	mk := func(name string) *hub.Hub {
		h, err := hub.New(hub.Config{Store: open(), SigningKey: signer, PickupKey: lockertest.Key, Lockers: []string{"L1"},
			ClientID: name, OfflineAfter: time.Minute, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		return h
	}
	a, b := mk("a"), mk("b")
	a.HandleUplink(l1.Status(), status(true, 1, "s1", "i1", 0, 0, 1))
	seq := uint64(0)
	ev := func(typ string, data any) []byte { seq++; return eventWith("s1", seq, typ, data) }
	forced := func(c string) []byte { return ev("door.forced", protocol.DoorChange{Compartment: c}) }
	evs := [][]byte{forced("A1"), forced("A1"), forced("B2"), forced("A1"),
		ev("hardware.fault", protocol.HardwareState{Device: "lock board 1", Detail: "no answer"})}
	var wg sync.WaitGroup
	for _, h := range []*hub.Hub{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, e := range evs {
				h.HandleUplink(l1.UpEvt(), e)
			}
		}()
	}
	wg.Wait()
	openAlarms := func() []alarm.Alarm {
		as, err := a.OpenAlarms()
		if err != nil {
			t.Fatal(err)
		}
		return as
	}
	as := openAlarms()
	if len(as) != 3 || as[0].Type != alarm.DoorForced || as[0].Compartment != "A1" || as[0].Count != 3 || as[0].Severity != alarm.Critical ||
		as[1].Compartment != "B2" || as[1].Count != 1 || as[2].Type != alarm.HardwareFault || as[2].State != alarm.Open {
		t.Fatalf("open alarms: %+v", as)
	}
	if _, err := b.AckAlarm(as[0].Seq, "staff-1"); err != nil {
		t.Fatal(err)
	}
	a.HandleUplink(l1.UpEvt(), forced("A1"))
	if as := openAlarms(); as[0].State != alarm.Acknowledged || as[0].Count != 4 || as[0].AckBy != "staff-1" {
		t.Fatalf("acknowledged, then the same again: %+v", as[0])
	}
	if _, err := a.ResolveAlarm(as[0].Seq, "staff-1", "door repaired"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.ResolveAlarm(as[0].Seq, "staff-1", "again"); err == nil {
		t.Fatal("resolved twice")
	}
	a.HandleUplink(l1.UpEvt(), forced("A1"))
	a.HandleUplink(l1.UpEvt(), ev("hardware.recovered", protocol.HardwareState{Device: "lock board 1"}))
	as = openAlarms()
	if len(as) != 2 || as[0].Compartment != "B2" || as[1].Compartment != "A1" || as[1].Count != 1 || as[1].Seq <= as[0].Seq {
		t.Fatalf("after resolve and recovery: %+v", as)
	}
	all, _ := a.Alarms(0)
	if len(all) != 4 {
		t.Fatalf("%d alarms in all, want 4", len(all))
	}
	// Offline: silent for OfflineAfter, then back.
	a.HandleUplink(l1.Status(), status(false, 1, "s1", "i1", 0, 0, 1))
	a.SweepOffline(time.Now().Add(2 * time.Minute))
	a.SweepOffline(time.Now().Add(3 * time.Minute))
	n := 0
	for _, al := range openAlarms() {
		if al.Type == alarm.Offline {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d offline alarms, want 1", n)
	}
	a.HandleUplink(l1.Status(), status(true, 2, "s1", "i2", 0, 0, 1))
	for _, al := range openAlarms() {
		if al.Type == alarm.Offline {
			t.Fatalf("back online, still an offline alarm: %+v", al)
		}
	}
}
