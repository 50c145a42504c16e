package webhooktest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lockerd/lockerd/sync/hub/webhook"
)

// TestStore runs the suite on a fresh, empty store.
func TestStore(t *testing.T, s webhook.Store) {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Millisecond)
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	// Subscriptions: by id, a removed one kept and marked, rewritten in
	// place.
	must("subscriptions", s.Update(func(tx webhook.Tx) error {
		for _, id := range []string{"wh-b", "wh-a", "cfg-x"} {
			if err := tx.PutWebhook(webhook.Webhook{ID: id, URL: "https://r.example/" + id, Events: []string{webhook.HookAlarm},
				Secret: "s3cret-s3cret-s3cret", Source: "api", Created: now}); err != nil {
				return err
			}
		}
		return tx.PutWebhook(webhook.Webhook{ID: "wh-b", URL: "https://r.example/b2", Events: webhook.HookTypes, Secret: "x", Removed: now})
	}))
	must("subscriptions read", s.View(func(tx webhook.Tx) error {
		ws, err := tx.Webhooks()
		if err != nil {
			return err
		}
		var ids []string
		for _, w := range ws {
			ids = append(ids, w.ID)
		}
		if !slices.Equal(ids, []string{"cfg-x", "wh-a", "wh-b"}) {
			return fmt.Errorf("subscriptions by id: %v", ids)
		}
		if b := ws[2]; b.URL != "https://r.example/b2" || b.Removed.IsZero() || len(b.Events) != len(webhook.HookTypes) || b.Secret != "x" {
			return fmt.Errorf("rewritten subscription: %+v", b)
		}
		if a := ws[1]; !a.Created.Equal(now) || a.Secret == "" {
			return fmt.Errorf("subscription: %+v", a)
		}
		return nil
	}))
	// Deliveries: numbered from 1 in the order added; state changes
	// written; pending ones listed by id, with a limit; all after an id.
	must("deliveries", s.Update(func(tx webhook.Tx) error {
		for i := range 5 {
			d, err := tx.AddDelivery(webhook.Delivery{Webhook: "wh-a", EventID: fmt.Sprintf("e%d", i), Type: webhook.HookAlarm,
				Payload: []byte(fmt.Sprintf(`{"n":%d}`, i)), Created: now, Deadline: now.Add(time.Hour), NextAt: now, State: webhook.DeliveryPending})
			if err != nil {
				return err
			}
			if d.ID != uint64(i+1) {
				return fmt.Errorf("delivery %d numbered %d", i, d.ID)
			}
		}
		d, found, err := tx.Delivery(2)
		if err != nil || !found || d.EventID != "e1" || string(d.Payload) != `{"n":1}` {
			return fmt.Errorf("delivery 2: %+v %v %v", d, found, err)
		}
		d.State, d.Attempts, d.Status, d.Done = webhook.DeliveryDelivered, 1, 204, now
		if err := tx.PutDelivery(d); err != nil {
			return err
		}
		d, _, _ = tx.Delivery(4)
		d.State, d.Error = webhook.DeliveryDead, "gave up"
		return tx.PutDelivery(d)
	}))
	must("deliveries read", s.View(func(tx webhook.Tx) error {
		if _, found, err := tx.Delivery(99); found || err != nil {
			return fmt.Errorf("delivery 99: found %v, %v", found, err)
		}
		pend, err := tx.PendingDeliveries(0)
		if err != nil || len(pend) != 3 || pend[0].ID != 1 || pend[1].ID != 3 || pend[2].ID != 5 {
			return fmt.Errorf("pending: %+v %v", pend, err)
		}
		if pend, _ := tx.PendingDeliveries(2); len(pend) != 2 || pend[1].ID != 3 {
			return fmt.Errorf("pending, at most 2: %+v", pend)
		}
		all, err := tx.Deliveries(2, 2)
		if err != nil || len(all) != 2 || all[0].ID != 3 || all[1].ID != 4 || all[1].State != webhook.DeliveryDead || all[1].Error != "gave up" {
			return fmt.Errorf("deliveries after 2: %+v %v", all, err)
		}
		if d, _, _ := tx.Delivery(2); d.State != webhook.DeliveryDelivered || d.Status != 204 || !d.Done.Equal(now) {
			return fmt.Errorf("delivered: %+v", d)
		}
		return nil
	}))
	// A failed transaction leaves nothing behind; numbering goes on.
	abort := errors.New("abort")
	if err := s.Update(func(tx webhook.Tx) error {
		if _, err := tx.AddDelivery(webhook.Delivery{Webhook: "wh-a", State: webhook.DeliveryPending}); err != nil {
			return err
		}
		if err := tx.PutWebhook(webhook.Webhook{ID: "wh-rolled"}); err != nil {
			return err
		}
		return abort
	}); !errors.Is(err, abort) {
		t.Fatalf("an aborted transaction: %v", err)
	}
	must("after the abort", s.Update(func(tx webhook.Tx) error {
		ws, _ := tx.Webhooks()
		for _, w := range ws {
			if w.ID == "wh-rolled" {
				return errors.New("an aborted transaction's subscription is there")
			}
		}
		if all, _ := tx.Deliveries(0, 0); len(all) != 5 {
			return fmt.Errorf("%d deliveries after an aborted add", len(all))
		}
		d, err := tx.AddDelivery(webhook.Delivery{Webhook: "wh-a", State: webhook.DeliveryPending})
		if err != nil || d.ID <= 5 {
			return fmt.Errorf("the next delivery numbered %d (%v)", d.ID, err)
		}
		return nil
	}))
}

// Mem is an in-memory webhook store: transactions are serialised, and an
// Update that fails leaves nothing behind.
type Mem struct {
	mu    sync.Mutex
	hooks map[string]webhook.Webhook
	dels  []webhook.Delivery // by id, from 1
}

var _ webhook.Store = (*Mem)(nil)

// NewMem is an empty Mem.
func NewMem() *Mem { return &Mem{hooks: map[string]webhook.Webhook{}} }

func (m *Mem) View(fn func(webhook.Tx) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return fn(&memTx{hooks: m.hooks, dels: m.dels})
}

func (m *Mem) Update(fn func(webhook.Tx) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	tx := &memTx{hooks: map[string]webhook.Webhook{}, dels: slices.Clone(m.dels)}
	for k, v := range m.hooks {
		tx.hooks[k] = v
	}
	if err := fn(tx); err != nil {
		return err
	}
	m.hooks, m.dels = tx.hooks, tx.dels
	return nil
}

type memTx struct {
	hooks map[string]webhook.Webhook
	dels  []webhook.Delivery
}

func (t *memTx) PutWebhook(w webhook.Webhook) error {
	w.Events = slices.Clone(w.Events)
	t.hooks[w.ID] = w
	return nil
}

func (t *memTx) Webhooks() ([]webhook.Webhook, error) {
	out := make([]webhook.Webhook, 0, len(t.hooks))
	for _, w := range t.hooks {
		out = append(out, w)
	}
	slices.SortFunc(out, func(a, b webhook.Webhook) int {
		if a.ID < b.ID {
			return -1
		}
		return 1
	})
	return out, nil
}

func (t *memTx) AddDelivery(d webhook.Delivery) (webhook.Delivery, error) {
	d.ID = uint64(len(t.dels) + 1)
	t.dels = append(t.dels, d)
	return d, nil
}

func (t *memTx) PutDelivery(d webhook.Delivery) error {
	if d.ID == 0 || d.ID > uint64(len(t.dels)) {
		return fmt.Errorf("no delivery %d", d.ID)
	}
	t.dels[d.ID-1] = d
	return nil
}

func (t *memTx) Delivery(id uint64) (webhook.Delivery, bool, error) {
	if id == 0 || id > uint64(len(t.dels)) {
		return webhook.Delivery{}, false, nil
	}
	return t.dels[id-1], true, nil
}

func (t *memTx) PendingDeliveries(limit int) ([]webhook.Delivery, error) {
	var out []webhook.Delivery
	for _, d := range t.dels {
		if d.State == webhook.DeliveryPending && (limit <= 0 || len(out) < limit) {
			out = append(out, d)
		}
	}
	return out, nil
}

func (t *memTx) Deliveries(after uint64, limit int) ([]webhook.Delivery, error) {
	var out []webhook.Delivery
	for _, d := range t.dels {
		if d.ID > after && (limit <= 0 || len(out) < limit) {
			out = append(out, d)
		}
	}
	return out, nil
}
