package hub_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockerd/lockerd/locker/lockertest"
	"github.com/lockerd/lockerd/sync/brokertest"
	"github.com/lockerd/lockerd/sync/hub"
	"github.com/lockerd/lockerd/sync/hub/alarm"
	"github.com/lockerd/lockerd/sync/hub/api"
	"github.com/lockerd/lockerd/sync/hub/auth"
	"github.com/lockerd/lockerd/sync/hub/hubtest"
	"github.com/lockerd/lockerd/sync/protocol"
)

// newHub runs a hub on an embedded broker until the test ends; it returns
// the hub, the broker's URL and the hub's public key.
func newHub(t *testing.T) (*hub.Hub, string, ed25519.PublicKey) {
	t.Helper()
	url := brokertest.StartEmbedded(t, protocol.DefaultPrefix, "lockerhub")
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	h := hubtest.Start(t, hub.Config{Brokers: []string{url}, SigningKey: priv, PickupKey: lockertest.Key, Lockers: []string{"nb-1"}})
	return h, url, pub
}

// Order changes made at once (orders created from many requests, a
// snapshot among them) reach the broker in rev order, and the snapshot
// holds exactly the orders of revs below its own.
func TestOrderChangesPublishedInRevOrder(t *testing.T) {
	h, url, pub := newHub(t)
	topics := protocol.Topics{Prefix: protocol.DefaultPrefix, Locker: "nb-1"}
	rec := brokertest.Record(t, url, "test-locker", "lockerhub", nil, topics.DownOrders())
	var wg sync.WaitGroup
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i == 20 {
				if _, _, err := h.Snapshot("nb-1", 500); err != nil {
					t.Error(err)
				}
				return
			}
			if _, err := h.CreateOrder(hub.NewOrder{Locker: "nb-1"}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	rec.WaitFrom(39, 10*time.Second, "40 order changes", func(brokertest.Msg) bool { return true })
	var last uint64
	var snapRev uint64
	var snapOrders []protocol.Order
	for _, m := range rec.All() {
		body, err := protocol.Open(m.Payload, pub)
		if err != nil {
			t.Fatal(err)
		}
		msg, err := protocol.Decode(body, "nb-1")
		if err != nil {
			t.Fatal(err)
		}
		var rev uint64
		switch msg.Type {
		case protocol.TypeOrdersUpsert:
			var d protocol.OrdersUpsert
			json.Unmarshal(msg.Data, &d)
			rev = d.Orders[0].Rev
		case protocol.TypeOrdersSnapshot:
			var d protocol.OrdersSnapshot
			json.Unmarshal(msg.Data, &d)
			rev, snapRev, snapOrders = d.Rev, d.Rev, d.Orders
		}
		if rev <= last {
			t.Fatalf("rev %d published after rev %d", rev, last)
		}
		last = rev
	}
	if len(snapOrders) != int(snapRev-1) {
		t.Fatalf("snapshot at rev %d holds %d orders, want the %d made before it", snapRev, len(snapOrders), snapRev-1)
	}
	for _, o := range snapOrders {
		if o.Rev >= snapRev {
			t.Fatalf("snapshot at rev %d holds order rev %d", snapRev, o.Rev)
		}
	}
}

// The hub takes from lockers only what is bounded and sane, and only from
// the lockers it serves: made-up ids are dropped (a bounded number of
// alarms), oversized events, a seq far beyond the store's mark and a time
// years ahead are refused, and orders with absurd fields are refused with
// a clear error.
func TestHubBoundsItsInputs(t *testing.T) {
	h, url, _ := newHub(t)
	// Lockers nobody configured.
	for i := 0; i < 40; i++ {
		id := fmt.Sprintf("made-up-%02d", i)
		tp := protocol.Topics{Prefix: protocol.DefaultPrefix, Locker: id}
		r := brokertest.Record(t, url, id, "", nil)
		st, _ := json.Marshal(protocol.Status{V: 1, Type: protocol.TypeStatus, Online: true, Boot: 1, Store: "00ff00ff00ff00ff"})
		r.Publish(tp.Status(), st)
	}
	nb := protocol.Topics{Prefix: protocol.DefaultPrefix, Locker: "nb-1"}
	loc := brokertest.Record(t, url, "nb-1", "", nil)
	event := func(seq uint64, ts time.Time, data map[string]any) []byte {
		rawData, _ := json.Marshal(data)
		raw, _ := json.Marshal(protocol.Event{V: 1, ID: protocol.EventID("nb-1", "00aa00aa00aa00aa", seq), Type: "door.opened",
			Locker: "nb-1", Store: "00aa00aa00aa00aa", Boot: 1, Seq: seq, TS: ts, Data: rawData})
		return raw
	}
	now := time.Now().UTC()
	loc.Publish(nb.UpEvt(), event(1, now, map[string]any{"compartment": "A01"}))
	loc.Publish(nb.UpEvt(), event(2, now, map[string]any{"junk": strings.Repeat("x", 20<<10)}))
	loc.Publish(nb.UpEvt(), event(math.MaxUint64, now, nil))
	loc.Publish(nb.UpEvt(), event(3, time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), nil))
	loc.Publish(nb.UpEvt(), event(4, time.Unix(0, 0).UTC(), nil)) // a Pi without its clock: taken
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		evs, _ := h.Events("nb-1", hub.Cursor{}, 0)
		if len(evs) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("events stored: %v", evs)
		}
	}
	evs, _ := h.Events("nb-1", hub.Cursor{}, 0)
	if len(evs) != 2 || evs[0].Seq != 1 || evs[1].Seq != 4 {
		t.Fatalf("stored %+v; want seq 1 and 4 only", evs)
	}
	ls, _ := h.Lockers()
	for _, l := range ls {
		if strings.HasPrefix(l.ID, "made-up") {
			t.Fatalf("a locker record was made for %s", l.ID)
		}
	}
	as, _ := h.Alarms(0)
	unknown := 0
	for _, a := range as {
		if a.Type == alarm.UnknownLocker {
			unknown++
		}
	}
	if unknown == 0 || unknown > 20 {
		t.Fatalf("%d unknown-locker alarms for 40 made-up ids (want 1..20)", unknown)
	}

	for _, tt := range []struct {
		name string
		req  hub.NewOrder
		want string
	}{
		{"10,000 items", hub.NewOrder{Locker: "nb-1", Items: make([]protocol.Item, 10000)}, "at most 50"},
		{"a title of a million characters", hub.NewOrder{Locker: "nb-1", Items: []protocol.Item{{Barcode: "1234", Title: strings.Repeat("t", 1_000_000)}}}, "title"},
		{"an empty barcode", hub.NewOrder{Locker: "nb-1", Items: []protocol.Item{{Barcode: ""}}}, "barcode"},
		{"a wildcard locker id", hub.NewOrder{Locker: "a/+/#"}, "locker id"},
		{"an unknown locker", hub.NewOrder{Locker: "nb-9"}, "unknown locker"},
		{"a ttl of ten years", hub.NewOrder{Locker: "nb-1", TTL: "87600h"}, "ttl"},
		{"a bad order id", hub.NewOrder{Locker: "nb-1", ID: "ORD 1"}, "order id"},
	} {
		if _, err := h.CreateOrder(tt.req); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error saying %q", tt.name, err, tt.want)
		}
	}
	if _, err := h.CreateOrder(hub.NewOrder{Locker: "nb-1", Items: []protocol.Item{{Barcode: "9787532736744", Title: "Fortress Besieged"}}}); err != nil {
		t.Fatalf("a sane order: %v", err)
	}
}

// Every list of the hub's API comes in pages.
func TestListsArePaged(t *testing.T) {
	h, _, _ := newHub(t)
	for i := 0; i < 5; i++ {
		if _, err := h.CreateOrder(hub.NewOrder{Locker: "nb-1"}); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(api.New(api.ForHub(h)))
	defer srv.Close()
	token := hubtest.Token(t, h, auth.ScopeRead)
	get := func(path string) []hub.OrderRec {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out []hub.OrderRec
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	first := get("/v1/orders?locker=nb-1&limit=2")
	if len(first) != 2 || first[1].Rev != 2 {
		t.Fatalf("first page: %+v", first)
	}
	rest := get("/v1/orders?locker=nb-1&limit=10&after=2")
	if len(rest) != 3 || rest[0].Rev != 3 {
		t.Fatalf("after rev 2: %+v", rest)
	}
	if none := get("/v1/orders?locker=nb-1&after=5"); none == nil || len(none) != 0 {
		t.Fatalf("past the end: %#v", none)
	}
}

// The leader's timers: an order change an online locker has not
// acknowledged is sent again after ResendAfter, and no longer once it is;
// a will of another replica saying the central is offline is answered
// with online.
func TestReplicaDuties(t *testing.T) {
	url := brokertest.StartEmbedded(t, protocol.DefaultPrefix, "lockerhub")
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	h := hubtest.Start(t, hub.Config{Brokers: []string{url}, SigningKey: priv, PickupKey: lockertest.Key, Lockers: []string{"nb-1"},
		LeaseTTL: 300 * time.Millisecond, ResendAfter: 200 * time.Millisecond})
	tp := protocol.Topics{Prefix: protocol.DefaultPrefix, Locker: "nb-1"}
	loc := brokertest.Record(t, url, "nb-1", "", nil, tp.DownOrders(), tp.CentralStatus())
	birth, _ := json.Marshal(protocol.Status{V: 1, Type: protocol.TypeStatus, Online: true, Boot: 1, Store: "s1", Instance: "i1", OutboxTail: 1, TS: time.Now().UTC()})
	loc.Publish(tp.Status(), birth)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if li, _ := h.Locker("nb-1"); li.Online {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the locker never came online at the hub")
		}
	}
	cr, err := h.CreateOrder(hub.NewOrder{Locker: "nb-1"})
	if err != nil {
		t.Fatal(err)
	}
	upserts := func() int {
		n := 0
		for _, m := range loc.All() {
			if m.Topic == tp.DownOrders() {
				n++
			}
		}
		return n
	}
	for deadline := time.Now().Add(10 * time.Second); upserts() < 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the unacknowledged change was not sent again: %d upserts", upserts())
		}
	}
	if !h.Leader() {
		t.Fatal("the only replica does not lead")
	}
	// Acknowledged by the message's id, as a locker does.
	var sent protocol.Message
	for _, m := range loc.All() {
		if body, err := protocol.Open(m.Payload, priv.Public().(ed25519.PublicKey)); m.Topic == tp.DownOrders() && err == nil {
			json.Unmarshal(body, &sent)
		}
	}
	ack, _ := protocol.Encode(protocol.TypeAckOrders, "r-1", "nb-1", sent.ID, time.Now(), protocol.AckOrders{Rev: cr.Order.Rev})
	loc.Publish(tp.UpAck(), ack)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if li, _ := h.Locker("nb-1"); li.OrdersRev == cr.Order.Rev {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the ack never reached the hub")
		}
	}
	n := upserts()
	// An absence can only be waited out: ten sweeps, five ResendAfters.
	time.Sleep(time.Second)
	if upserts() != n {
		t.Fatalf("an acknowledged change was sent again: %d then %d", n, upserts())
	}

	will, _ := json.Marshal(protocol.CentralStatus{Online: false, TS: time.Now().UTC()})
	from := loc.Len()
	loc.Publish(tp.CentralStatus(), will)
	loc.WaitFrom(from, 10*time.Second, "the central online again", func(m brokertest.Msg) bool {
		var cs protocol.CentralStatus
		return m.Topic == tp.CentralStatus() && json.Unmarshal(m.Payload, &cs) == nil && cs.Online
	})
}

// Order changes still unacknowledged when the signing key is rotated go
// out again signed with the new key: the same message, by its id.
func TestPendingResignedAfterKeyRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hub.db")
	_, oldKey, _ := ed25519.GenerateKey(rand.Reader)
	old, err := hub.New(hub.Config{Store: hubtest.BoltStore(t, path), SigningKey: oldKey, PickupKey: lockertest.Key, Lockers: []string{"nb-1"},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	cr, err := old.CreateOrder(hub.NewOrder{Locker: "nb-1"})
	if err != nil {
		t.Fatal(err)
	}
	old.Close()

	url := brokertest.StartEmbedded(t, protocol.DefaultPrefix, "lockerhub")
	newPub, newKey, _ := ed25519.GenerateKey(rand.Reader)
	hubtest.Start(t, hub.Config{Brokers: []string{url}, Store: hubtest.BoltStore(t, path), SigningKey: newKey, PickupKey: lockertest.Key, Lockers: []string{"nb-1"}})
	tp := protocol.Topics{Prefix: protocol.DefaultPrefix, Locker: "nb-1"}
	loc := brokertest.Record(t, url, "nb-1", "", nil, tp.DownOrders())
	birth, _ := json.Marshal(protocol.Status{V: 1, Type: protocol.TypeStatus, Online: true, Boot: 1, Store: "s1", Instance: "i1", OutboxTail: 1, TS: time.Now().UTC()})
	loc.Publish(tp.Status(), birth)
	m := loc.Wait(10*time.Second, "the pending change sent again", func(m brokertest.Msg) bool { return m.Topic == tp.DownOrders() })
	body, err := protocol.Open(m.Payload, newPub)
	if err != nil {
		t.Fatalf("the change sent again does not verify with the new key: %v", err)
	}
	var msg protocol.Message
	var up protocol.OrdersUpsert
	if json.Unmarshal(body, &msg) != nil || json.Unmarshal(msg.Data, &up) != nil || len(up.Orders) != 1 || up.Orders[0].ID != cr.Order.ID {
		t.Fatalf("the change sent again: %s", body)
	}
}
