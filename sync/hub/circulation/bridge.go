package circulation

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lockerd/lockerd/sync/hub/alarm"
	"github.com/lockerd/lockerd/sync/hub/webhook"
	"github.com/lockerd/lockerd/sync/protocol"
	"github.com/lockerd/lockerd/sync/sip2"
)

// The circulation bridge records loans and returns in the library's
// system (the ILS) over SIP2. The door decision stays at the locker; the
// bridge is fed by the events the hub stores:
//   - pickup.completed queues one checkout per item of the order;
//   - item.returned queues a checkin;
//   - order.loaded queues a checkin per item with CheckinOnLoad.
// They are queued in the transaction that stores the event, which stores
// each event once: each transaction is queued once, whatever replica
// hears the event and however often it comes.
//
// One replica at a time works the queue (the lease circLease), in order,
// one transaction after another; a transaction of an item waits for the
// earlier ones of the same item (a checkout goes before a later checkin).
// SIP2 has no idempotency key: a checkout is marked sending in the store
// before it is written, and one found sending (a crash, a dropped
// connection, no reply) is looked up first — 17 Item Information, then
// the patron's charged items (63) — and sent again only when the ILS does
// not have it. A checkin sent twice is harmless.

// ILS is what the bridge needs of the library's system: *sip2.Session.
type ILS interface {
	State() sip2.State
	Checkout(ctx context.Context, c sip2.Checkout) (sip2.CheckoutResult, error)
	Checkin(ctx context.Context, c sip2.Checkin) (sip2.CheckinResult, error)
	ItemInformation(ctx context.Context, item string) (sip2.ItemInfo, error)
	PatronInformation(ctx context.Context, patron, pin string, charged bool) (sip2.PatronInfo, error)
	PatronStatus(ctx context.Context, patron, pin string) (sip2.PatronInfo, error)
	PatronHolds(ctx context.Context, patron string) (sip2.PatronInfo, error)
}

var _ ILS = (*sip2.Session)(nil)

// Circulation configures the bridge.
type Circulation struct {
	ILS ILS // nil: no bridge, and nothing is queued for one
	// CheckPatron asks the ILS about an order's patron before creating
	// it; an unknown or blocked patron refuses the order.
	CheckPatron bool
	// CheckinOnLoad checks an order's items in when they are loaded (some
	// ILSs need it to mark the hold as at the locker).
	CheckinOnLoad bool
	// MaxAttempts: a transaction that got no reply this many times
	// becomes an exception (default 5).
	MaxAttempts int
	// Locations are a checkin's current location (AP) by locker; a
	// locker not there gives its id.
	Locations map[string]string
	// AlarmAfter: the library system unreachable, or refusing a kind of
	// transaction that waits, this long raises ils.unavailable (0: 3m).
	AlarmAfter time.Duration
	// OrderHold makes (or finds) the order for a hold found at a staff
	// scan queued while the locker was offline (sync/hub/requests; nil: such
	// scans stay queued as exceptions).
	OrderHold func(ctx context.Context, o HoldOrder) (orderID string, err error)
}

const (
	// circLease is the name of the lease of the bridge's work.
	circLease = "sip2.bridge"
	// circPoll spaces the bridge's looks at the queue.
	circPoll = 500 * time.Millisecond
	// noBlockAfter: a transaction told to the ILS this long after it
	// happened is sent with no-block Y (the reader already has the book:
	// the ILS records it whatever its rules say now).
	noBlockAfter = 2 * time.Minute
	// patronCheckTimeout bounds the check of a new order's patron.
	patronCheckTimeout = 3 * time.Second
)

// circLocation is a checkin's AP at a locker.
func (b *Bridge) location(lockerID string) string {
	if l := b.cfg.Locations[lockerID]; l != "" {
		return l
	}
	return lockerID
}

// Queue queues the ILS transactions an event calls for, in tx (the
// event's own, which stores it once).
func (b *Bridge) Queue(tx Tx, lockerID string, e protocol.Event, data any) error {
	if b.cfg.ILS == nil {
		return nil
	}
	// No-block from the start when the loan happened while the ILS could
	// not be told: the locker was offline (hist), or the ILS is down.
	base := CircRec{Event: e.ID, Locker: lockerID, EventAt: e.TS, Hist: e.Hist, Queued: time.Now().UTC(), State: CircQueued,
		NoBlock: e.Hist || !b.cfg.ILS.State().Up}
	perItem := func(orderID, kind string) error {
		patron, items, found, err := tx.Orders.OrderItems(lockerID, orderID)
		if err != nil || !found {
			return err
		}
		if kind == CircCheckout && patron == "" {
			return nil // an order without a reader: nothing to lend
		}
		for _, it := range items {
			c := base
			c.Kind, c.Order, c.Patron, c.Item, c.Title = kind, orderID, patron, it.Barcode, it.Title
			if kind == CircCheckin {
				c.Patron = ""
			}
			if _, err := tx.Circ.AddCirc(c); err != nil {
				return err
			}
		}
		return nil
	}
	switch d := data.(type) {
	case *protocol.PickupCompleted:
		return perItem(d.OrderID, CircCheckout)
	case *protocol.OrderLoaded:
		if b.cfg.CheckinOnLoad {
			return perItem(d.OrderID, CircCheckin)
		}
	case *protocol.HoldScanQueued:
		if d.Item == "" || len(d.Item) > MaxBarcodeLen || strings.ContainsAny(d.Item, "|\r\n") || len(d.Visit) > 32 || len(d.By) > 128 {
			return nil // nothing the ILS could take (a locker sends none such); the event is kept
		}
		c := base
		c.Kind, c.Item, c.Visit, c.By = CircHold, d.Item, d.Visit, d.By
		_, err := tx.Circ.AddCirc(c)
		return err
	case *protocol.ItemReturned:
		if d.Barcode == "" || len(d.Barcode) > MaxBarcodeLen || strings.ContainsAny(d.Barcode, "|\r\n") {
			return nil // nothing the ILS could take; the event is kept
		}
		c := base
		c.Kind, c.Item = CircCheckin, d.Barcode
		_, err := tx.Circ.AddCirc(c)
		return err
	}
	return nil
}

// Run works the queue until ctx ends.
func (b *Bridge) Run(ctx context.Context) {
	tick := time.NewTicker(circPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			b.releaseCirc()
			return
		case <-tick.C:
		}
		b.circRound(ctx, time.Now())
	}
}

// Work goes once through the circulation queue, as the bridge
// does every half second while Run serves (tests drive it step by step).
func (b *Bridge) Work(ctx context.Context) { b.circRound(ctx, time.Now()) }

// WorkAt is Work with the time the watch of the
// library system takes for now (tests of its alarm).
func (b *Bridge) WorkAt(ctx context.Context, now time.Time) { b.circRound(ctx, now) }

// circRound goes once through the open transactions, in order.
func (b *Bridge) circRound(ctx context.Context, now time.Time) {
	if b.cfg.ILS == nil {
		return // no bridge
	}
	// The replica that holds the bridge's lease works the queue, and says
	// so when transactions cannot go.
	if !b.claimCirc() {
		return
	}
	b.watchILS(now)
	if !b.cfg.ILS.State().Up {
		return
	}
	var open []CircRec
	if err := b.cfg.Store.View(func(tx Tx) error {
		var err error
		open, err = tx.Circ.OpenCircs(1000)
		return err
	}); err != nil {
		b.log.Warn("circulation queue", "err", err)
		return
	}
	busy := map[string]bool{} // items (and patrons) with an earlier transaction not finished
	for _, c := range open {
		key := c.Kind + ":" + c.Item
		if c.Kind != CircPatron {
			key = "item:" + c.Item
		}
		if c.State != CircQueued && c.State != CircSending {
			continue // waiting for a person; it does not hold others back
		}
		if busy[key] {
			continue
		}
		finished, stop := b.circOne(ctx, c)
		if !finished {
			busy[key] = true
		}
		if stop || ctx.Err() != nil {
			return
		}
	}
}

// claimCirc takes or renews the bridge's lease. It outlasts a
// transaction's longest wait (timeout × resends): a replica that takes
// it over never writes while the one before may still be waiting.
func (b *Bridge) claimCirc() bool {
	st := b.cfg.ILS.State()
	ttl := b.cfg.LeaseTTL + time.Duration(st.Retries+2)*st.Timeout
	var held bool
	err := b.cfg.Store.Update(func(tx Tx) error {
		var err error
		held, err = tx.Lease.Claim(ttl)
		return err
	})
	if err != nil {
		b.log.Warn("circulation lease", "err", err)
		return false
	}
	return held
}

func (b *Bridge) releaseCirc() {
	_ = b.cfg.Store.Update(func(tx Tx) error { return tx.Lease.Release() })
}

// circOne works one transaction: finished when it left the queue (done,
// refused, exception); stop when the round should end (the ILS is not
// taking transactions, or the session broke).
func (b *Bridge) circOne(ctx context.Context, c CircRec) (finished, stop bool) {
	ils := b.cfg.ILS
	tctx, cancel := context.WithTimeout(ctx, time.Duration(ils.State().Retries+2)*ils.State().Timeout)
	defer cancel()
	if c.Kind == CircCheckout && (c.State == CircSending || c.Uncertain) {
		// Sent before with no answer: does the ILS have it?
		had, due, err := b.alreadyCharged(tctx, c)
		if err != nil {
			b.circFailed(c, err, false)
			return false, true
		}
		if had {
			b.circFinish(c, func(r *CircRec) {
				r.State, r.OK, r.Due, r.Uncertain = CircDone, true, due, false
				r.LastError = "the ILS already had this loan (its reply had been lost)"
			})
			return true, false
		}
	}
	if !b.claimCirc() {
		return false, true
	}
	// Sending, in the store before it is written: a crash from here on
	// finds it sending and looks it up before sending it again.
	now := time.Now().UTC()
	var cur CircRec
	err := b.cfg.Store.Update(func(tx Tx) error {
		var found bool
		var err error
		cur, found, err = tx.Circ.Circ(c.ID)
		if err != nil {
			return err
		}
		if !found || (cur.State != CircQueued && cur.State != CircSending) {
			return errGone
		}
		cur.State, cur.Attempts, cur.LastTry = CircSending, cur.Attempts+1, now
		// No-block once the ILS could not be told in time: queued so,
		// an attempt that got no answer, or told late.
		cur.NoBlock = cur.NoBlock || cur.Attempts > 1 || cur.Queued.Sub(cur.EventAt) > noBlockAfter || now.Sub(cur.Queued) > noBlockAfter
		return tx.Circ.PutCirc(cur)
	})
	if errors.Is(err, errGone) {
		return true, false // resolved or done meanwhile
	}
	if err != nil {
		b.log.Warn("circulation queue", "id", c.ID, "err", err)
		return false, true
	}
	start := time.Now()
	switch cur.Kind {
	case CircCheckout:
		r, err := ils.Checkout(tctx, sip2.Checkout{Patron: cur.Patron, Item: cur.Item, At: cur.EventAt, NoBlock: cur.NoBlock})
		b.cfg.Metrics.RTT(cur.Kind, time.Since(start), err)
		if err != nil {
			b.circFailed(cur, err, true)
			return false, true
		}
		b.circFinish(cur, func(rec *CircRec) {
			rec.OK, rec.Due, rec.Screen, rec.Uncertain = r.OK, r.Due, r.Screen, false
			rec.State = CircDone
			if !r.OK {
				rec.State = CircRefused
			}
		})
	case CircCheckin:
		r, err := ils.Checkin(tctx, sip2.Checkin{Item: cur.Item, At: cur.EventAt, Location: b.location(cur.Locker), NoBlock: cur.NoBlock})
		b.cfg.Metrics.RTT(cur.Kind, time.Since(start), err)
		if err != nil {
			b.circFailed(cur, err, true)
			return false, true
		}
		b.circFinish(cur, func(rec *CircRec) {
			rec.OK, rec.Alert, rec.AlertType, rec.Screen = r.OK, r.Alert, r.AlertType, r.Screen
			switch {
			case !r.OK:
				rec.State = CircRefused
			case r.Alert || r.AlertType != "":
				rec.State = CircException // the staff sort the item: a hold, a transit
			default:
				rec.State = CircDone
			}
		})
	case CircPatron:
		p, err := ils.PatronInformation(tctx, cur.Patron, "", false)
		b.cfg.Metrics.RTT(cur.Kind, time.Since(start), err)
		if err != nil {
			b.circFailed(cur, err, true)
			return false, true
		}
		b.circFinish(cur, func(rec *CircRec) {
			rec.OK, rec.Screen = p.Valid && !p.Blocked, p.Screen
			rec.State = CircDone
			if !rec.OK {
				rec.State = CircRefused // the order was made while the ILS could not be asked
			}
		})
	case CircHold:
		return b.holdOne(tctx, cur)
	default:
		b.circFinish(cur, func(rec *CircRec) { rec.State, rec.LastError = CircException, "unknown kind "+rec.Kind })
	}
	return true, false
}

var errGone = errors.New("no longer queued")

// alreadyCharged asks the ILS whether c's item is on loan to c's patron.
func (b *Bridge) alreadyCharged(ctx context.Context, c CircRec) (bool, string, error) {
	ils := b.cfg.ILS
	info, err := ils.ItemInformation(ctx, c.Item)
	if err != nil {
		return false, "", err
	}
	if info.Status != sip2.StatusCharged {
		return false, "", nil
	}
	p, err := ils.PatronInformation(ctx, c.Patron, "", true)
	if err != nil {
		return false, "", err
	}
	return slices.Contains(p.Charged, c.Item), info.Due, nil
}

// circFailed records a transaction that got no answer. sent: it was
// written (its attempt counts); a checkout's outcome is then unknown.
// Not sent because the ILS is unreachable or not taking it: it goes back
// as it was, its attempt not counted.
func (b *Bridge) circFailed(c CircRec, err error, sent bool) {
	notSent := errors.Is(err, sip2.ErrUnavailable) || errors.Is(err, sip2.ErrNotAllowed)
	max := b.cfg.MaxAttempts
	b.circFinish(c, func(r *CircRec) {
		r.LastError = err.Error()
		if !sent {
			return
		}
		if notSent {
			// Not written. A checkout that was sending or uncertain was
			// looked up just before (not on loan): queued again is exact.
			r.Attempts--
			r.State, r.Uncertain = CircQueued, false
			return
		}
		if r.Kind == CircCheckout {
			r.Uncertain = true
		}
		if r.Attempts >= max {
			r.State = CircException
			r.LastError = fmt.Sprintf("no answer from the ILS after %d attempts: %v", r.Attempts, err)
		}
	})
	if !notSent {
		b.log.Warn("ILS transaction without an answer", "id", c.ID, "kind", c.Kind, "item", c.Item, "attempt", c.Attempts, "err", err)
	}
}

// circFinish applies f to the stored transaction and, for a checkout,
// keeps the ILS's answer with its order.
func (b *Bridge) circFinish(c CircRec, f func(*CircRec)) {
	var rec CircRec
	err := b.cfg.Store.Update(func(tx Tx) error {
		var found bool
		var err error
		rec, found, err = tx.Circ.Circ(c.ID)
		if err != nil || !found {
			return err
		}
		f(&rec)
		if !rec.Open() {
			rec.Done = time.Now().UTC()
		}
		if err := tx.Circ.PutCirc(rec); err != nil {
			return err
		}
		if rec.State == CircException || rec.State == CircRefused {
			what := fmt.Sprintf("%s of %s %s", rec.Kind, rec.Item, rec.State)
			if rec.Screen != "" {
				what += ": " + rec.Screen
			} else if rec.LastError != "" {
				what += ": " + rec.LastError
			}
			if err := b.cfg.Hooks.Queue(tx.Hooks, webhook.HookCirculation, fmt.Sprintf("circ-%d-%d", rec.ID, rec.Attempts), rec.Order, rec); err != nil {
				return err
			}
			if err := b.cfg.Raise(tx.Alarms, tx.Hooks, alarm.Alarm{Locker: rec.Locker, Type: alarm.Circulation,
				Detail: fmt.Sprintf("transaction %d, %s (lockerhub circ list --state %s)", rec.ID, what, rec.State)}); err != nil {
				return err
			}
		}
		if rec.Kind != CircCheckout || rec.Order == "" || (rec.State != CircDone && rec.State != CircRefused) {
			return nil
		}
		return tx.Orders.SetLoan(rec.Locker, rec.Order, Loan{Item: rec.Item, OK: rec.OK, Due: rec.Due, Screen: rec.Screen, Circ: rec.ID})
	})
	if err != nil {
		b.log.Warn("circulation queue", "id", c.ID, "err", err)
		return
	}
	if !rec.Open() || rec.State == CircRefused || rec.State == CircException {
		b.cfg.Metrics.Outcome(rec)
		b.log.Info("ILS transaction", "id", rec.ID, "kind", rec.Kind, "item", rec.Item, "state", rec.State,
			"due", rec.Due, "alert_type", rec.AlertType, "screen", rec.Screen)
	}
}

// LoginRefused raises an alarm that the ILS refused the bridge's
// login (at most one every ten minutes while it goes on).
func (b *Bridge) LoginRefused(user, addr string) {
	now := time.Now()
	if last := b.loginAlarmAt.Load(); last != 0 && now.Sub(time.Unix(0, last)) < loginAlarmEvery {
		return
	}
	b.loginAlarmAt.Store(now.UnixNano())
	if err := b.cfg.Store.Update(func(tx Tx) error {
		return b.raiseCentral(tx, alarm.ILSLogin, fmt.Sprintf(
			"the library system at %s refused the SIP2 login of %q: check sip2.user, sip2.password_file and the ILS's SIP2 account; loans and returns wait in the queue", addr, user))
	}); err != nil {
		b.log.Warn("alarm not stored", "err", err)
	}
}

// CircFilter selects circulation transactions.
type CircFilter struct {
	Locker, State string
	After         uint64
	Limit         int
}

// List lists transactions by id. Open ones (queued, sending,
// refused, exception) are read from their index; the others from the
// whole list, a page at a time.
func (b *Bridge) List(f CircFilter) ([]CircRec, error) {
	if f.Limit <= 0 || f.Limit > maxList {
		f.Limit = maxList
	}
	if f.State != "" && !slices.Contains([]string{CircQueued, CircSending, CircDone, CircRefused, CircException, CircResolved}, f.State) {
		return nil, fmt.Errorf("state %q: want queued, sending, done, refused, exception or resolved", f.State)
	}
	out := []CircRec{}
	keep := func(c CircRec) bool {
		return c.ID > f.After && (f.Locker == "" || c.Locker == f.Locker) && (f.State == "" || c.State == f.State)
	}
	err := b.cfg.Store.View(func(tx Tx) error {
		if f.State != "" && (CircRec{State: f.State}).Open() {
			open, err := tx.Circ.OpenCircs(0)
			for _, c := range open {
				if len(out) < f.Limit && keep(c) {
					out = append(out, c)
				}
			}
			return err
		}
		for after := f.After; len(out) < f.Limit; {
			page, err := tx.Circ.Circs(after, 1000)
			if err != nil {
				return err
			}
			for _, c := range page {
				if len(out) < f.Limit && keep(c) {
					out = append(out, c)
				}
				after = c.ID
			}
			if len(page) < 1000 {
				break
			}
		}
		return nil
	})
	return out, err
}

// Retry queues a refused transaction, or one that became an exception
// after no answer, again. A checkin whose alert the staff must act on is
// resolved, not retried: it went through.
func (b *Bridge) Retry(id uint64) (CircRec, error) {
	return b.changeCirc(id, func(c *CircRec) error {
		if c.State != CircRefused && c.State != CircException {
			return fmt.Errorf("transaction %d is %s: only a refused one or an exception is retried", id, c.State)
		}
		if c.Alert {
			return fmt.Errorf("transaction %d went through; its alert (%s) is for the staff: sort the item and resolve it", id, c.AlertType)
		}
		c.State, c.Attempts, c.OK = CircQueued, 0, false
		return nil
	})
}

// Resolve closes a refused transaction or an exception with a note
// (checked by the caller: 1 to 1000 printable characters).
func (b *Bridge) Resolve(id uint64, note string) (CircRec, error) {
	return b.changeCirc(id, func(c *CircRec) error {
		if c.State != CircRefused && c.State != CircException {
			return fmt.Errorf("transaction %d is %s: only a refused one or an exception is resolved", id, c.State)
		}
		c.State, c.Note, c.Done = CircResolved, note, time.Now().UTC()
		return nil
	})
}

func (b *Bridge) changeCirc(id uint64, f func(*CircRec) error) (CircRec, error) {
	var c CircRec
	err := b.cfg.Store.Update(func(tx Tx) error {
		var found bool
		var err error
		c, found, err = tx.Circ.Circ(id)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("no circulation transaction %d", id)
		}
		if err := f(&c); err != nil {
			return err
		}
		return tx.Circ.PutCirc(c)
	})
	return c, err
}

// CheckPatron asks the ILS about a new order's patron. An unknown or
// blocked patron refuses the order with the ILS's words; an ILS that
// cannot be asked does not (queued reports that the check was queued).
func (b *Bridge) CheckPatron(patron string) (queued bool, err error) {
	ils := b.cfg.ILS
	if ils == nil || !b.cfg.CheckPatron || patron == "" {
		return false, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), patronCheckTimeout)
	defer cancel()
	p, err := ils.PatronInformation(ctx, patron, "", false)
	if err != nil {
		b.log.Warn("patron not checked: the ILS cannot be asked now; the check is queued", "err", err)
		return true, nil
	}
	if !p.Valid || p.Blocked {
		msg := p.Screen
		if msg == "" {
			msg = "not a valid patron for a loan"
		}
		return false, fmt.Errorf("patron refused by the library system: %s", msg)
	}
	return false, nil
}

// ILSState is the library system's session state (nil: no bridge).
func (b *Bridge) ILSState() *sip2.State {
	if b.cfg.ILS == nil {
		return nil
	}
	st := b.cfg.ILS.State()
	return &st
}

// OpenCircs are the transactions still open (CircRec.Open), by id.
func (b *Bridge) OpenCircs() (open []CircRec, err error) {
	err = b.cfg.Store.View(func(tx Tx) error { open, err = tx.Circ.OpenCircs(0); return err })
	return open, err
}
