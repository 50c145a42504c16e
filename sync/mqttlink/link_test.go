package mqttlink

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/sync/protocol"
)

// Events go out in seq order, each with its id of (locker, store, seq),
// and the cursor follows the PUBACKs; nothing leaves the outbox.
func TestPublishInSeqOrder(t *testing.T) {
	tl := newTestLink(t, newFakeCore(250))
	total := 0
	for {
		n, err := tl.publishBatch(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		total += n
	}
	sent := tl.client.on(tl.topics.UpEvt())
	if total != 250 || len(sent) != 250 {
		t.Fatalf("published %d (%d counted), want 250", len(sent), total)
	}
	for i, raw := range sent {
		var e protocol.Event
		if err := json.Unmarshal(raw, &e); err != nil {
			t.Fatal(err)
		}
		if e.Seq != uint64(i+1) || e.ID != protocol.EventID("L1", "store1", e.Seq) || e.Store != "store1" {
			t.Fatalf("event %d: seq %d id %s", i, e.Seq, e.ID)
		}
	}
	if tl.cursor != 250 || len(tl.core.outbox) != 250 {
		t.Fatalf("cursor %d, outbox %d: events leave only on ack.evt", tl.cursor, len(tl.core.outbox))
	}
	// Not connected: nothing is published.
	tl.client.open = false
	tl.cursor = 0
	if n, _ := tl.publishBatch(context.Background()); n != 0 {
		t.Fatalf("published %d while disconnected", n)
	}
}

// ack.evt removes events up to its seq and no further; one for another
// store of this locker id removes nothing.
func TestAckEvt(t *testing.T) {
	tests := []struct {
		name     string
		ack      protocol.AckEvt
		wantLeft int
	}{
		{"up to 4", protocol.AckEvt{Upto: 4, Store: "store1"}, 6},
		{"no store (old hub)", protocol.AckEvt{Upto: 7}, 3},
		{"another store", protocol.AckEvt{Upto: 10, Store: "other"}, 10},
		{"all", protocol.AckEvt{Upto: 10, Store: "store1"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tl := newTestLink(t, newFakeCore(10))
			tl.handleAckEvt(message(t, protocol.TypeAckEvt, "a1", nil, tt.ack))
			if got := len(tl.core.outbox); got != tt.wantLeft {
				t.Fatalf("%d events left, want %d", got, tt.wantLeft)
			}
			for _, e := range tl.core.outbox {
				if tt.ack.Store != "other" && e.Seq <= tt.ack.Upto {
					t.Fatalf("event %d left after an ack up to %d", e.Seq, tt.ack.Upto)
				}
			}
		})
	}
}

// A command acts at most once, never without exp, never once expired by
// the core's trusted time, and not when its id cannot be recorded.
func TestCommands(t *testing.T) {
	exp := time.Now().Add(time.Minute)
	open := protocol.CmdOpen{Compartment: "A01", Reason: "support"}
	tests := []struct {
		name       string
		exp        *time.Time
		cmdErr     error
		stateErr   error
		repeat     bool
		wantStatus []string
		wantOpens  int
	}{
		{"done", &exp, nil, nil, false, []string{protocol.CmdDone}, 1},
		{"redelivered", &exp, nil, nil, true, []string{protocol.CmdDone, protocol.CmdDuplicate}, 1},
		{"no exp", nil, nil, nil, false, []string{protocol.CmdRejected}, 0},
		{"expired", &exp, fmt.Errorf("%w: by 5m", locker.ErrCommandExpired), nil, false, []string{protocol.CmdExpired}, 0},
		{"no trusted time", &exp, fmt.Errorf("no trusted time"), nil, false, []string{protocol.CmdRejected}, 0},
		{"id not recorded", &exp, nil, errStore, false, []string{protocol.CmdRejected}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tl := newTestLink(t, newFakeCore(0))
			tl.core.cmdErr, tl.state.fail = tt.cmdErr, tt.stateErr
			m := message(t, protocol.TypeCmdOpen, "cmd-1", tt.exp, open)
			tl.handleCmd(context.Background(), m)
			if tt.repeat {
				tl.handleCmd(context.Background(), m)
			}
			var got []string
			for _, r := range tl.replies(t) {
				var a protocol.AckCmd
				if err := protocol.DecodeData(r, &a); err != nil || r.Type != protocol.TypeAckCmd || r.Ref != "cmd-1" {
					t.Fatalf("reply %+v: %v", r, err)
				}
				got = append(got, a.Status)
			}
			if !slices.Equal(got, tt.wantStatus) || len(tl.core.opened) != tt.wantOpens {
				t.Fatalf("acks %v, %d opens; want %v, %d", got, len(tl.core.opened), tt.wantStatus, tt.wantOpens)
			}
		})
	}
}

// snapPart is part n of parts of snapshot id at rev, holding orders
// <id>-<n>-0 and <id>-<n>-1.
func snapPart(id string, rev uint64, n, parts int) protocol.OrdersSnapshot {
	d := protocol.OrdersSnapshot{SnapID: id, Rev: rev, Part: n, Parts: parts}
	for i := range 2 {
		d.Orders = append(d.Orders, protocol.Order{ID: fmt.Sprintf("%s-%d-%d", id, n, i), Rev: rev, State: "assigned", Size: "S",
			CodeHash: "h", ExpiresAt: time.Now().Add(time.Hour)})
	}
	return d
}

func (tl *testLink) stage(t *testing.T, d protocol.OrdersSnapshot) locker.OrdersResult {
	t.Helper()
	orders, bad := tl.toCoreAll(d.Orders)
	if len(bad) > 0 {
		t.Fatal(bad)
	}
	res, err := tl.stageSnapshot(d, orders)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// Parts of two snapshots interleaved, the older one's delayed: the newer
// snapshot is staged whole and replaces the orders; the older one's parts
// change nothing, before or after. Nothing reaches the core before a
// snapshot's last part.
func TestSnapshotStaging(t *testing.T) {
	type part struct {
		snap string
		rev  uint64
		n    int // of 2
	}
	tests := []struct {
		name  string
		parts []part
		want  string // the snapshot whose orders are there at the end
	}{
		{"old part inside new", []part{{"B", 7, 1}, {"A", 5, 2}, {"B", 7, 2}}, "B"},
		{"old snapshot started first", []part{{"A", 5, 1}, {"B", 7, 1}, {"A", 5, 2}, {"B", 7, 2}}, "B"},
		{"old snapshot completes after new", []part{{"B", 7, 1}, {"B", 7, 2}, {"A", 5, 1}, {"A", 5, 2}}, "B"},
		{"newer replaces older in progress", []part{{"A", 5, 1}, {"B", 7, 2}, {"B", 7, 1}}, "B"},
		{"in order", []part{{"A", 5, 1}, {"A", 5, 2}, {"B", 7, 1}, {"B", 7, 2}}, "B"},
		{"only the old one, last part first", []part{{"A", 5, 2}, {"A", 5, 1}}, "A"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tl := newTestLink(t, newFakeCore(0))
			for i, p := range tt.parts {
				before := tl.core.replaced
				res := tl.stage(t, snapPart(p.snap, p.rev, p.n, 2))
				if res.Pending && tl.core.replaced != before {
					t.Fatalf("part %d: the core changed before the snapshot was whole", i)
				}
			}
			ids := tl.core.ids()
			if len(ids) != 4 {
				t.Fatalf("orders %v, want the 4 of snapshot %s", ids, tt.want)
			}
			for _, id := range ids {
				if !strings.HasPrefix(id, tt.want+"-") {
					t.Fatalf("orders %v, want those of snapshot %s", ids, tt.want)
				}
			}
			if tl.state.staged.SnapID != "" {
				t.Fatalf("parts of %s still staged after the apply", tl.state.staged.SnapID)
			}
		})
	}
}

// A snapshot left incomplete is dropped after SnapshotTimeout: its parts
// sent again after that start afresh. A snapshot older than the one
// applied is refused. A part the core's state cannot be read for is not
// acknowledged (an error: the central library sends it again).
func TestSnapshotExpiryAndRefusals(t *testing.T) {
	tl := newTestLink(t, newFakeCore(0))
	tl.stage(t, snapPart("S", 3, 1, 2))
	tl.now = tl.now.Add(2 * time.Hour)
	tl.expireStaged(tl.now)
	if res := tl.stage(t, snapPart("S", 3, 2, 2)); !res.Pending {
		t.Fatalf("after the expiry the first part should be gone: %+v", res)
	}
	if res := tl.stage(t, snapPart("S", 3, 1, 2)); res.Pending || res.AppliedCount != 4 {
		t.Fatalf("the snapshot sent again: %+v", res)
	}
	if res := tl.stage(t, snapPart("OLD", 2, 1, 1)); len(res.Rejected) != 1 || tl.core.replaced != 1 {
		t.Fatalf("a snapshot older than the applied one: %+v", res)
	}
	for _, bad := range []protocol.OrdersSnapshot{{SnapID: "", Part: 1, Parts: 1}, {SnapID: "x", Part: 2, Parts: 1}, {SnapID: "x", Part: 1, Parts: maxParts + 1}} {
		if _, err := tl.stageSnapshot(bad, nil); err == nil {
			t.Fatalf("bad part %+v accepted", bad)
		}
	}
	tl.core.syncErr = errStore
	if _, err := tl.stageSnapshot(snapPart("T", 9, 1, 1), nil); err == nil {
		t.Fatal("a part staged while the core's state could not be read")
	}
}

// Silence from the central library while events are out: they are sent
// again from the last ack after FirstRetransmit, then after twice as long
// each time, never more than RetransmitAfter apart; an ack.evt starts the
// schedule again; a failing store read changes nothing.
func TestResendAfterSilence(t *testing.T) {
	tl := newTestLink(t, newFakeCore(10))
	tl.cfg.FirstRetransmit, tl.cfg.RetransmitAfter = 2*time.Second, 30*time.Second
	tl.cursor, tl.lastAckChange = 10, tl.now
	tl.core.acked = 3
	start := tl.now
	steps := []struct {
		at     time.Duration // since the last publish
		resent bool
	}{
		{1900 * time.Millisecond, false},
		{2 * time.Second, true}, // 1st: after 2 s
		{5900 * time.Millisecond, false},
		{6 * time.Second, true},  // 2nd: 4 s later
		{14 * time.Second, true}, // 3rd: 8 s later
		{30 * time.Second, true}, // 4th: 16 s later
		{59 * time.Second, false},
		{60 * time.Second, true}, // 5th: 30 s later (the cap)
	}
	for _, st := range steps {
		tl.now = start.Add(st.at)
		tl.cursor = 10 // sent (again), no ack
		tl.maybeRetransmit()
		if resent := tl.cursor == 3; resent != st.resent {
			t.Fatalf("at %v: resent %v, want %v (cursor %d)", st.at, resent, st.resent, tl.cursor)
		}
	}
	// A failing store read changes nothing.
	tl.cursor = 10
	tl.now = tl.now.Add(31 * time.Second)
	tl.core.syncErr = errStore
	tl.maybeRetransmit()
	if tl.cursor != 10 {
		t.Fatalf("cursor moved on a failing store read: %d", tl.cursor)
	}
	tl.core.syncErr = nil
	// An ack.evt: the schedule starts again at FirstRetransmit.
	tl.core.acked = 5
	tl.handleAckEvt(message(t, protocol.TypeAckEvt, "a1", nil, protocol.AckEvt{Upto: 5}))
	tl.cursor = 10
	tl.now = tl.now.Add(2 * time.Second)
	tl.maybeRetransmit()
	if tl.cursor != 5 {
		t.Fatalf("2 s after an ack.evt the cursor is %d, want the last ack 5", tl.cursor)
	}
}

// The publisher sends no more than AckWindow events beyond the central's
// last ack.evt; an ack.evt makes room for the next ones.
func TestAckWindow(t *testing.T) {
	tl := newTestLink(t, newFakeCore(1000))
	tl.cfg.AckWindow = 150
	tl.connected = true
	sent := 0
	for {
		n, err := tl.publishBatch(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		sent += n
	}
	if sent != 150 || tl.cursor != 150 {
		t.Fatalf("sent %d (cursor %d) with nothing acked, want the window of 150", sent, tl.cursor)
	}
	tl.core.acked = 100
	if n, _ := tl.publishBatch(context.Background()); n != 100 || tl.cursor != 250 {
		t.Fatalf("after an ack up to 100: sent %d more (cursor %d), want 100 (cursor 250)", n, tl.cursor)
	}
}

// Garbage on the downlink is refused with a nack and touches nothing; the
// link goes on serving.
func TestDownlinkGarbage(t *testing.T) {
	tl := newTestLink(t, newFakeCore(3))
	for _, payload := range []string{"", "{", "null", `{"v":1,"type":"cmd.open","locker":"L2","id":"x"}`, `{"v":1,"type":"no.such","locker":"L1","id":"y"}`} {
		tl.handle(context.Background(), tl.topics.DownCmd(), []byte(payload))
	}
	if n := len(tl.replies(t)); n != 5 {
		t.Fatalf("%d nacks for 5 bad messages", n)
	}
	if len(tl.core.opened) != 0 || len(tl.core.outbox) != 3 {
		t.Fatal("a bad message acted")
	}
	// An orders message on the command topic is refused too.
	raw, _ := protocol.Encode(protocol.TypeOrdersUpsert, "u1", "L1", "", time.Now(), protocol.OrdersUpsert{})
	tl.handle(context.Background(), tl.topics.DownCmd(), raw)
	if r := tl.replies(t); len(r) != 1 || r[0].Type != protocol.TypeNack {
		t.Fatalf("orders on the command topic: %+v", r)
	}
}

// Order messages: an upsert's codes are hashed on receipt (a plaintext
// code never reaches the core), an order with both a code and a hash is
// rejected in the ack, a cancel reaches the core; a failing store is a
// nack, so that the central library sends again.
func TestOrderMessages(t *testing.T) {
	tl := newTestLink(t, newFakeCore(0))
	exp := time.Now().Add(time.Hour)
	up := protocol.OrdersUpsert{Orders: []protocol.Order{
		{ID: "O1", Rev: 1, State: "assigned", Size: "S", Code: "K7Q2M9", ExpiresAt: exp, Items: []protocol.Item{{Barcode: "978"}}},
		{ID: "O2", Rev: 1, State: "assigned", Size: "S", Code: "AB12", CodeHash: "h", ExpiresAt: exp},
	}}
	tl.handleOrders(message(t, protocol.TypeOrdersUpsert, "u1", nil, up))
	r := tl.replies(t)
	var ack protocol.AckOrders
	if len(r) != 1 || r[0].Type != protocol.TypeAckOrders || protocol.DecodeData(r[0], &ack) != nil {
		t.Fatalf("replies %+v", r)
	}
	if len(ack.Rejected) != 1 || ack.Rejected[0].OrderID != "O2" || ack.AppliedCount != 1 {
		t.Fatalf("ack %+v", ack)
	}
	if o := tl.core.orders["O1"]; o.CodeHash != "hash-K7Q2M9" || len(o.Items) != 1 {
		t.Fatalf("order reached the core as %+v", o)
	}
	tl.handleOrders(message(t, protocol.TypeOrdersCancel, "c1", nil, protocol.OrdersCancel{OrderIDs: []string{"O1"}, Rev: 2}))
	if r := tl.replies(t); len(r) != 1 || len(tl.core.cancelled) != 1 {
		t.Fatalf("cancel: %+v, cancelled %v", r, tl.core.cancelled)
	}
	tl.handleOrders(message(t, protocol.TypeOrdersSnapshot, "s1", nil, snapPart("S", 3, 1, 1)))
	if r := tl.replies(t); len(r) != 1 || tl.core.replaced != 1 {
		t.Fatalf("snapshot: %+v", r)
	}
	tl.handleOrders(protocol.Message{Type: protocol.TypeOrdersUpsert, ID: "u2", Data: []byte(`{"orders":"many"}`)})
	tl.core.syncErr = errStore
	tl.handleOrders(message(t, protocol.TypeOrdersSnapshot, "s2", nil, snapPart("T", 4, 1, 1)))
	for _, r := range tl.replies(t) {
		if r.Type != protocol.TypeNack {
			t.Fatalf("a malformed message or a store failure acked: %+v", r)
		}
	}
}

// The other commands: service, resync (from the last ack at least),
// ping, and an open the core refuses.
func TestOtherCommands(t *testing.T) {
	tl := newTestLink(t, newFakeCore(10))
	tl.core.acked = 4
	exp := time.Now().Add(time.Minute)
	status := func() string {
		r := tl.replies(t)
		if len(r) != 1 {
			t.Fatalf("%d replies", len(r))
		}
		var a protocol.AckCmd
		protocol.DecodeData(r[0], &a)
		return a.Status + " " + a.Detail
	}
	tl.handleCmd(context.Background(), message(t, protocol.TypeCmdService, "s1", &exp, protocol.CmdService{Compartment: "A01"}))
	if got := status(); got != "done " || tl.core.service[0] != "A01 false remote" {
		t.Fatalf("service: %s %v", got, tl.core.service)
	}
	tl.handleCmd(context.Background(), message(t, protocol.TypeCmdService, "s2", &exp, protocol.CmdService{Compartment: "Z9"}))
	if got := status(); !strings.HasPrefix(got, "rejected") {
		t.Fatalf("service of an unknown compartment: %s", got)
	}
	tl.cursor = 10
	tl.handleCmd(context.Background(), message(t, protocol.TypeCmdResync, "r1", &exp, protocol.CmdResync{FromSeq: 1}))
	if got := status(); !strings.HasPrefix(got, "done resending from seq 5") || tl.cursor != 4 {
		t.Fatalf("resync: %s, cursor %d", got, tl.cursor)
	}
	tl.handleCmd(context.Background(), message(t, protocol.TypeCmdPing, "p1", &exp, struct{}{}))
	if got := status(); got != "done pong" {
		t.Fatalf("ping: %s", got)
	}
	tl.handleCmd(context.Background(), message(t, protocol.TypeCmdOpen, "o1", &exp, "not an object"))
	if got := status(); !strings.HasPrefix(got, "rejected") {
		t.Fatalf("open with bad data: %s", got)
	}
}

// Statuses on the locker's own topic: another cabinet's births again and
// again are an identity conflict (once an hour); this cabinet's earlier
// run is not; a stale will of this run while connected is answered by a
// birth.
func TestStatusTopic(t *testing.T) {
	tl := newTestLink(t, newFakeCore(0))
	birth := func(st protocol.Status) {
		raw, _ := json.Marshal(st)
		tl.handle(context.Background(), tl.topics.Status(), raw)
	}
	birth(protocol.Status{Online: true, Instance: "earlier", Store: "store1", Boot: 0})
	birth(protocol.Status{Online: true, Instance: "earlier", Store: "store1", Boot: 0})
	birth(protocol.Status{Online: true, Instance: tl.instance, Store: "store1", Boot: 1})
	if len(tl.core.conflicts) != 0 {
		t.Fatalf("own births taken for a clone: %+v", tl.core.conflicts)
	}
	for range 3 {
		tl.now = tl.now.Add(time.Minute)
		birth(protocol.Status{Online: true, Instance: "clone", Store: "store9", Boot: 7})
	}
	if len(tl.core.conflicts) != 1 || tl.core.conflicts[0].OtherStore != "store9" || tl.core.conflicts[0].SameStore {
		t.Fatalf("conflicts %+v", tl.core.conflicts)
	}
	birth(protocol.Status{Online: false, Instance: tl.instance, Boot: 1})
	if sent := tl.client.on(tl.topics.Status()); len(sent) != 1 || !strings.Contains(string(sent[0]), `"online":true`) {
		t.Fatalf("no birth over a stale will: %q", sent)
	}
	// The central library coming back: its missed events are sent again.
	tl.cursor, tl.core.acked = 9, 2
	raw, _ := json.Marshal(protocol.CentralStatus{Online: true})
	tl.handle(context.Background(), tl.topics.CentralStatus(), raw)
	if tl.cursor != 2 || !tl.centralOnline {
		t.Fatalf("cursor %d after the central came back", tl.cursor)
	}
}

// While the central rotates its signing key, a locker accepts its current
// key and the next one, and no other.
func TestCentralKeyRotation(t *testing.T) {
	cur, curPriv, _ := ed25519.GenerateKey(rand.Reader)
	next, nextPriv, _ := ed25519.GenerateKey(rand.Reader)
	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	seal := func(key ed25519.PrivateKey) []byte {
		env, err := protocol.Seal([]byte(`{"v":1}`), key)
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	for _, tc := range []struct {
		name   string
		next   ed25519.PublicKey
		signer ed25519.PrivateKey
		opened bool
	}{
		{"current key", nil, curPriv, true},
		{"next key, not configured", nil, nextPriv, false},
		{"current key during the rotation", next, curPriv, true},
		{"next key during the rotation", next, nextPriv, true},
		{"another key during the rotation", next, otherPriv, false},
	} {
		k := &Link{cfg: Config{CentralKey: cur, CentralNextKey: tc.next}}
		body, err := k.open(seal(tc.signer))
		if (err == nil) != tc.opened || tc.opened && string(body) != `{"v":1}` {
			t.Errorf("%s: %q %v, want opened %v", tc.name, body, err, tc.opened)
		}
	}
}

// A connection whose subscription gives nothing — its own birth never
// comes back on the status topic — is taken for broken and made again; a
// connection whose birth comes back is kept.
func TestSubscriptionThatGivesNothingReconnects(t *testing.T) {
	for _, tc := range []struct {
		name       string
		birthBack  bool
		reconnects int
	}{
		{"birth comes back", true, 0},
		{"nothing comes back", false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tl := newTestLink(t, newFakeCore(0))
			tl.cfg.PublishTimeout = 20 * time.Millisecond
			tl.onConnect(tl.client)
			births := tl.client.on(tl.topics.Status())
			if len(births) != 1 {
				t.Fatalf("%d births published", len(births))
			}
			if tc.birthBack {
				tl.handle(context.Background(), tl.topics.Status(), births[0])
			}
			time.Sleep(100 * time.Millisecond) // five times the check's delay
			tl.client.mu.Lock()
			got := tl.client.disconnects
			tl.client.mu.Unlock()
			if got != tc.reconnects {
				t.Fatalf("%d reconnects, want %d", got, tc.reconnects)
			}
		})
	}
}

// Events sent again and again to a central that says it is online, and
// no ack: the downlink gives nothing, and the connection is made again.
// With the central offline, silence is expected: no reconnect as soon
// (but one after maxSilentResendsOffline, in case that news was stale).
func TestSilentDownlinkReconnects(t *testing.T) {
	for _, tc := range []struct {
		name          string
		centralOnline bool
		reconnects    int
	}{
		{"central online", true, 1},
		{"central offline", false, 0},
	} {
		resends := maxSilentResends + 1
		t.Run(tc.name, func(t *testing.T) {
			tl := newTestLink(t, newFakeCore(10))
			tl.cfg.RetransmitAfter = 30 * time.Second
			tl.cursor, tl.lastAckChange = 10, tl.now
			tl.centralOnline = tc.centralOnline
			tl.core.acked = 3
			for range resends {
				tl.now = tl.now.Add(31 * time.Second)
				tl.maybeRetransmit()
				tl.cursor = 10 // sent again, still no ack
			}
			disconnects := func() int {
				tl.client.mu.Lock()
				defer tl.client.mu.Unlock()
				return tl.client.disconnects
			}
			if tc.reconnects > 0 {
				for deadline := time.Now().Add(5 * time.Second); disconnects() == 0; time.Sleep(5 * time.Millisecond) {
					if time.Now().After(deadline) {
						t.Fatal("no reconnect")
					}
				}
			} else {
				time.Sleep(50 * time.Millisecond) // an absence: the reconnect would be a goroutine
			}
			if got := disconnects(); got != tc.reconnects {
				t.Fatalf("%d reconnects, want %d", got, tc.reconnects)
			}
		})
	}
}

// A central last said to be offline, and silence long after: the news of
// its return may have been lost with a dead subscription, so the
// connection is made again, later than for an online one.
func TestSilentDownlinkReconnectsLaterWhenCentralOffline(t *testing.T) {
	tl := newTestLink(t, newFakeCore(10))
	tl.cfg.RetransmitAfter = 30 * time.Second
	tl.cursor, tl.lastAckChange = 10, tl.now
	tl.core.acked = 3
	tl.centralOnline = false
	for range maxSilentResendsOffline + 1 {
		tl.now = tl.now.Add(31 * time.Second)
		tl.maybeRetransmit()
		tl.cursor = 10
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		tl.client.mu.Lock()
		n := tl.client.disconnects
		tl.client.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d reconnects after %d silent resends to an offline central, want 1", n, maxSilentResendsOffline+1)
		}
	}
}

// On connect the down topics are one filter (down/+), beside the central's
// status and the locker's own; the exact down topics an earlier lockerd
// left in its session are unsubscribed, so that no message comes twice.
func TestSubscribesDownAsOneFilter(t *testing.T) {
	tl := newTestLink(t, newFakeCore(0))
	tl.onConnect(tl.client)
	tl.client.mu.Lock()
	defer tl.client.mu.Unlock()
	want := []string{"lockers/v1/L1/down/+", "lockers/v1/L1/status", "lockers/v1/central/status"}
	slices.Sort(want)
	if !slices.Equal(tl.client.subscribed, want) {
		t.Fatalf("subscribed %v, want %v", tl.client.subscribed, want)
	}
	if old := []string{"lockers/v1/L1/down/orders", "lockers/v1/L1/down/cmd", "lockers/v1/L1/down/ack"}; !slices.Equal(tl.client.dropped, old) {
		t.Fatalf("unsubscribed %v, want %v", tl.client.dropped, old)
	}
}
