package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/lockerd/lockerd/drivers/serialscan/serialtest"
	"github.com/lockerd/lockerd/sync/brokertest"
	"github.com/lockerd/lockerd/sync/hub"
	"github.com/lockerd/lockerd/sync/protocol"
)

// brokers are the two brokers the sync tests run against: Mosquitto (a
// library's production broker) and lockerhub's embedded broker.
var brokers = []struct {
	name  string
	start func(t *testing.T) string
}{
	{"mosquitto", func(t *testing.T) string { return brokertest.StartMosquitto(t, brokertest.MosquittoOptions{}).URL }},
	{"embedded", func(t *testing.T) string { return brokertest.StartEmbedded(t, protocol.DefaultPrefix, "lockerhub") }},
}

func upEvents(r *brokertest.Recorder) []protocol.Event {
	var out []protocol.Event
	for _, m := range r.All() {
		if strings.HasSuffix(m.Topic, "/up/evt") {
			var e protocol.Event
			if json.Unmarshal(m.Payload, &e) == nil {
				out = append(out, e)
			}
		}
	}
	return out
}

func TestSyncOnlinePickup(t *testing.T) {
	for _, b := range brokers {
		t.Run(b.name, func(t *testing.T) {
			url := b.start(t)
			key, _ := newKey(t)
			hubC := startCentral(t, url, key, nil, "lockerhub")
			rec := brokertest.Record(t, url, "test-recorder", "lockerhub", nil, protocol.DefaultPrefix+"/+/up/#", protocol.DefaultPrefix+"/+/status")
			c := newCabinet(t, "0s", withMQTT(url, hubC.Pub, ""))
			front := serialtest.Plug(t, c.Front)
			d := start(t, c.Config)
			rec.Wait(10*time.Second, "birth", func(m brokertest.Msg) bool {
				return m.Topic == topics.Status() && strings.Contains(string(m.Payload), `"online":true`)
			})

			created, err := hubC.CreateOrder(hub.NewOrder{Locker: lockerID, Size: "M", Items: []protocol.Item{{Barcode: "31234567", Title: "Fortress Besieged"}}})
			if err != nil {
				t.Fatal(err)
			}
			ack := rec.Wait(10*time.Second, "ack.orders", func(m brokertest.Msg) bool {
				return m.Topic == topics.UpAck() && strings.Contains(string(m.Payload), `"type":"ack.orders"`)
			})
			var ao protocol.AckOrders
			json.Unmarshal(decodeMsg(t, ack.Payload).Data, &ao)
			if len(ao.Applied) != 1 || ao.Applied[0] != created.Order.ID || ao.Rev != created.Order.Rev {
				t.Fatalf("ack.orders: %s", ack.Payload)
			}
			comp := loadOrder(t, d, created.Order.ID)
			front.Write([]byte(created.Code + "\r\n"))
			m := rec.Wait(10*time.Second, "pickup.completed", func(m brokertest.Msg) bool {
				return m.Topic == topics.UpEvt() && strings.Contains(string(m.Payload), `"pickup.completed"`)
			})
			var e protocol.Event
			json.Unmarshal(m.Payload, &e)
			if e.Fields()["order_id"] != created.Order.ID || e.ID != protocol.EventID(lockerID, e.Store, e.Seq) || e.Store == "" || e.Hist || e.Locker != lockerID {
				t.Fatalf("event: %s", m.Payload)
			}
			// The central acks; the locker's outbox empties.
			until(t, "outbox empty", func() bool { return d.status().OutboxDepth == 0 })
			until(t, "hub sees the pickup", func() bool {
				os, _ := hubC.Orders(lockerID)
				return len(os) == 1 && os[0].Status == "picked_up" && os[0].Compartments[0] == comp
			})
			// A signed remote open from the central library.
			cmdID, err := hubC.Open(lockerID, "C01", "reader called support")
			if err != nil {
				t.Fatal(err)
			}
			until(t, "cmd.open answered", func() bool { rec, _ := hubC.Command(cmdID); return rec.Status == protocol.CmdDone })
			d.waitEvent("maintenance.open", map[string]any{"compartment": "C01", "reason": "reader called support"})
		})
	}
}
