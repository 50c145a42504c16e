package hub_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/lockerd/lockerd/locker/lockertest"
	"github.com/lockerd/lockerd/sync/brokertest"
	"github.com/lockerd/lockerd/sync/hub"
	"github.com/lockerd/lockerd/sync/protocol"
)

// newHub runs a hub on an embedded broker until the test ends; it returns
// the hub, the broker's URL and the hub's public key.
func newHub(t *testing.T) (*hub.Hub, string, ed25519.PublicKey) {
	t.Helper()
	url := brokertest.StartEmbedded(t, protocol.DefaultPrefix, "lockerhub")
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	h, err := hub.New(hub.Config{Brokers: []string{url}, SigningKey: priv, PickupKey: lockertest.Key,
		StorePath: filepath.Join(t.TempDir(), "hub.db"), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; h.Close() })
	for deadline := time.Now().Add(10 * time.Second); !h.Connected(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("hub did not connect")
		}
	}
	return h, url, pub
}

// Order changes made at once (orders created from many requests, a
// snapshot among them) reach the broker in rev order, and the snapshot
// holds exactly the orders of revs below its own.
func TestOrderChangesPublishedInRevOrder(t *testing.T) {
	h, url, pub := newHub(t)
	topics := protocol.Topics{Prefix: protocol.DefaultPrefix, Locker: "nb-1"}
	rec := brokertest.Record(t, url, "test-locker", "lockerhub", nil, topics.DownOrders())
	var wg sync.WaitGroup
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i == 20 {
				if _, _, err := h.Snapshot("nb-1", 500); err != nil {
					t.Error(err)
				}
				return
			}
			if _, err := h.CreateOrder(hub.NewOrder{Locker: "nb-1"}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	rec.WaitFrom(39, 10*time.Second, "40 order changes", func(brokertest.Msg) bool { return true })
	var last uint64
	var snapRev uint64
	var snapOrders []protocol.Order
	for _, m := range rec.All() {
		body, err := protocol.Open(m.Payload, pub)
		if err != nil {
			t.Fatal(err)
		}
		msg, err := protocol.Decode(body, "nb-1")
		if err != nil {
			t.Fatal(err)
		}
		var rev uint64
		switch msg.Type {
		case protocol.TypeOrdersUpsert:
			var d protocol.OrdersUpsert
			json.Unmarshal(msg.Data, &d)
			rev = d.Orders[0].Rev
		case protocol.TypeOrdersSnapshot:
			var d protocol.OrdersSnapshot
			json.Unmarshal(msg.Data, &d)
			rev, snapRev, snapOrders = d.Rev, d.Rev, d.Orders
		}
		if rev <= last {
			t.Fatalf("rev %d published after rev %d", rev, last)
		}
		last = rev
	}
	if len(snapOrders) != int(snapRev-1) {
		t.Fatalf("snapshot at rev %d holds %d orders, want the %d made before it", snapRev, len(snapOrders), snapRev-1)
	}
	for _, o := range snapOrders {
		if o.Rev >= snapRev {
			t.Fatalf("snapshot at rev %d holds order rev %d", snapRev, o.Rev)
		}
	}
}
