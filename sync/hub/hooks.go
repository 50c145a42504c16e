package hub

import (
	"context"
	"time"

	"github.com/lockerd/lockerd/sync/hub/webhook"
	"github.com/lockerd/lockerd/sync/protocol"
)

// The webhooks of the hub (sync/hub/webhook): which locker events are
// told, and the Hub's methods the API and console call.

// hookFromEvent queues the webhooks a locker's event calls for.
func (h *Hub) hookFromEvent(tx Tx, lockerID string, e protocol.Event, data any) error {
	var order string
	switch d := data.(type) {
	case *protocol.OrderLoaded:
		order = d.OrderID
	case *protocol.PickupCompleted:
		order = d.OrderID
	case *protocol.OrderExpired:
		order = d.OrderID
	case *protocol.LoadNoSpace:
		order = d.OrderID
	case *protocol.ItemReturned, *protocol.ReturnBinEmptied:
	default:
		return nil
	}
	payload := map[string]any{"event": e}
	if order != "" {
		if o, found, err := tx.Orders.Order(lockerID, order); err != nil {
			return err
		} else if found {
			o.CodeHash, o.PatronHash = "", ""
			payload["order"] = o
		}
	}
	return h.hooks.Queue(tx.Webhooks, e.Type, e.ID, order, payload)
}

// AddWebhook subscribes a URL to event types.
func (h *Hub) AddWebhook(n webhook.NewWebhook) (webhook.Webhook, error) { return h.hooks.Add(n) }

// RemoveWebhook ends a subscription: its pending deliveries are cancelled.
func (h *Hub) RemoveWebhook(id string) error { return h.hooks.Remove(id) }

// Webhooks lists the subscriptions (secrets left out).
func (h *Hub) Webhooks() ([]webhook.Webhook, error) { return h.hooks.List() }

// WorkWebhooks delivers what is due at now, once, as the delivery loop
// does every half second while Run serves (tests drive it with a clock
// of their own).
func (h *Hub) WorkWebhooks(ctx context.Context, now time.Time) { h.hooks.Work(ctx, now) }

// FailedDeliveries lists the dead deliveries (newest last).
func (h *Hub) FailedDeliveries() ([]webhook.Delivery, error) { return h.hooks.Failed() }

// Redeliver queues a dead delivery again, with a new deadline.
func (h *Hub) Redeliver(id uint64) (webhook.Delivery, error) { return h.hooks.Redeliver(id) }
