package main

import (
	"encoding/json"
	"testing"

	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/sync/brokertest"
	"github.com/lockerd/lockerd/sync/hub"
	"github.com/lockerd/lockerd/sync/protocol"
)

// TestSyncOfflineReplay: with the broker down, readers pick up, return
// and force a door; lockerd is SIGKILLed and restarted while offline; when
// the broker is back every event reaches the central library, in seq
// order, with no gap, ids unique, hist set, and the outbox empties.
func TestSyncOfflineReplay(t *testing.T) {
	mq := brokertest.StartMosquitto(t, brokertest.MosquittoOptions{})
	key, _ := newKey(t)
	hubC := startCentral(t, mq.URL, key, nil, "lockerhub")
	rec := brokertest.Record(t, mq.URL, "test-recorder", "", nil, topics.UpEvt())
	c := newCabinet(t, "0s", withMQTT(mq.URL, hubC.Pub, ""))
	d := start(t, c.Config)

	var codes []string
	var ids []string
	for i := 0; i < 2; i++ {
		created, err := hubC.CreateOrder(hub.NewOrder{Locker: lockerID, Size: "S"})
		if err != nil {
			t.Fatal(err)
		}
		codes, ids = append(codes, created.Code), append(ids, created.Order.ID)
	}
	until(t, "orders applied", func() bool { li, _ := hubC.Locker(lockerID); return li.OrdersRev >= 2 })
	for _, id := range ids {
		loadOrder(t, d, id)
	}
	// Depth and head from one status (one store transaction): the door
	// events of a pickup are recorded as the door moves, after the scan
	// has answered.
	var onlineHead uint64
	until(t, "online events acked", func() bool { st := d.status(); onlineHead = st.LastSeq; return st.OutboxDepth == 0 })

	mq.Stop()
	if res := d.scan("keypad", codes[0]); res.Outcome != locker.OutcomeOpened {
		t.Fatalf("offline pickup: %+v", res)
	}
	d.sim("close", d.waitEvent(locker.EvPickupCompleted, map[string]any{"order_id": ids[0]}).Fields()["compartments"].([]any)[0].(string))
	if res := d.scan("returns", "9787532736744"); res.Outcome != locker.OutcomeReturned {
		t.Fatalf("offline return: %+v", res)
	}
	d.sim("open", "C01")
	d.waitEvent(locker.EvDoorForced, map[string]any{"compartment": "C01"})

	d.kill() // power cut while offline
	d = start(t, c.Config)
	if res := d.scan("keypad", codes[1]); res.Outcome != locker.OutcomeOpened {
		t.Fatalf("offline pickup after restart: %+v", res)
	}
	st := d.status()
	offlineHead := st.LastSeq
	if st.OutboxDepth != int(offlineHead-onlineHead) {
		t.Fatalf("outbox holds %d events, want %d", st.OutboxDepth, offlineHead-onlineHead)
	}

	mq.Start()
	until(t, "every event acked by the central", func() bool { li, _ := hubC.Locker(lockerID); return li.Acked >= offlineHead })
	until(t, "outbox empty", func() bool { return d.status().OutboxDepth == 0 })

	evs, err := hubC.Events(lockerID, hub.Cursor{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i, e := range evs {
		if e.Seq != uint64(i+1) {
			t.Fatalf("central has seq %d at position %d: gap", e.Seq, i)
		}
		if seen[e.ID] {
			t.Fatalf("duplicate id %s", e.ID)
		}
		seen[e.ID] = true
		if e.Seq > onlineHead && !e.Hist {
			t.Errorf("event %s recorded offline but hist=false", e.ID)
		}
	}
	if uint64(len(evs)) < offlineHead {
		t.Fatalf("central has %d events, locker recorded %d", len(evs), offlineHead)
	}
	for _, typ := range []locker.EventType{locker.EvPickupCompleted, locker.EvItemReturned, locker.EvDoorForced, locker.EvDaemonStarted} {
		found := false
		for _, e := range evs {
			found = found || e.Type == string(typ) && e.Seq > onlineHead
		}
		if !found {
			t.Errorf("no offline %s at the central", typ)
		}
	}
	// On the wire, first arrivals are in seq order (re-sends may repeat).
	var last uint64
	first := map[uint64]bool{}
	for _, m := range rec.All() {
		var e protocol.Event
		if json.Unmarshal(m.Payload, &e) != nil || first[e.Seq] {
			continue
		}
		first[e.Seq] = true
		if e.Seq < last {
			t.Fatalf("event seq %d arrived after seq %d", e.Seq, last)
		}
		last = e.Seq
	}
	t.Logf("%d events recorded while the broker was down (across a SIGKILL); central holds %d events, seq 1..%d, all acked, outbox empty",
		offlineHead-onlineHead, len(evs), offlineHead)
	li, _ := hubC.Locker(lockerID)
	if li.Boot != 2 || !li.Online {
		t.Fatalf("central's view of the locker: %+v", li)
	}
}
