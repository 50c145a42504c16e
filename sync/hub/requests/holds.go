package requests

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/lockerd/lockerd/sync/hub"
	"github.com/lockerd/lockerd/sync/hub/circulation"
	"github.com/lockerd/lockerd/sync/hub/notice"
	"github.com/lockerd/lockerd/sync/protocol"
)

// Scan looks up a scanned item's hold and makes (or finds) its order.
func (s *Service) Scan(ctx context.Context, lockerID string, req protocol.ReqHold) protocol.RespHold {
	h, err := s.cfg.Finder.FindHold(ctx, lockerID, req.Item, req.Card)
	if errors.Is(err, circulation.ErrNoILS) {
		return protocol.RespHold{Reason: protocol.HoldRefused, Message: "this central has no library system to ask whose hold an item is"}
	}
	if err != nil {
		// Not recorded: the locker queues the scan (hold.scan_queued).
		s.log.Warn("hold scan: the library system could not be asked", "locker", lockerID, "item", req.Item, "err", err)
		return protocol.RespHold{Reason: protocol.HoldUnavailable, Message: "the library system cannot be asked now: the scan is queued"}
	}
	var o hub.OrderRec
	if h.Refusal == "" {
		o, err = s.order(circulation.HoldOrder{Locker: lockerID, Visit: req.Visit, By: req.By, Hold: h, Loading: req.Loading})
	}
	if rerr := s.cfg.Finder.RecordHold(lockerID, req.Visit, req.By, h, o.ID, err); rerr != nil {
		s.log.Error("hold scan not recorded", "locker", lockerID, "item", req.Item, "err", rerr)
	}
	switch {
	case h.Refusal != "":
		s.log.Info("hold scan refused", "locker", lockerID, "item", req.Item, "reason", h.Refusal)
		return protocol.RespHold{Reason: h.Refusal, Message: h.Message}
	case err != nil:
		s.log.Error("hold scan: order not made", "locker", lockerID, "item", req.Item, "err", err)
		return protocol.RespHold{Reason: protocol.HoldRefused, Message: "no order could be made: " + err.Error()}
	}
	s.log.Info("hold scan: order", "locker", lockerID, "item", req.Item, "order", o.ID)
	return protocol.RespHold{OK: true, Order: &o.Order}
}

// OrderHold makes the order of a hold found for a scan queued offline
// (circulation.Circulation.OrderHold).
func (s *Service) OrderHold(_ context.Context, ho circulation.HoldOrder) (string, error) {
	o, err := s.order(ho)
	return o.ID, err
}

// order makes the order of a hold at a locker, or finds the one made for
// the same scan before (its id is the visit's and the item's: a scan
// answered late, or asked again, makes no second order). The same
// reader's order of the visit whose door is open for loading takes the
// item in; else one of theirs of the visit, still live, gives the new
// order its code: one code opens all of a visit's orders of a reader.
// The visit's orders are remembered here (the leader's memory, a day):
// looking them up costs a few reads, however many orders the locker has
// had. After a restart or a change of leader a visit's next item gets a
// code of its own. An item the locker already has an order for is not
// asked about (the locker finds it by barcode first).
func (s *Service) order(ho circulation.HoldOrder) (hub.OrderRec, error) {
	id := OrderID(ho.Locker, ho.Visit, ho.Hold.Item)
	if o, found, err := s.cfg.Hub.Order(ho.Locker, id); err != nil || found {
		return o, err
	}
	var same string
	for _, v := range s.visits.of(ho.Locker, ho.Visit) {
		if v.patron != ho.Hold.Patron {
			continue
		}
		o, found, err := s.cfg.Hub.Order(ho.Locker, v.order)
		if err != nil {
			return hub.OrderRec{}, err
		}
		if !found || o.Status != "assigned" && o.Status != "ready" {
			continue
		}
		if o.Status == "assigned" && slices.Contains(ho.Loading, o.ID) && len(o.Items) < hub.MaxItems {
			return s.cfg.Hub.AddOrderItem(ho.Locker, o.ID, protocol.Item{Barcode: ho.Hold.Item, Title: title(ho.Hold.Title)})
		}
		same = o.ID
	}
	req := hub.NewOrder{Locker: ho.Locker, ID: id, Patron: ho.Hold.Patron, Items: []protocol.Item{{Barcode: ho.Hold.Item, Title: title(ho.Hold.Title)}},
		TTL: s.cfg.TTL.String(), SameCodeAs: same, Source: "hold"}
	if c := (notice.Contact{Email: ho.Hold.Email, Phone: ho.Hold.Phone, Lang: ho.Hold.Lang}); c.Check() == nil {
		req.Contact = c // a contact the library system keeps malformed is not used
	}
	created, err := s.cfg.Hub.CreateOrder(req)
	if err != nil {
		return hub.OrderRec{}, fmt.Errorf("order for the hold on %s: %w", ho.Hold.Item, err)
	}
	if ho.Visit != "" {
		s.visits.add(ho.Locker, ho.Visit, visitOrder{order: id, patron: ho.Hold.Patron}, time.Now())
	}
	return created.Order, nil
}

// visitOrder is an order made in a staff visit, for whom.
type visitOrder struct{ order, patron string }

// visits remembers the orders each staff visit made: at most maxVisits
// visits; when full, those over a day old are forgotten first, then any.
type visits struct {
	mu sync.Mutex
	by map[string]*visitRec
}

type visitRec struct {
	at     time.Time
	orders []visitOrder
}

const (
	maxVisits       = 10000
	visitRemembered = 24 * time.Hour
)

func (v *visits) of(lockerID, visit string) []visitOrder {
	if visit == "" {
		return nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if r := v.by[lockerID+"\x00"+visit]; r != nil {
		return slices.Clone(r.orders)
	}
	return nil
}

func (v *visits) add(lockerID, visit string, o visitOrder, now time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.by == nil {
		v.by = map[string]*visitRec{}
	}
	key := lockerID + "\x00" + visit
	r := v.by[key]
	if r == nil {
		if len(v.by) >= maxVisits {
			for k, old := range v.by {
				if now.Sub(old.at) > visitRemembered {
					delete(v.by, k)
				}
			}
			for k := range v.by {
				if len(v.by) < maxVisits {
					break
				}
				delete(v.by, k)
			}
		}
		r = &visitRec{}
		v.by[key] = r
	}
	r.at = now
	if len(r.orders) < hub.MaxItems {
		r.orders = append(r.orders, o)
	}
}

// title bounds a title from the library system to an order's.
func title(t string) string {
	if r := []rune(t); len(r) > 200 {
		return string(r[:200])
	}
	return t
}

// OrderID is the id of the order of item's hold scanned in a visit at a
// locker: H-, a digest of the locker and visit, one of the item.
func OrderID(lockerID, visit, item string) string {
	d := sha256.Sum256([]byte(item))
	return visitPrefix(lockerID, visit) + hex.EncodeToString(d[:5])
}

func visitPrefix(lockerID, visit string) string {
	d := sha256.Sum256([]byte(lockerID + "\x00" + visit))
	return "H-" + hex.EncodeToString(d[:5]) + "-"
}
