package locker

// Holds that become orders at a staff scan: staff pull the books on the
// library's hold shelf, bring them to the cabinet and scan each one. An
// item this locker has no order for is asked about at the central, which
// asks the library system whose hold it is and for which pickup point,
// makes the order for that reader and answers with it; the locker applies
// it and opens a compartment for loading. The same reader's items of one
// visit (staff session) join one order: while its door is still open the
// next item goes in the same compartment.
//
// Offline, the scan is recorded (hold.scan_queued) and staff are told it
// waits for the central; the order comes down when the central has made
// it, for a later visit. A refusal (no hold, a hold for another pickup
// point, an unknown item) is shown on the staff screen with its reason.

import (
	"context"
	"errors"
	"maps"
	"slices"
	"time"
)

// HoldScan is what the locker asks the central about an item with no
// order here.
type HoldScan struct {
	Item  string
	Card  string // the reader's card from the hold slip, when asked for
	By    string // the staff badge's name
	Visit string // the staff session's id
	// Loading are the orders whose doors are open for loading now: the
	// same reader's item may join one (and go in through the same door).
	Loading []string
}

// HoldAnswer is the central's signed answer: OK with the order made (or
// joined) for the hold's reader, or a refusal reason (the protocol's
// resp.hold reasons) and the message for the staff.
type HoldAnswer struct {
	OK      bool
	Order   Order
	Reason  string
	Message string
}

// HoldAsker asks the central about a scanned item (the sync link is one).
// It returns an error when the central cannot be asked or does not answer
// within the context's deadline.
type HoldAsker interface {
	AskHold(ctx context.Context, scan HoldScan) (HoldAnswer, error)
}

// HoldAskTimeout bounds the central's answer to a hold scan (it asks the
// library system once or twice).
const HoldAskTimeout = 8 * time.Second

// Outcomes of a hold scan beyond loading.
const (
	// OutcomeQueued: the central could not be asked; the scan is recorded
	// and the order comes when the central has made it.
	OutcomeQueued Outcome = "queued"
	// OutcomeCardNeeded: the library system holds the item but does not
	// say for whom: staff scan the reader's card from the hold slip.
	OutcomeCardNeeded Outcome = "card_needed"
)

// NoticeHold tells the staff screen what a hold scan came to. Data:
// outcome, item, reason, message, order_id, compartment.
const NoticeHold = "hold"

// HoldUnavailable is the central's refusal that queues the scan: the
// library system cannot be asked now (protocol.HoldUnavailable).
const HoldUnavailable = "unavailable"

// maxHoldItemLen bounds a barcode sent to the central as an item.
const maxHoldItemLen = 64

// SetHoldAsker wires the central's hold lookup (nil: an item with no
// order is unknown here). Call before Run.
func (l *Locker) SetHoldAsker(a HoldAsker) {
	l.mu.Lock()
	l.holds = a
	l.mu.Unlock()
}

// holdScan handles a staff scan that matched no order or item here.
func (l *Locker) holdScan(ctx context.Context, s *staffSession, key string) ScanResult {
	l.mu.Lock()
	asker, waiting := l.holds, s.cardFor
	s.cardFor = ""
	l.mu.Unlock()
	if asker == nil || key == "" || len(key) > maxHoldItemLen || !printableASCII(key) {
		return ScanResult{Outcome: OutcomeNothing, Reason: "unknown order or item"}
	}
	scan := HoldScan{Item: key, By: s.badge.Name, Visit: s.visit, Loading: l.loadingOrders()}
	if waiting != "" {
		// The scan after "card needed" is the reader's card from the slip
		// (never kept: it goes to the central once, with the item).
		scan.Item, scan.Card = waiting, key
	}
	actx, cancel := context.WithTimeout(ctx, HoldAskTimeout)
	ans, err := asker.AskHold(actx, scan)
	cancel()
	if err == nil && !ans.OK && ans.Reason == HoldUnavailable {
		// The central is there but cannot ask the library system now
		// (or is flooded): queued all the same, for when it can.
		err = errors.New(ans.Message)
	}
	if err != nil {
		if scan.Card != "" {
			// A slip's card is not queued (a card number is not kept
			// here): the item is, on its own.
			scan.Card = ""
		}
		if rerr := l.update(func(tx Tx) error {
			return l.record(tx, HoldScanQueued{By: scan.By, Item: scan.Item, Visit: scan.Visit})
		}); rerr != nil {
			l.log.Error("hold scan not recorded", "item", scan.Item, "err", rerr)
			return l.holdNotice(scan, ScanResult{Outcome: OutcomeError, Reason: "store"})
		}
		l.log.Info("hold scan queued for the central", "item", scan.Item, "err", err)
		return l.holdNotice(scan, ScanResult{Outcome: OutcomeQueued, Reason: "waits for the central"})
	}
	if !ans.OK {
		if ans.Reason == "no_reader" {
			l.mu.Lock()
			s.cardFor = scan.Item
			l.mu.Unlock()
			return l.holdNotice(scan, ScanResult{Outcome: OutcomeCardNeeded, Reason: ans.Reason, Message: ans.Message})
		}
		l.log.Info("hold scan refused", "item", scan.Item, "reason", ans.Reason)
		return l.holdNotice(scan, ScanResult{Outcome: OutcomeNothing, Reason: ans.Reason, Message: ans.Message})
	}
	if err := l.ApplyOrder(ans.Order); err != nil && !errors.Is(err, ErrStaleRev) {
		l.log.Error("order from a hold scan not applied", "order", ans.Order.ID, "err", err)
		return l.holdNotice(scan, ScanResult{Outcome: OutcomeError, Reason: "store"})
	}
	if id, ok := l.loadingInto(ans.Order.ID); ok {
		// Joined an order whose door is still open: the item goes in too.
		l.log.Info("item joins the order being loaded", "order", ans.Order.ID, "compartment", id)
		return l.holdNotice(scan, ScanResult{Outcome: OutcomeLoading, OrderID: ans.Order.ID, Compartments: []string{id}})
	}
	var o Order
	if err := l.store.View(func(tx Tx) error {
		var err error
		o, err = tx.Order(ans.Order.ID)
		return err
	}); err != nil {
		return l.holdNotice(scan, ScanResult{Outcome: OutcomeError, Reason: "store"})
	}
	if o.State != OrderAssigned {
		return l.holdNotice(scan, ScanResult{Outcome: OutcomeNothing, Reason: "order is " + string(o.State), OrderID: o.ID})
	}
	return l.holdNotice(scan, l.load(ctx, o, s.badge.Name))
}

// loading maps the orders open for loading now to their compartments.
func (l *Locker) loading() map[string]string {
	open := map[string]string{}
	_ = l.store.View(func(tx Tx) error {
		comps, err := tx.Compartments()
		for _, c := range comps {
			if c.State == CompOpen && c.Op == OpLoad && len(open) < maxLoadingSent {
				open[c.OrderID] = c.ID
			}
		}
		return err
	})
	return open
}

// maxLoadingSent bounds the orders a hold scan names as being loaded.
const maxLoadingSent = 16

func (l *Locker) loadingOrders() []string { return slices.Sorted(maps.Keys(l.loading())) }

// loadingInto is the compartment open for loading order id, if any.
func (l *Locker) loadingInto(orderID string) (string, bool) {
	id, ok := l.loading()[orderID]
	return id, ok
}

// holdNotice tells the staff screen what the scan came to, and returns res.
func (l *Locker) holdNotice(scan HoldScan, res ScanResult) ScanResult {
	compartment := ""
	if len(res.Compartments) > 0 {
		compartment = res.Compartments[0]
	}
	l.notify(Notice{Type: NoticeHold, Data: map[string]any{"outcome": string(res.Outcome), "item": scan.Item, "reason": res.Reason,
		"message": res.Message, "order_id": res.OrderID, "compartment": compartment}})
	return res
}
