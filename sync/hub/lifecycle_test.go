package hub_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/lockerd/lockerd/sync/brokertest"
	"github.com/lockerd/lockerd/sync/hub"
	"github.com/lockerd/lockerd/sync/hub/alarm"
	"github.com/lockerd/lockerd/sync/hub/hubtest"
	"github.com/lockerd/lockerd/sync/protocol"
)

// A locker's life as the hub sees it, through the hub's own client and
// HTTP API: birth, an order created, loaded and picked up (the order
// follows the events), a redelivered event stored once, the order acked,
// a cancel and a snapshot, a remote open answered, then a replaced store
// and a cloned card raised as alarms.
func TestLockerLifecycle(t *testing.T) {
	h, url, pub := newHub(t)
	c := hubtest.Serve(t, h)
	tp := protocol.Topics{Prefix: protocol.DefaultPrefix, Locker: "nb-1"}
	loc := brokertest.Record(t, url, "nb-1", "", nil, tp.DownOrders(), tp.DownCmd(), tp.DownAck())

	status := func(store, inst string, rev, head uint64) {
		raw, _ := json.Marshal(protocol.Status{V: 1, Type: protocol.TypeStatus, Online: true, Boot: 1, Store: store,
			Instance: inst, OrdersRev: rev, OutboxHead: head, OutboxTail: head + 1, TS: time.Now().UTC()})
		loc.Publish(tp.Status(), raw)
	}
	event := func(store string, seq uint64, d any, typ string) {
		data, _ := json.Marshal(d)
		raw, _ := json.Marshal(protocol.Event{V: 1, ID: protocol.EventID("nb-1", store, seq), Type: typ, Locker: "nb-1",
			Store: store, Boot: 1, Seq: seq, TS: time.Now().UTC(), Data: data})
		loc.Publish(tp.UpEvt(), raw)
	}
	reply := func(typ, ref string, data any) {
		raw, _ := protocol.Encode(typ, "r-"+ref, "nb-1", ref, time.Now(), data)
		loc.Publish(tp.UpAck(), raw)
	}
	until := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}

	status("s1", "i1", 0, 0)
	until("the locker online", func() bool { ls, _ := c.Lockers(); return len(ls) == 1 && ls[0].Online && ls[0].Store == "s1" })
	cr, err := c.CreateOrder(hub.NewOrder{Locker: "nb-1", Size: "M"})
	if err != nil || cr.Code == "" {
		t.Fatalf("create: %+v %v", cr, err)
	}
	loc.Wait(10*time.Second, "the order's upsert", func(m brokertest.Msg) bool { return m.Topic == tp.DownOrders() })
	event("s1", 1, protocol.OrderLoaded{OrderID: cr.Order.ID, Compartment: "A02"}, protocol.EvOrderLoaded)
	event("s1", 1, protocol.OrderLoaded{OrderID: cr.Order.ID, Compartment: "A02"}, protocol.EvOrderLoaded) // redelivered
	event("s1", 2, protocol.PickupCompleted{OrderID: cr.Order.ID, Compartments: []string{"A02"}, Via: "scan"}, protocol.EvPickupCompleted)
	until("the pickup stored", func() bool { os, _ := c.Orders("nb-1"); return len(os) == 1 && os[0].Status == "picked_up" })
	if os, _ := c.Orders("nb-1"); fmt.Sprint(os[0].Compartments) != "[A02]" {
		t.Fatalf("order %+v", os[0])
	}
	evs, err := c.Events("nb-1", hub.Cursor{})
	if err != nil || len(evs) != 2 {
		t.Fatalf("events: %d %v (a redelivery is stored once)", len(evs), err)
	}
	loc.Wait(10*time.Second, "ack.evt", func(m brokertest.Msg) bool { return m.Topic == tp.DownAck() })
	reply(protocol.TypeAckOrders, "x", protocol.AckOrders{Rev: cr.Order.Rev})
	until("orders_rev", func() bool { li, _ := h.Locker("nb-1"); return li.OrdersRev == cr.Order.Rev })

	rev, err := c.CancelOrder("nb-1", cr.Order.ID)
	if err != nil || rev <= cr.Order.Rev {
		t.Fatalf("cancel: %d %v", rev, err)
	}
	if _, err := c.CancelOrder("nb-1", "NO-SUCH"); err == nil {
		t.Fatal("cancel of an unknown order")
	}
	if _, parts, err := c.Snapshot("nb-1", 100); err != nil || parts != 1 {
		t.Fatalf("snapshot: %d %v", parts, err)
	}
	cmdID, err := c.Open("nb-1", "A01", "reader called")
	if err != nil {
		t.Fatal(err)
	}
	cmd := loc.Wait(10*time.Second, "cmd.open", func(m brokertest.Msg) bool { return m.Topic == tp.DownCmd() })
	body, err := protocol.Open(cmd.Payload, pub)
	if err != nil {
		t.Fatal(err)
	}
	if m, err := protocol.Decode(body, "nb-1"); err != nil || m.ID != cmdID || m.Exp == nil {
		t.Fatalf("cmd.open %+v %v", m, err)
	}
	reply(protocol.TypeAckCmd, cmdID, protocol.AckCmd{Status: protocol.CmdDone, Detail: "maintenance"})
	until("the command's answer", func() bool { rec, _ := c.Command(cmdID); return rec.Status == protocol.CmdDone })
	if _, err := c.Open("nb-9", "A01", "x"); err == nil {
		t.Fatal("open at a locker the hub does not serve")
	}

	// The card swapped: a new store; then two processes taking turns.
	status("s2", "i2", 3, 0)
	until("store replaced", func() bool { as, _ := c.Alarms(false); return hasAlarm(as, alarm.StoreReplaced) })
	status("s2", "i1", 3, 0)
	until("cloned", func() bool { as, _ := c.Alarms(false); return hasAlarm(as, alarm.Cloned) })
	// An event under a known id with other content: a cloned card too.
	event("s1", 2, protocol.DoorChange{Compartment: "A09"}, protocol.EvDoorForced)
	if err := c.AddLocker("bad id/with slash"); err == nil {
		t.Fatal("a bad locker id added")
	}
}

func hasAlarm(as []alarm.Alarm, typ string) bool {
	for _, a := range as {
		if a.Type == typ {
			return true
		}
	}
	return false
}
