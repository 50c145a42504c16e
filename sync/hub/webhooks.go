package hub

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lockerd/lockerd/sync/protocol"
)

// Webhooks tell the library's systems what happened: one event per POST,
// JSON, signed. Each delivery is queued in the hub's store in the
// transaction that records what it tells (an event stored, an alarm
// raised, a circulation exception), so none is lost across restarts and
// none is queued twice. One replica delivers (the lease "webhooks"),
// retrying with exponential back-off and jitter until the delivery's
// deadline; then it is dead, listed for redelivery by hand. Deliveries of
// one order go in order: a later one waits until the earlier is
// delivered or dead. At least once: the receiver deduplicates by the
// event id.

// Webhook event types.
const (
	HookOrderLoaded     = "order.loaded"
	HookPickupCompleted = "pickup.completed"
	HookOrderExpired    = "order.expired"
	HookItemReturned    = "item.returned"
	HookAlarm           = "alarm.raised"
	HookCirculation     = "circulation.exception"
	HookNoSpace         = "load.no_space"
	HookBinEmptied      = "return_bin.emptied" // the list of what was collected, for sorting
)

// HookTypes lists the event types a subscription may take.
var HookTypes = []string{HookOrderLoaded, HookPickupCompleted, HookOrderExpired, HookItemReturned, HookAlarm, HookCirculation, HookNoSpace, HookBinEmptied}

// Signature headers of a delivery.
const (
	HeaderSignature = "X-Lockerhub-Signature" // t=UNIX,v1=hex(HMAC-SHA256(secret, "UNIX." + body))
	HeaderEventID   = "X-Lockerhub-Event-Id"
	HeaderEventType = "X-Lockerhub-Event"
)

const (
	webhookLease      = "webhooks"
	webhookPoll       = 500 * time.Millisecond
	webhookTimeout    = 10 * time.Second
	webhookMaxBackoff = 10 * time.Minute
	maxHookBody       = 64 << 10
)

// Sign is a delivery's signature header for body at ts.
func Sign(secret string, ts time.Time, body []byte) string {
	t := strconv.FormatInt(ts.Unix(), 10)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(t + "."))
	m.Write(body)
	return "t=" + t + ",v1=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a delivery's signature header against body and secret,
// and that it was made within tolerance of now (a replayed old request is
// refused). Receivers written in Go can call it; docs/central.md shows
// the same in Python.
func Verify(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sig == "" {
		return errors.New("signature header: want t=UNIX,v1=HEX")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("signature made %v from now: outside %v", d.Round(time.Second), tolerance)
	}
	want := Sign(secret, time.Unix(sec, 0), body)
	if !hmac.Equal([]byte(want), []byte("t="+ts+",v1="+sig)) {
		return errors.New("signature does not match")
	}
	return nil
}

// NewWebhook is a subscription asked for.
type NewWebhook struct {
	Name   string   `json:"name,omitempty"` // config subscriptions: the id is cfg-NAME
	URL    string   `json:"url"`
	Events []string `json:"events"`
	Secret string   `json:"secret"`
}

func (n NewWebhook) check() error {
	u, err := url.Parse(n.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(n.URL) > 2000 {
		return fmt.Errorf("webhook url %q: want http(s)://host/path, up to 2000 characters", n.URL)
	}
	if len(n.Events) == 0 {
		return fmt.Errorf("webhook: which events? %s", strings.Join(HookTypes, ", "))
	}
	for _, e := range n.Events {
		if !slices.Contains(HookTypes, e) {
			return fmt.Errorf("webhook event %q: known: %s", e, strings.Join(HookTypes, ", "))
		}
	}
	if len(n.Secret) < 16 || len(n.Secret) > 256 {
		return errors.New("webhook secret: 16 to 256 characters")
	}
	return nil
}

// AddWebhook subscribes a URL to event types.
func (h *Hub) AddWebhook(n NewWebhook) (Webhook, error) {
	if err := n.check(); err != nil {
		return Webhook{}, err
	}
	if err := h.egress.CheckURL(n.URL); err != nil {
		return Webhook{}, fmt.Errorf("webhook url: %w", err)
	}
	raw := make([]byte, 5)
	rand.Read(raw)
	w := Webhook{ID: "wh-" + strings.ToLower(base32.StdEncoding.EncodeToString(raw)), URL: n.URL, Events: slices.Clone(n.Events),
		Secret: n.Secret, Source: "api", Created: time.Now().UTC()}
	err := h.store.Update(func(tx Tx) error { return tx.Webhooks.PutWebhook(w) })
	return w.public(), err
}

// public is w without its secret.
func (w Webhook) public() Webhook { w.Secret = ""; return w }

// syncConfigWebhooks makes the store's config subscriptions those of the
// config: added, changed, or removed.
func (h *Hub) syncConfigWebhooks(conf []NewWebhook) error {
	for _, n := range conf {
		if err := n.check(); err != nil {
			return fmt.Errorf("webhook %s: %w", n.Name, err)
		}
		if err := h.egress.CheckURL(n.URL); err != nil {
			return fmt.Errorf("webhook %s: url: %w", n.Name, err)
		}
	}
	return h.store.Update(func(tx Tx) error {
		have, err := tx.Webhooks.Webhooks()
		if err != nil {
			return err
		}
		want := map[string]NewWebhook{}
		for _, n := range conf {
			want["cfg-"+n.Name] = n
		}
		for _, w := range have {
			if w.Source != "config" || !w.Removed.IsZero() {
				continue
			}
			if _, ok := want[w.ID]; !ok {
				if err := h.removeWebhook(tx, w); err != nil {
					return err
				}
			}
		}
		for id, n := range want {
			w := Webhook{ID: id, URL: n.URL, Events: n.Events, Secret: n.Secret, Source: "config", Created: time.Now().UTC()}
			for _, o := range have {
				if o.ID == id && o.Removed.IsZero() {
					w.Created = o.Created
				}
			}
			if err := tx.Webhooks.PutWebhook(w); err != nil {
				return err
			}
		}
		return nil
	})
}

// RemoveWebhook ends a subscription: its pending deliveries are cancelled
// and nothing more is sent to it.
func (h *Hub) RemoveWebhook(id string) error {
	return h.store.Update(func(tx Tx) error {
		all, err := tx.Webhooks.Webhooks()
		if err != nil {
			return err
		}
		for _, w := range all {
			if w.ID == id && w.Removed.IsZero() {
				return h.removeWebhook(tx, w)
			}
		}
		return fmt.Errorf("no webhook %q", id)
	})
}

func (h *Hub) removeWebhook(tx Tx, w Webhook) error {
	w.Removed = time.Now().UTC()
	if err := tx.Webhooks.PutWebhook(w); err != nil {
		return err
	}
	pending, err := tx.Webhooks.PendingDeliveries(0)
	if err != nil {
		return err
	}
	for _, d := range pending {
		if d.Webhook == w.ID {
			d.State, d.Done = DeliveryCancelled, time.Now().UTC()
			if err := tx.Webhooks.PutDelivery(d); err != nil {
				return err
			}
		}
	}
	return nil
}

// Webhooks lists the subscriptions (secrets left out).
func (h *Hub) Webhooks() ([]Webhook, error) {
	var out []Webhook
	err := h.store.View(func(tx Tx) error {
		var err error
		out, err = tx.Webhooks.Webhooks()
		return err
	})
	for i := range out {
		out[i] = out[i].public()
	}
	return out, err
}

// queueHook queues a delivery of typ for every subscription that takes it,
// in tx.
func (h *Hub) queueHook(tx Tx, typ, eventID, order string, payload any) error {
	hooks, err := tx.Webhooks.Webhooks()
	if err != nil || len(hooks) == 0 {
		return err
	}
	body, err := json.Marshal(map[string]any{"id": eventID, "type": typ, "data": payload})
	if err != nil {
		return err
	}
	if len(body) > maxHookBody {
		return fmt.Errorf("webhook payload of %d bytes", len(body))
	}
	now := time.Now().UTC()
	for _, w := range hooks {
		if !w.Removed.IsZero() || !slices.Contains(w.Events, typ) {
			continue
		}
		if _, err := tx.Webhooks.AddDelivery(Delivery{Webhook: w.ID, EventID: eventID, Type: typ, Order: order, Payload: body,
			Created: now, Deadline: now.Add(h.cfg.WebhookDeadline), NextAt: now, State: DeliveryPending}); err != nil {
			return err
		}
	}
	return nil
}

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
	return h.queueHook(tx, e.Type, e.ID, order, payload)
}

// WorkWebhooks delivers what is due at now, once, as the delivery loop
// does every half second while Run serves (tests drive it with a clock
// of their own).
func (h *Hub) WorkWebhooks(ctx context.Context, now time.Time) {
	var pending []Delivery
	var hooks map[string]Webhook
	err := h.store.View(func(tx Tx) error {
		var err error
		if pending, err = tx.Webhooks.PendingDeliveries(1000); err != nil || len(pending) == 0 {
			return err
		}
		all, err := tx.Webhooks.Webhooks()
		hooks = map[string]Webhook{}
		for _, w := range all {
			hooks[w.ID] = w
		}
		return err
	})
	if err != nil || len(pending) == 0 {
		return // nothing to send: the store is not written
	}
	held := false
	if err := h.store.Update(func(tx Tx) error {
		var err error
		held, err = tx.Leases.Claim(webhookLease, h.cfg.Replica, h.cfg.LeaseTTL+2*h.cfg.WebhookTimeout)
		return err
	}); err != nil || !held {
		return
	}
	waiting := map[string]bool{} // subscription + order with an earlier delivery not done
	for _, d := range pending {
		if ctx.Err() != nil {
			return
		}
		key := d.Webhook + "\x00" + d.Order
		if d.Order != "" && waiting[key] {
			continue
		}
		if d.NextAt.After(now) {
			waiting[key] = true
			continue
		}
		w, ok := hooks[d.Webhook]
		if !ok || !w.Removed.IsZero() {
			continue // cancelled with its subscription
		}
		if !h.deliver(ctx, w, d, now) {
			waiting[key] = true
		}
	}
}

// deliver makes one attempt; it reports whether d is done (delivered, or
// dead).
func (h *Hub) deliver(ctx context.Context, w Webhook, d Delivery, now time.Time) bool {
	status, err := h.post(ctx, w, d, time.Now()) // signed at the wall clock's time: the receiver checks it
	d.Attempts++
	d.Status = status
	switch {
	case err == nil && status/100 == 2:
		d.State, d.Done, d.Error = DeliveryDelivered, now, ""
	case status == http.StatusGone:
		d.State, d.Done, d.Error = DeliveryDead, now, "the receiver answered 410 Gone: not retried"
	default:
		if err != nil {
			d.Error = err.Error()
		} else {
			d.Error = fmt.Sprintf("the receiver answered %d", status)
		}
		backoff := min(time.Second<<min(d.Attempts-1, 20), webhookMaxBackoff)
		d.NextAt = now.Add(time.Duration(float64(backoff) * (0.8 + 0.4*mrand.Float64())))
		if d.NextAt.After(d.Deadline) {
			d.State, d.Done = DeliveryDead, now
			d.Error = fmt.Sprintf("gave up after %d attempts (deadline %s): %s", d.Attempts, d.Deadline.Format(time.RFC3339), d.Error)
		}
	}
	if err := h.store.Update(func(tx Tx) error {
		cur, found, err := tx.Webhooks.Delivery(d.ID)
		if err != nil || !found || cur.State != DeliveryPending {
			return err // cancelled meanwhile: left so
		}
		return tx.Webhooks.PutDelivery(d)
	}); err != nil {
		h.log.Warn("webhook delivery not recorded", "id", d.ID, "err", err)
		return false
	}
	if d.State == DeliveryDead {
		h.log.Error("webhook delivery dead", "id", d.ID, "webhook", w.ID, "event", d.EventID, "err", d.Error)
	}
	return d.State != DeliveryPending
}

// post sends d to w.
func (h *Hub) post(ctx context.Context, w Webhook, d Delivery, now time.Time) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.WebhookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(d.Payload))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "lockerhub-webhooks/1")
	req.Header.Set(HeaderEventID, d.EventID)
	req.Header.Set(HeaderEventType, d.Type)
	req.Header.Set(HeaderSignature, Sign(w.Secret, now, d.Payload))
	resp, err := h.hookClient.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode, nil
}

// webhookLoop delivers until ctx ends.
func (h *Hub) webhookLoop(ctx context.Context) {
	tick := time.NewTicker(webhookPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			_ = h.store.Update(func(tx Tx) error { return tx.Leases.Release(webhookLease, h.cfg.Replica) })
			return
		case <-tick.C:
		}
		h.WorkWebhooks(ctx, time.Now())
	}
}

// FailedDeliveries lists the dead deliveries (newest last).
func (h *Hub) FailedDeliveries() ([]Delivery, error) {
	out := []Delivery{}
	err := h.store.View(func(tx Tx) error {
		for after := uint64(0); ; {
			page, err := tx.Webhooks.Deliveries(after, 1000)
			if err != nil {
				return err
			}
			for _, d := range page {
				if d.State == DeliveryDead {
					out = append(out, d)
				}
				after = d.ID
			}
			if len(page) < 1000 {
				return nil
			}
		}
	})
	return out, err
}

// Redeliver queues a dead delivery again, with a new deadline.
func (h *Hub) Redeliver(id uint64) (Delivery, error) {
	var d Delivery
	err := h.store.Update(func(tx Tx) error {
		var found bool
		var err error
		d, found, err = tx.Webhooks.Delivery(id)
		if err != nil {
			return err
		}
		if !found || d.State != DeliveryDead {
			return fmt.Errorf("delivery %d: only a dead one is delivered again", id)
		}
		now := time.Now().UTC()
		d.State, d.Attempts, d.NextAt, d.Deadline, d.Done, d.Error = DeliveryPending, 0, now, now.Add(h.cfg.WebhookDeadline), time.Time{}, ""
		return tx.Webhooks.PutDelivery(d)
	})
	return d, err
}
