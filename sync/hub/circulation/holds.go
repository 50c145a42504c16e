package circulation

// Holds found at a staff scan: whose hold an item is, for which pickup
// point, asked of the library system (17 Item Information: CY, CT; or 63
// Patron Information's hold items, AS, for the reader on the hold slip).
// docs/sip2.md lists which library systems answer what.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lockerd/lockerd/sync/protocol"
	"github.com/lockerd/lockerd/sync/sip2"
)

// Hold is what the library system says of a scanned item: the reader
// whose hold waits for it (Patron, their card) with their contact and
// language, or a refusal (a protocol resp.hold reason) and the words for
// the staff.
type Hold struct {
	Item    string
	Title   string
	Patron  string
	Email   string
	Phone   string
	Lang    string // zh or en, from the 64's language
	Refusal string
	Message string
}

// ErrNoILS: there is no library system to ask.
var ErrNoILS = errors.New("no library system configured")

// FindHold asks the library system whose hold item is at locker lockerID
// (its pickup location: Locations). card is the reader's card from the
// hold slip, when the library system does not name the reader (no CY):
// the item must then be among that reader's holds. An error is a library
// system that could not be asked (the scan waits, or is queued).
func (b *Bridge) FindHold(ctx context.Context, lockerID, item, card string) (Hold, error) {
	ils := b.cfg.ILS
	if ils == nil {
		return Hold{}, ErrNoILS
	}
	h := Hold{Item: item}
	if item == "" || len(item) > MaxBarcodeLen || strings.ContainsAny(item, "|\r\n") {
		h.Refusal, h.Message = protocol.HoldUnknownItem, "not an item barcode"
		return h, nil
	}
	info, err := ils.ItemInformation(ctx, item)
	if err != nil {
		return Hold{}, fmt.Errorf("item information: %w", err)
	}
	h.Title = info.Title
	here := b.location(lockerID)
	switch {
	case info.Status == sip2.StatusOther && info.Title == "":
		h.Refusal, h.Message = protocol.HoldUnknownItem, "the library system does not know item "+item
		return h, nil
	case info.Status == sip2.StatusCharged:
		h.Refusal, h.Message = protocol.HoldNone, "item "+item+" is on loan"
		return h, nil
	case info.HoldPickup != "" && !strings.EqualFold(info.HoldPickup, here):
		h.Refusal, h.Message = protocol.HoldElsewhere, fmt.Sprintf("the hold on item %s is for pickup at %s, not here (%s)", item, info.HoldPickup, here)
		return h, nil
	case info.HoldPatron != "":
		h.Patron = info.HoldPatron
	case info.Status != sip2.StatusOnHoldShelf && info.HoldQueue == 0:
		h.Refusal, h.Message = protocol.HoldNone, "no hold waits for item "+item
		return h, nil
	case card == "":
		h.Refusal, h.Message = protocol.HoldNoReader, "the library system holds item "+item+" but does not say for whom: scan the reader's card on the hold slip"
		return h, nil
	default:
		h.Patron = card
	}
	p, err := ils.PatronHolds(ctx, h.Patron)
	if err != nil {
		return Hold{}, fmt.Errorf("patron information: %w", err)
	}
	switch {
	case !p.Valid || p.Blocked:
		h.Refusal, h.Message = protocol.HoldRefused, "the library system refuses the reader's card"
		if p.Screen != "" {
			h.Message += ": " + p.Screen
		}
		return h, nil
	case info.HoldPatron == "" && !slices.Contains(p.Holds, item):
		// The reader on the slip, checked: no hold of theirs on this item.
		h.Refusal, h.Message = protocol.HoldNotTheirs, "the card scanned has no hold on item "+item
		h.Patron = ""
		return h, nil
	}
	h.Email, h.Phone, h.Lang = p.Email, p.Phone, langOf(p.Language)
	return h, nil
}

// langOf is a notice language from a SIP2 language code (019 Chinese,
// 027 Taiwanese; the rest English).
func langOf(code string) string {
	if code == "019" || code == "027" {
		return "zh"
	}
	return "en"
}

// HoldOrder asks the hub for the order of a hold found at a staff scan:
// the reader's items of one visit share one pickup code.
type HoldOrder struct {
	Locker, Visit, By string
	Hold              Hold
	// Loading are the orders whose doors are open for loading at the
	// locker now (the scan's): the same reader's item joins one of them.
	Loading []string
}

// holdOne works a hold scan queued while its locker was offline: the hold
// found, its order made; or the refusal kept for the staff.
func (b *Bridge) holdOne(ctx context.Context, c CircRec) (finished, stop bool) {
	start := time.Now()
	h, err := b.FindHold(ctx, c.Locker, c.Item, "")
	b.cfg.Metrics.RTT(c.Kind, time.Since(start), err)
	if err != nil {
		b.circFailed(c, err, false)
		return false, true
	}
	if h.Refusal != "" || b.cfg.OrderHold == nil {
		b.circFinish(c, func(rec *CircRec) {
			rec.State, rec.Title, rec.LastError, rec.Screen = CircRefused, h.Title, h.Refusal, h.Message
			if h.Refusal == "" {
				rec.State, rec.LastError = CircException, "no order service for holds"
			}
		})
		return true, false
	}
	id, err := b.cfg.OrderHold(ctx, HoldOrder{Locker: c.Locker, Visit: c.Visit, By: c.By, Hold: h})
	b.circFinish(c, func(rec *CircRec) {
		rec.Patron, rec.Title, rec.Order, rec.OK, rec.State = h.Patron, h.Title, id, err == nil, CircDone
		if err != nil {
			rec.State, rec.LastError = CircRefused, "order not made: "+err.Error()
		}
	})
	return true, false
}

// RecordHold keeps a hold scan answered at once (the locker online) in
// the queue's list, done or refused, for the console and `circ list`.
func (b *Bridge) RecordHold(lockerID, visit, by string, h Hold, orderID string, orderErr error) error {
	now := time.Now().UTC()
	c := CircRec{Locker: lockerID, Kind: CircHold, Item: h.Item, Title: h.Title, Patron: h.Patron, Visit: visit, By: by,
		EventAt: now, Queued: now, Done: now, Order: orderID, State: CircDone, OK: true}
	switch {
	case h.Refusal != "":
		c.State, c.OK, c.LastError, c.Screen = CircRefused, false, h.Refusal, h.Message
	case orderErr != nil:
		c.State, c.OK, c.LastError = CircRefused, false, "order not made: "+orderErr.Error()
	}
	return b.cfg.Store.Update(func(tx Tx) error {
		_, err := tx.Circ.AddCirc(c)
		return err
	})
}
