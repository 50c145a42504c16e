package main

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/lockerd/lockerd/cmd/internal/fleetsim"
	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/sync/protocol"
)

// benchOutbox: n events recorded while offline, then replayed to
// Mosquitto until the central library has acked them all; against a bare
// paho QoS 1 publisher sending the same payloads to the same broker in
// the same run.
func benchOutbox(args []string) error {
	fs := newFlags("outbox")
	n := fs.Int("events", 30000, "events")
	fs.Parse(args)
	return withBroker("outbox", func(dir, url string) error { return outboxRun(dir, url, n) })
}

func outboxRun(dir, url string, n *int) error {
	// The locker, with n events recorded while offline.
	r, err := fleetsim.New(dir, "bench-01")
	if err != nil {
		return err
	}
	defer r.Close()
	for done := 0; done < *n; {
		err := r.Store.Update(func(tx locker.Tx) error {
			for i := 0; i < 1000 && done < *n; i, done = i+1, done+1 {
				d := locker.ItemReturned{Barcode: fmt.Sprintf("978%010d", done), Scanner: "returns"}
				if _, err := tx.Record(locker.Event{Type: d.EventType(), TS: time.Now().UTC(), Boot: 1, Data: locker.DataOf(d)}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	st, _ := r.L.SyncState()
	sample, _ := r.L.Events(0, 1)
	payload, _ := json.Marshal(protocol.Event{V: 1, ID: "bench-01-1", Type: string(sample[0].Type), Locker: "bench-01", Boot: 1, Seq: 1, TS: sample[0].TS, Data: sample[0].Data})

	// Baseline: a bare paho QoS 1 publisher, one message after another.
	base := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID("bench-baseline"))
	if tok := base.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return fmt.Errorf("baseline connect: %v", tok.Error())
	}
	t0 := time.Now()
	for i := 0; i < *n; i++ {
		if tok := base.Publish("bench/baseline", 1, false, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			return fmt.Errorf("baseline publish: %v", tok.Error())
		}
	}
	baseline := time.Since(t0)
	base.Disconnect(100)

	// lockerd's link and lockerhub.
	h, key, stopHub, err := startHub(dir, url, "base-02", "bench-01")
	if err != nil {
		return err
	}
	defer stopHub()
	// Baseline 2: the same bare publisher, with lockerhub consuming and
	// acking (the same end condition as the replay: all stored centrally).
	pub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID("bench-baseline-2"))
	if tok := pub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return fmt.Errorf("baseline connect: %v", tok.Error())
	}
	t2 := time.Now()
	for i := 1; i <= *n; i++ {
		e, _ := json.Marshal(protocol.Event{V: 1, ID: protocol.EventID("base-02", "", uint64(i)), Type: string(sample[0].Type),
			Locker: "base-02", Boot: 1, Seq: uint64(i), TS: sample[0].TS, Data: sample[0].Data})
		if tok := pub.Publish("lockers/v1/base-02/up/evt", 1, false, e); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			return fmt.Errorf("baseline publish: %v", tok.Error())
		}
	}
	for {
		if li, _ := h.Locker("base-02"); li.Acked >= uint64(*n) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	consumed := time.Since(t2)
	pub.Disconnect(100)

	t1 := time.Now()
	if err := r.Connect([]string{url}, key.Public().(ed25519.PublicKey), quiet); err != nil {
		return err
	}
	deadline := time.Now().Add(10 * time.Minute)
	for {
		li, _ := h.Locker("bench-01")
		if li.Acked >= st.OutboxHead {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("replay not acked in 10 min (%d of %d)", li.Acked, st.OutboxHead)
		}
		time.Sleep(5 * time.Millisecond)
	}
	replay := time.Since(t1)
	for { // and the outbox empties
		if s, _ := r.L.SyncState(); s.Depth == 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	total := time.Since(t1)
	rate := func(d time.Duration) float64 { return float64(*n) / d.Seconds() }
	fmt.Println("| events | bare paho QoS 1 publisher, no consumer | same, until lockerhub stored all | lockerd replay until lockerhub acked all | ratio to 1st | ratio to 2nd | outbox empty after |")
	fmt.Println("|---|---|---|---|---|---|---|")
	fmt.Printf("| %d | %.0f events/s (%.2f s) | %.0f events/s (%.2f s) | %.0f events/s (%.2f s) | %.2f× | %.2f× | %.2f s |\n", *n,
		rate(baseline), baseline.Seconds(), rate(consumed), consumed.Seconds(), rate(replay), replay.Seconds(),
		rate(replay)/rate(baseline), rate(replay)/rate(consumed), total.Seconds())
	return nil
}
