package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/sync/brokertest"
	"github.com/lockerd/lockerd/sync/protocol"
)

type downlinkRig struct {
	t   *testing.T
	d   *daemon
	rec *brokertest.Recorder
	key ed25519.PrivateKey
	n   int
}

// reply publishes payload on topic and returns the locker's reply that
// refers to ref (or, for ref "", the next reply without a ref).
func (r *downlinkRig) reply(topic string, payload []byte, ref string) protocol.Message {
	r.t.Helper()
	before := r.rec.Len()
	r.rec.Publish(topic, payload)
	m := r.rec.WaitFrom(before, 10*time.Second, "reply to "+ref, func(m brokertest.Msg) bool {
		var msg protocol.Message
		return m.Topic == topics.UpAck() && json.Unmarshal(m.Payload, &msg) == nil && msg.Ref == ref
	})
	return decodeMsg(r.t, m.Payload)
}

func (r *downlinkRig) id() string {
	r.n++
	return "test-" + strings.Repeat("x", r.n%3) + time.Now().Format("150405.000000000")
}

// TestDownlinkRobustness sends what a broken or hostile central side
// might: each is refused with the right nack or ack.cmd, no door opens
// that should not, and the daemon keeps serving.
func TestDownlinkRobustness(t *testing.T) {
	mq := brokertest.StartMosquitto(t, brokertest.MosquittoOptions{})
	key, pub := newKey(t)
	rec := brokertest.Record(t, mq.URL, "test-central", "", nil, topics.UpAck(), topics.Status())
	// The first broker is down: the locker fails over to the second.
	dead := fmt.Sprintf("tcp://127.0.0.1:%d", brokertest.FreePort(t))
	c := newCabinet(t, "0s", withBrokers([]string{dead, mq.URL}, pub, ""))
	d := start(t, c.Config)
	rec.Wait(10*time.Second, "birth", func(m brokertest.Msg) bool { return m.Topic == topics.Status() })

	// A will fired for a connection the broker thought dead, while the
	// locker is connected: the locker says it is online again.
	from := rec.Len()
	rec.Client.Publish(topics.Status(), 1, true, []byte(fmt.Sprintf(`{"v":1,"type":"status","online":false,"boot":%d}`, d.status().Boot))).Wait()
	rec.WaitFrom(from+1, 10*time.Second, "birth again", func(m brokertest.Msg) bool {
		return m.Topic == topics.Status() && strings.Contains(string(m.Payload), `"online":true`)
	})
	r := &downlinkRig{t: t, d: d, rec: rec, key: key}
	exp := time.Now().Add(time.Minute).UTC()
	past := time.Now().Add(-time.Second).UTC()
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)

	nackOf := func(m protocol.Message) string {
		if m.Type != protocol.TypeNack {
			t.Fatalf("want nack, got %s %s", m.Type, m.Data)
		}
		var n protocol.Nack
		json.Unmarshal(m.Data, &n)
		return n.Error
	}
	ackCmd := func(m protocol.Message) protocol.AckCmd {
		if m.Type != protocol.TypeAckCmd {
			t.Fatalf("want ack.cmd, got %s %s", m.Type, m.Data)
		}
		var a protocol.AckCmd
		json.Unmarshal(m.Data, &a)
		return a
	}

	// Garbage: too broken to have an id.
	if e := nackOf(r.reply(topics.DownCmd(), []byte(`{"v":1,"body":`), "")); !strings.Contains(e, "malformed") {
		t.Errorf("garbage: %s", e)
	}
	// A bad signature.
	id := r.id()
	bad := signed(t, otherKey, protocol.Message{Type: protocol.TypeCmdOpen, ID: id, Locker: lockerID, Exp: &exp},
		protocol.CmdOpen{Compartment: "A01", Reason: "forged"})
	if e := nackOf(r.reply(topics.DownCmd(), bad, id)); !strings.Contains(e, "bad signature") {
		t.Errorf("bad signature: %s", e)
	}
	// Another locker's message.
	id = r.id()
	if e := nackOf(r.reply(topics.DownCmd(), signed(t, key, protocol.Message{Type: protocol.TypeCmdOpen, ID: id, Locker: "other-01", Exp: &exp},
		protocol.CmdOpen{Compartment: "A01"}), id)); !strings.Contains(e, "another locker") {
		t.Errorf("wrong locker: %s", e)
	}
	// Unknown type and version.
	id = r.id()
	if e := nackOf(r.reply(topics.DownCmd(), signed(t, key, protocol.Message{Type: "cmd.selfdestruct", ID: id, Locker: lockerID, Exp: &exp}, struct{}{}), id)); !strings.Contains(e, "unknown message type") {
		t.Errorf("unknown type: %s", e)
	}
	id = r.id()
	if e := nackOf(r.reply(topics.DownCmd(), signed(t, key, protocol.Message{V: 2, Type: protocol.TypeCmdPing, ID: id, Locker: lockerID, Exp: &exp}, struct{}{}), id)); !strings.Contains(e, "version") {
		t.Errorf("v2: %s", e)
	}
	// An expired cmd.open must never fire.
	id = r.id()
	if a := ackCmd(r.reply(topics.DownCmd(), signed(t, key, protocol.Message{Type: protocol.TypeCmdOpen, ID: id, Locker: lockerID, Exp: &past},
		protocol.CmdOpen{Compartment: "A01", Reason: "late"}), id)); a.Status != protocol.CmdExpired {
		t.Errorf("expired cmd.open: %+v", a)
	}
	// A valid cmd.open acts once; its replay is a duplicate.
	id = r.id()
	open := signed(t, key, protocol.Message{Type: protocol.TypeCmdOpen, ID: id, Locker: lockerID, Exp: &exp},
		protocol.CmdOpen{Compartment: "A02", Reason: "reader called support"})
	if a := ackCmd(r.reply(topics.DownCmd(), open, id)); a.Status != protocol.CmdDone {
		t.Errorf("cmd.open: %+v", a)
	}
	d.waitEvent(locker.EvMaintenanceOpen, map[string]any{"compartment": "A02", "reason": "reader called support"})
	if a := ackCmd(r.reply(topics.DownCmd(), open, id)); a.Status != protocol.CmdDuplicate {
		t.Errorf("replayed cmd.open: %+v", a)
	}
	// A stale order rev.
	order := protocol.Order{ID: "ORD-1", Rev: 5, State: "assigned", Size: "S", Items: []protocol.Item{}, Code: "STALE5X9",
		ExpiresAt: time.Now().Add(time.Hour).UTC()}
	id = r.id()
	m := r.reply(topics.DownOrders(), signed(t, key, protocol.Message{Type: protocol.TypeOrdersUpsert, ID: id, Locker: lockerID},
		protocol.OrdersUpsert{Orders: []protocol.Order{order}}), id)
	var ao protocol.AckOrders
	json.Unmarshal(m.Data, &ao)
	if len(ao.Applied) != 1 || ao.Rev != 5 {
		t.Fatalf("upsert: %s", m.Data)
	}
	order.Rev = 4
	id = r.id()
	m = r.reply(topics.DownOrders(), signed(t, key, protocol.Message{Type: protocol.TypeOrdersUpsert, ID: id, Locker: lockerID},
		protocol.OrdersUpsert{Orders: []protocol.Order{order}}), id)
	ao = protocol.AckOrders{}
	json.Unmarshal(m.Data, &ao)
	if len(ao.Stale) != 1 || len(ao.Applied) != 0 {
		t.Fatalf("stale upsert: %s", m.Data)
	}
	// Malformed data in a well-signed message.
	id = r.id()
	raw := signed(t, key, protocol.Message{Type: protocol.TypeOrdersUpsert, ID: id, Locker: lockerID, Data: json.RawMessage(`{"orders":"many"}`)}, nil)
	if e := nackOf(r.reply(topics.DownOrders(), raw, id)); !strings.Contains(e, "malformed") {
		t.Errorf("bad data: %s", e)
	}

	// Only the one valid cmd.open opened a door.
	for _, e := range d.streamed() {
		if e.Type == locker.EvDoorOpened && e.Fields()["compartment"] != "A02" {
			t.Errorf("a door opened that should not: %+v", e)
		}
	}
	if n := d.count(locker.EvMaintenanceOpen, nil); n != 1 {
		t.Errorf("%d maintenance opens, want 1", n)
	}
	// The daemon keeps serving.
	rep := d.addOrder(httpAddOrder("A03"))
	if res := d.scan("keypad", rep.Code); res.Outcome != locker.OutcomeOpened {
		t.Fatalf("pickup after the barrage: %+v", res)
	}
	// The plaintext code sent by the "central" is stored only hashed.
	if strings.Contains(d.logs(), "STALE5X9") {
		t.Fatal("plaintext code in the log")
	}
}
