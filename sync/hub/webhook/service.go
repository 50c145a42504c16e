package webhook

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

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

// Add subscribes a URL to event types.
func (s *Service) Add(n NewWebhook) (Webhook, error) {
	if err := n.check(); err != nil {
		return Webhook{}, err
	}
	if err := s.cfg.Egress.CheckURL(n.URL); err != nil {
		return Webhook{}, fmt.Errorf("webhook url: %w", err)
	}
	raw := make([]byte, 5)
	rand.Read(raw)
	w := Webhook{ID: "wh-" + strings.ToLower(base32.StdEncoding.EncodeToString(raw)), URL: n.URL, Events: slices.Clone(n.Events),
		Secret: n.Secret, Source: "api", Created: time.Now().UTC()}
	err := s.cfg.Store.Update(func(tx Tx) error { return tx.PutWebhook(w) })
	return w.public(), err
}

// public is w without its secret.
func (w Webhook) public() Webhook { w.Secret = ""; return w }

// SyncConfig makes the store's config subscriptions those of the
// config: added, changed, or removed.
func (s *Service) SyncConfig(conf []NewWebhook) error {
	for _, n := range conf {
		if err := n.check(); err != nil {
			return fmt.Errorf("webhook %s: %w", n.Name, err)
		}
		if err := s.cfg.Egress.CheckURL(n.URL); err != nil {
			return fmt.Errorf("webhook %s: url: %w", n.Name, err)
		}
	}
	return s.cfg.Store.Update(func(tx Tx) error {
		have, err := tx.Webhooks()
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
				if err := remove(tx, w); err != nil {
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
			if err := tx.PutWebhook(w); err != nil {
				return err
			}
		}
		return nil
	})
}

// Remove ends a subscription: its pending deliveries are cancelled
// and nothing more is sent to it.
func (s *Service) Remove(id string) error {
	return s.cfg.Store.Update(func(tx Tx) error {
		all, err := tx.Webhooks()
		if err != nil {
			return err
		}
		for _, w := range all {
			if w.ID == id && w.Removed.IsZero() {
				return remove(tx, w)
			}
		}
		return fmt.Errorf("no webhook %q", id)
	})
}

func remove(tx Tx, w Webhook) error {
	w.Removed = time.Now().UTC()
	if err := tx.PutWebhook(w); err != nil {
		return err
	}
	pending, err := tx.PendingDeliveries(0)
	if err != nil {
		return err
	}
	for _, d := range pending {
		if d.Webhook == w.ID {
			d.State, d.Done = DeliveryCancelled, time.Now().UTC()
			if err := tx.PutDelivery(d); err != nil {
				return err
			}
		}
	}
	return nil
}

// List lists the subscriptions (secrets left out).
func (s *Service) List() ([]Webhook, error) {
	var out []Webhook
	err := s.cfg.Store.View(func(tx Tx) error {
		var err error
		out, err = tx.Webhooks()
		return err
	})
	for i := range out {
		out[i] = out[i].public()
	}
	return out, err
}

// Queue queues a delivery of typ for every subscription that takes it,
// in tx.
func (s *Service) Queue(tx Tx, typ, eventID, order string, payload any) error {
	hooks, err := tx.Webhooks()
	if err != nil || len(hooks) == 0 {
		return err
	}
	body, err := json.Marshal(map[string]any{"id": eventID, "type": typ, "data": payload})
	if err != nil {
		return err
	}
	if len(body) > maxBody {
		return fmt.Errorf("webhook payload of %d bytes", len(body))
	}
	now := time.Now().UTC()
	for _, w := range hooks {
		if !w.Removed.IsZero() || !slices.Contains(w.Events, typ) {
			continue
		}
		if _, err := tx.AddDelivery(Delivery{Webhook: w.ID, EventID: eventID, Type: typ, Order: order, Payload: body,
			Created: now, Deadline: now.Add(s.cfg.Deadline), NextAt: now, State: DeliveryPending}); err != nil {
			return err
		}
	}
	return nil
}

// Work delivers what is due at now, once, as the delivery loop
// does every half second while Run serves (tests drive it with a clock
// of their own).
func (s *Service) Work(ctx context.Context, now time.Time) {
	var pending []Delivery
	var hooks map[string]Webhook
	err := s.cfg.Store.View(func(tx Tx) error {
		var err error
		if pending, err = tx.PendingDeliveries(1000); err != nil || len(pending) == 0 {
			return err
		}
		all, err := tx.Webhooks()
		hooks = map[string]Webhook{}
		for _, w := range all {
			hooks[w.ID] = w
		}
		return err
	})
	if err != nil || len(pending) == 0 {
		return // nothing to send: the store is not written
	}
	// One replica delivers: the lease outlasts a request, and is renewed
	// within a round once half of it is gone, so that a long round never
	// overlaps another replica's (each would POST what the other does).
	hold := s.cfg.LeaseTTL + 2*s.cfg.Timeout
	if held, err := s.cfg.Lease.Claim(hold); err != nil || !held {
		return
	}
	claimed := time.Now()
	waiting := map[string]bool{} // subscription + order with an earlier delivery not done
	for _, d := range pending {
		if ctx.Err() != nil {
			return
		}
		if time.Since(claimed) > hold/2 {
			if held, err := s.cfg.Lease.Claim(hold); err != nil || !held {
				return
			}
			claimed = time.Now()
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
		done, err := s.deliver(ctx, w, d, now)
		if err != nil {
			// The outcome is not recorded: the round stops here. Going
			// on would POST the next ones with nothing recording them
			// either, and every one would be sent again.
			s.log.Warn("webhook delivery not recorded: the round stops", "id", d.ID, "err", err)
			return
		}
		if !done {
			waiting[key] = true
		}
	}
}

// deliver makes one attempt; it reports whether d is done (delivered, or
// dead), or that its outcome could not be recorded.
func (s *Service) deliver(ctx context.Context, w Webhook, d Delivery, now time.Time) (bool, error) {
	status, err := s.post(ctx, w, d, time.Now()) // signed at the wall clock's time: the receiver checks it
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
		backoff := min(time.Second<<min(d.Attempts-1, 20), maxBackoff)
		d.NextAt = now.Add(time.Duration(float64(backoff) * (0.8 + 0.4*mrand.Float64())))
		if d.NextAt.After(d.Deadline) {
			d.State, d.Done = DeliveryDead, now
			d.Error = fmt.Sprintf("gave up after %d attempts (deadline %s): %s", d.Attempts, d.Deadline.Format(time.RFC3339), d.Error)
		}
	}
	if err := s.cfg.Store.Update(func(tx Tx) error {
		cur, found, err := tx.Delivery(d.ID)
		if err != nil || !found || cur.State != DeliveryPending {
			return err // cancelled meanwhile: left so
		}
		return tx.PutDelivery(d)
	}); err != nil {
		return false, err
	}
	if d.State == DeliveryDead {
		s.log.Error("webhook delivery dead", "id", d.ID, "webhook", w.ID, "event", d.EventID, "err", d.Error)
	}
	return d.State != DeliveryPending, nil
}

// post sends d to w.
func (s *Service) post(ctx context.Context, w Webhook, d Delivery, now time.Time) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
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
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode, nil
}

// Run delivers until ctx ends.
func (s *Service) Run(ctx context.Context) {
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			_ = s.cfg.Lease.Release()
			return
		case <-tick.C:
		}
		s.Work(ctx, time.Now())
	}
}

// Failed lists the dead deliveries (newest last).
func (s *Service) Failed() ([]Delivery, error) {
	out := []Delivery{}
	err := s.cfg.Store.View(func(tx Tx) error {
		for after := uint64(0); ; {
			page, err := tx.Deliveries(after, 1000)
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
func (s *Service) Redeliver(id uint64) (Delivery, error) {
	var d Delivery
	err := s.cfg.Store.Update(func(tx Tx) error {
		var found bool
		var err error
		d, found, err = tx.Delivery(id)
		if err != nil {
			return err
		}
		if !found || d.State != DeliveryDead {
			return fmt.Errorf("delivery %d: only a dead one is delivered again", id)
		}
		now := time.Now().UTC()
		d.State, d.Attempts, d.NextAt, d.Deadline, d.Done, d.Error = DeliveryPending, 0, now, now.Add(s.cfg.Deadline), time.Time{}, ""
		return tx.PutDelivery(d)
	})
	return d, err
}
