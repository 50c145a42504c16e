package main

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/locker/httpapi"
	"github.com/lockerd/lockerd/sync/brokertest"
	"github.com/lockerd/lockerd/sync/hub"
	"github.com/lockerd/lockerd/sync/protocol"
)

// TestSnapshot delivers a snapshot in three parts, out of order and with
// one part late (as if lost and resent): nothing changes until the last
// part, then it is swapped in at once; an order picked up here is not
// resurrected by it, and the conflict is reported.
func TestSnapshot(t *testing.T) {
	url := brokertest.StartEmbedded(t, protocol.DefaultPrefix, "lockerhub")
	key, _ := newKey(t)
	hubC := startCentral(t, url, key, nil, "lockerhub")
	rec := brokertest.Record(t, url, "test-central", "lockerhub", nil, topics.UpAck())
	c := newCabinet(t, "0s", withMQTT(url, hubC.Pub, ""))
	d := start(t, c.Config)

	mk := func() hub.Created {
		cr, err := hubC.CreateOrder(hub.NewOrder{Locker: lockerID, Size: "S"})
		if err != nil {
			t.Fatal(err)
		}
		return cr
	}
	a, b, gone := mk(), mk(), mk()
	until(t, "orders applied", func() bool { li, _ := hubC.Locker(lockerID); return li.OrdersRev >= gone.Order.Rev })
	comp := loadOrder(t, d, b.Order.ID)
	if res := d.scan("keypad", b.Code); res.Outcome != locker.OutcomeOpened {
		t.Fatalf("pickup of b: %+v", res)
	}
	d.sim("close", comp)

	orders := func() map[string]locker.OrderState {
		var os []httpapi.OrderView
		d.must("GET", "/v1/orders", nil, &os)
		out := map[string]locker.OrderState{}
		for _, o := range os {
			out[o.ID] = o.State
		}
		return out
	}
	exp := time.Now().Add(time.Hour).UTC()
	newC := protocol.Order{ID: "ORD-C", Rev: 10, State: "assigned", Size: "S", Items: []protocol.Item{}, Code: "NEWCC123", ExpiresAt: exp}
	resurrect := b.Order.Order
	resurrect.Rev, resurrect.State, resurrect.Compartment = 10, "ready", comp
	parts := map[int][]protocol.Order{1: {a.Order.Order}, 2: {newC}, 3: {resurrect}}
	send := func(part int) protocol.AckOrders {
		id := "snap-part-" + string(rune('0'+part))
		from := rec.Len()
		rec.Publish(topics.DownOrders(), signed(t, key, protocol.Message{Type: protocol.TypeOrdersSnapshot, ID: id, Locker: lockerID},
			protocol.OrdersSnapshot{SnapID: "snap-1", Part: part, Parts: 3, Rev: 10, Orders: parts[part]}))
		m := rec.WaitFrom(from, 10*time.Second, "ack of "+id, func(m brokertest.Msg) bool {
			var msg protocol.Message
			return json.Unmarshal(m.Payload, &msg) == nil && msg.Ref == id
		})
		var ao protocol.AckOrders
		json.Unmarshal(decodeMsg(t, m.Payload).Data, &ao)
		return ao
	}
	before := orders()
	for _, p := range []int{3, 2} {
		if ao := send(p); !ao.Pending || len(ao.Applied) != 0 {
			t.Fatalf("part %d: %+v", p, ao)
		}
		if got := orders(); len(got) != len(before) || got[gone.Order.ID] == "" || got["ORD-C"] != "" {
			t.Fatalf("snapshot changed orders before its last part: %v", got)
		}
	}
	ao := send(1)
	if ao.Pending || ao.Rev != 10 {
		t.Fatalf("last part: %+v", ao)
	}
	foundConflict := false
	for _, cf := range ao.Conflicts {
		foundConflict = foundConflict || cf.OrderID == b.Order.ID && cf.State == "picked_up"
	}
	if !foundConflict {
		t.Fatalf("no conflict reported for the picked-up order: %+v", ao)
	}
	got := orders()
	want := map[string]locker.OrderState{a.Order.ID: locker.OrderAssigned, b.Order.ID: locker.OrderPickedUp, "ORD-C": locker.OrderAssigned}
	if len(got) != len(want) {
		t.Fatalf("orders after snapshot: %v, want %v", got, want)
	}
	for id, st := range want {
		if got[id] != st {
			t.Fatalf("orders after snapshot: %v, want %v", got, want)
		}
	}
	// The swap is durable: a restart finds the same orders.
	d.kill()
	d = start(t, c.Config)
	if got := orders(); len(got) != 3 || got[b.Order.ID] != locker.OrderPickedUp {
		t.Fatalf("after restart: %v", got)
	}
}
