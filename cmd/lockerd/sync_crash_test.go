package main

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/locker/httpapi"
	"github.com/lockerd/lockerd/sync/brokertest"
	"github.com/lockerd/lockerd/sync/protocol"
)

// TestLinkStateSurvivesKill: the MQTT link's own state (staged snapshot
// parts, command ids handled) is as durable as the locker's. A snapshot
// whose sending is cut by a SIGKILL after every part completes with the
// remaining parts after each restart; a cmd.open redelivered after a
// SIGKILL acts once.
func TestLinkStateSurvivesKill(t *testing.T) {
	url := brokertest.StartEmbedded(t, protocol.DefaultPrefix, "lockerhub")
	key, pub := newKey(t)
	rec := brokertest.Record(t, url, "test-central", "lockerhub", nil, topics.UpAck(), topics.Status())
	c := newCabinet(t, "0s", withMQTT(url, pub, ""))
	var d *daemon
	restart := func() {
		if d != nil {
			d.kill()
		}
		from := rec.Len()
		d = start(t, c.Config)
		rec.WaitFrom(from, 10*time.Second, "birth", func(m brokertest.Msg) bool {
			var st protocol.Status
			return m.Topic == topics.Status() && json.Unmarshal(m.Payload, &st) == nil && st.Online
		})
	}
	restart()
	r := &downlinkRig{t: t, d: d, rec: rec, key: key}

	exp := time.Now().Add(time.Minute).UTC()
	open := signed(t, key, protocol.Message{Type: protocol.TypeCmdOpen, ID: "cmd-once", Locker: lockerID, Exp: &exp},
		protocol.CmdOpen{Compartment: "A02", Reason: "reader called support"})
	ackOf := func(m protocol.Message) string {
		var a protocol.AckCmd
		json.Unmarshal(m.Data, &a)
		return a.Status
	}
	if st := ackOf(r.reply(topics.DownCmd(), open, "cmd-once")); st != protocol.CmdDone {
		t.Fatalf("cmd.open: %s", st)
	}
	d.waitEvent(locker.EvMaintenanceOpen, map[string]any{"compartment": "A02"})
	restart()
	if st := ackOf(r.reply(topics.DownCmd(), open, "cmd-once")); st != protocol.CmdDuplicate {
		t.Fatalf("cmd.open redelivered after a SIGKILL: %s, want duplicate", st)
	}

	const parts = 3
	exp = time.Now().Add(time.Hour).UTC()
	for p := 1; p <= parts; p++ {
		var orders []protocol.Order
		for i := range 2 {
			orders = append(orders, protocol.Order{ID: fmt.Sprintf("SNAP-%d-%d", p, i), Rev: 20, State: "assigned", Size: "S",
				Items: []protocol.Item{}, Code: fmt.Sprintf("SNAPC%d%d9", p, i), ExpiresAt: exp})
		}
		id := fmt.Sprintf("snap-part-%d", p)
		m := r.reply(topics.DownOrders(), signed(t, key, protocol.Message{Type: protocol.TypeOrdersSnapshot, ID: id, Locker: lockerID},
			protocol.OrdersSnapshot{SnapID: "snap-kill", Part: p, Parts: parts, Rev: 20, Orders: orders}), id)
		var ao protocol.AckOrders
		json.Unmarshal(m.Data, &ao)
		if ao.Pending != (p < parts) {
			t.Fatalf("part %d after %d restarts: %s", p, p-1, m.Data)
		}
		if p < parts {
			restart() // the cut: SIGKILL after the part was staged and acknowledged as pending
		}
	}
	var os []httpapi.OrderView
	d.must("GET", "/v1/orders", nil, &os)
	if len(os) != 2*parts {
		t.Fatalf("%d orders after the snapshot, want %d", len(os), 2*parts)
	}
	if n := d.count(locker.EvMaintenanceOpen, nil); n != 1 {
		t.Fatalf("%d maintenance opens, want 1", n)
	}
}
