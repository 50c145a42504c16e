package mqttlink

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/lockerd/lockerd/sync/brokertest"
	"github.com/lockerd/lockerd/sync/protocol"
)

// A link on a real (embedded, in-process) broker, from the first broker
// of its list being down to a clean stop: it connects to the next one,
// announces itself, sends the outbox in order, takes a signed ack.evt and
// refuses a forged one, answers a signed command, sends telemetry, and
// says offline when it stops.
func TestLinkOnABroker(t *testing.T) {
	url := brokertest.StartEmbedded(t, protocol.DefaultPrefix, "central")
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	_, forger, _ := ed25519.GenerateKey(rand.Reader)
	topics := protocol.Topics{Prefix: protocol.DefaultPrefix, Locker: "L1"}
	rec := brokertest.Record(t, url, "central", "", nil, topics.Status(), topics.UpEvt(), topics.UpAck(), topics.UpTele())

	core := newFakeCore(5)
	state := newMemState()
	dead := fmt.Sprintf("tcp://127.0.0.1:%d", brokertest.FreePort(t))
	k, err := New(Config{Brokers: []string{dead, url}, LockerID: "L1", CentralKey: pub, State: state, Version: "test",
		TelemetryPeriod: 50 * time.Millisecond, PublishTimeout: 2 * time.Second,
		StoreSize: func() int64 { return 4096 }, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, core)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- k.Run(ctx) }()

	status := func(online bool) func(brokertest.Msg) bool {
		return func(m brokertest.Msg) bool {
			var st protocol.Status
			return m.Topic == topics.Status() && json.Unmarshal(m.Payload, &st) == nil && st.Online == online
		}
	}
	rec.Wait(10*time.Second, "birth", status(true))
	last := rec.Wait(10*time.Second, "event 5", func(m brokertest.Msg) bool {
		var e protocol.Event
		return m.Topic == topics.UpEvt() && json.Unmarshal(m.Payload, &e) == nil && e.Seq == 5
	})
	_ = last
	var seqs []uint64
	for _, m := range rec.All() {
		var e protocol.Event
		if m.Topic == topics.UpEvt() && json.Unmarshal(m.Payload, &e) == nil {
			seqs = append(seqs, e.Seq)
		}
	}
	for i, s := range seqs[:5] {
		if s != uint64(i+1) {
			t.Fatalf("events published as %v", seqs)
		}
	}
	if !k.Connected() {
		t.Fatal("not connected after publishing")
	}

	sealed := func(key ed25519.PrivateKey, typ, id string, exp *time.Time, data any) []byte {
		body, err := protocol.Encode(typ, id, "L1", "", time.Now(), data)
		if err != nil {
			t.Fatal(err)
		}
		if exp != nil {
			var m map[string]any
			json.Unmarshal(body, &m)
			m["exp"] = exp.UTC()
			body, _ = json.Marshal(m)
		}
		env, err := protocol.Seal(body, key)
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	// A forged ack.evt (another key) is refused; the signed one empties
	// the outbox up to its seq.
	from := rec.Len()
	rec.Publish(topics.DownAck(), sealed(forger, protocol.TypeAckEvt, "ack-forged", nil, protocol.AckEvt{Upto: 5, Store: "store1"}))
	rec.WaitFrom(from, 10*time.Second, "nack of the forged ack", func(m brokertest.Msg) bool {
		var msg protocol.Message
		return m.Topic == topics.UpAck() && json.Unmarshal(m.Payload, &msg) == nil && msg.Type == protocol.TypeNack
	})
	if n := len(core.outbox); n != 5 {
		t.Fatalf("a forged ack removed events: %d left", n)
	}
	rec.Publish(topics.DownAck(), sealed(priv, protocol.TypeAckEvt, "ack-1", nil, protocol.AckEvt{Upto: 3, Store: "store1"}))
	exp := time.Now().Add(time.Minute)
	from = rec.Len()
	rec.Publish(topics.DownCmd(), sealed(priv, protocol.TypeCmdPing, "ping-1", &exp, struct{}{}))
	rec.WaitFrom(from, 10*time.Second, "pong", func(m brokertest.Msg) bool {
		var msg protocol.Message
		return m.Topic == topics.UpAck() && json.Unmarshal(m.Payload, &msg) == nil && msg.Ref == "ping-1"
	})
	// The worker handles messages in order: the ack came before the ping.
	core.mu.Lock()
	left := len(core.outbox)
	core.mu.Unlock()
	if left != 2 {
		t.Fatalf("%d events left after ack.evt up to 3, want 2", left)
	}
	rec.Wait(10*time.Second, "telemetry", func(m brokertest.Msg) bool {
		var tel protocol.Telemetry
		return m.Topic == topics.UpTele() && json.Unmarshal(m.Payload, &tel) == nil && tel.Locker == "L1" && tel.StoreBytes != nil
	})

	from = rec.Len()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	rec.WaitFrom(from, 10*time.Second, "offline status", status(false))
}
