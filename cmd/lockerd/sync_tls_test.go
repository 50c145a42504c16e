package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lockerd/lockerd/sync/brokertest"
	"github.com/lockerd/lockerd/sync/hub"
	"github.com/lockerd/lockerd/sync/protocol"
)

// TestTLSAndACL runs the locker against Mosquitto with client
// certificates and the ACL shipped in docs/mosquitto/acl: the locker
// syncs, and another locker's certificate can neither publish into this
// locker's topics nor read its downlink.
func TestTLSAndACL(t *testing.T) {
	acl, err := os.ReadFile("../../docs/mosquitto/acl")
	if err != nil {
		t.Fatal(err)
	}
	pki := brokertest.NewPKI(t)
	mq := brokertest.StartMosquitto(t, brokertest.MosquittoOptions{TLS: pki, ACL: string(acl)})
	key, _ := newKey(t)
	hubC := startCentral(t, mq.URL, key, pki.ClientTLS(t, "lockerhub"), "lockerhub")
	watch := brokertest.Record(t, mq.URL, "test-watch", "", pki.ClientTLS(t, "lockerhub"), protocol.DefaultPrefix+"/+/up/evt")

	cert, keyFile := pki.Client(t, lockerID)
	c := newCabinet(t, "0s", withMQTT(mq.URL, hubC.Pub,
		fmt.Sprintf("  tls: {ca_file: %s, cert_file: %s, key_file: %s}\n", pki.CAFile, cert, keyFile)))
	d := start(t, c.Config)
	until(t, "locker online over TLS", func() bool { li, _ := hubC.Locker(lockerID); return li.Online })

	// Another locker's certificate.
	evil := brokertest.Record(t, mq.URL, "evil-02", "", pki.ClientTLS(t, "evil-02"), topics.DownOrders(), topics.DownCmd())
	forged := fmt.Sprintf(`{"v":1,"id":"%s-999","type":"pickup.completed","locker":"%s","boot":1,"seq":999,"ts":"2026-11-26T10:00:00Z","hist":false,"data":{"order_id":"X"}}`, lockerID, lockerID)
	evil.Publish(topics.UpEvt(), []byte(forged))     // the broker drops it: not evil-02's topic
	evil.Publish(topics.Status(), []byte(`{"v":1}`)) // likewise

	// The locker syncs an order and an event; evil reads none of it.
	created, err := hubC.CreateOrder(hub.NewOrder{Locker: lockerID, Size: "S"})
	if err != nil {
		t.Fatal(err)
	}
	until(t, "order applied over TLS", func() bool { li, _ := hubC.Locker(lockerID); return li.OrdersRev >= created.Order.Rev })
	loadOrder(t, d, created.Order.ID)
	watch.Wait(10*time.Second, "order.loaded from the locker", func(m brokertest.Msg) bool {
		return strings.Contains(string(m.Payload), `"order.loaded"`)
	})
	until(t, "events acked", func() bool { return d.status().OutboxDepth == 0 })
	for _, m := range watch.All() {
		if strings.Contains(string(m.Payload), `"seq":999`) {
			t.Fatal("a locker published into another locker's topics")
		}
	}
	if n := len(evil.All()); n != 0 {
		t.Fatalf("another locker read %d downlink messages", n)
	}
	evs, _ := hubC.Events(lockerID, hub.Cursor{}, 0)
	for _, e := range evs {
		if e.Seq == 999 {
			t.Fatal("the central stored a forged event")
		}
	}
	if li, _ := hubC.Locker(lockerID); li.Boot != d.status().Boot {
		t.Fatalf("status forged: %+v", li)
	}
}
