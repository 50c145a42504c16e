package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/locker/httpapi"
	"github.com/lockerd/lockerd/locker/lockertest"
	"github.com/lockerd/lockerd/sync/hub"
	"github.com/lockerd/lockerd/sync/hub/hubtest"
	"github.com/lockerd/lockerd/sync/protocol"
)

const lockerID = "e2e-01"

var topics = protocol.Topics{Prefix: protocol.DefaultPrefix, Locker: lockerID}

// central is the test's central library: an in-process lockerhub.
type central struct {
	*hub.Hub
	Key ed25519.PrivateKey
	Pub string // base64, for the locker's config
}

func newKey(t *testing.T) (ed25519.PrivateKey, string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv, base64.StdEncoding.EncodeToString(pub)
}

// startCentral runs a hub against url until the test ends.
func startCentral(t *testing.T, url string, key ed25519.PrivateKey, tlsCfg *tls.Config, clientID string) *central {
	t.Helper()
	h := hubtest.Start(t, hub.Config{Brokers: []string{url}, SigningKey: key, PickupKey: lockertest.Key, TLS: tlsCfg,
		Lockers: []string{lockerID}, ClientID: clientID})
	return &central{Hub: h, Key: key, Pub: base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey))}
}

// withMQTT adds the mqtt section for broker url to a cabinet's config.
func withMQTT(url, pub, extra string) func(*cabinet) {
	return withBrokers([]string{url}, pub, extra)
}

// withBrokers is withMQTT with several brokers, tried in order.
func withBrokers(urls []string, pub, extra string) func(*cabinet) {
	return func(c *cabinet) {
		c.CentralPub = pub
		list, _ := json.Marshal(urls)
		c.Extra = fmt.Sprintf("mqtt:\n  brokers: %s\n  keepalive: 5s\n  telemetry_period: 10s\n%s", list, extra)
	}
}

// until polls cond (state in another process or the broker) for up to
// 15 s.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	untilWithin(t, what, 15*time.Second, cond)
}

// untilWithin is until with its own bound.
func untilWithin(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// loadOrder has staff load an assigned order through the keypad: badge,
// order id, door closed.
func loadOrder(t *testing.T, d *daemon, orderID string) string {
	t.Helper()
	if res := d.scan("keypad", staffBadge); res.Outcome != locker.OutcomeStaffOn {
		t.Fatalf("badge: %+v", res)
	}
	res := d.scan("keypad", orderID)
	if res.Outcome != locker.OutcomeLoading {
		t.Fatalf("load %s: %+v", orderID, res)
	}
	d.sim("close", res.Compartments[0])
	d.waitEvent(locker.EvOrderLoaded, map[string]any{"order_id": orderID})
	d.scan("keypad", staffBadge)
	return res.Compartments[0]
}

// signed builds a signed downlink message for the test locker.
func signed(t *testing.T, key ed25519.PrivateKey, m protocol.Message, data any) []byte {
	t.Helper()
	if data != nil {
		raw, _ := json.Marshal(data)
		m.Data = raw
	}
	if m.V == 0 {
		m.V = protocol.Version
	}
	if m.TS.IsZero() {
		m.TS = time.Now().UTC()
	}
	body, _ := json.Marshal(m)
	env, err := protocol.Seal(body, key)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func decodeMsg(t *testing.T, payload []byte) protocol.Message {
	t.Helper()
	var m protocol.Message
	if err := json.Unmarshal(payload, &m); err != nil {
		t.Fatalf("bad reply %s: %v", payload, err)
	}
	return m
}

func httpAddOrder(compartment string) httpapi.AddOrderRequest {
	return httpapi.AddOrderRequest{Compartment: compartment}
}

func decodeEvent(payload []byte) *protocol.Event {
	var e protocol.Event
	if json.Unmarshal(payload, &e) != nil || e.Seq == 0 {
		return nil
	}
	return &e
}
