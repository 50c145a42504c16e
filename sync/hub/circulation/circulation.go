// Package circulation is the central's bridge to the library's system
// (the ILS) over SIP2: the queue of loans (checkouts), returns (checkins)
// and patron checks that lockers' events call for, worked exactly once
// through outages by one replica at a time; whether the ILS takes
// transactions now, and the alarm when it has not for a while. It
// declares the part of a store transaction it needs (Tx): its queue
// (CircTx), the core's orders through a small port (Orders: an order's
// reader and items, a loan written back), and the alarm and webhook parts
// for what a person must see.
package circulation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lockerd/lockerd/sync/hub/alarm"
	"github.com/lockerd/lockerd/sync/hub/webhook"
	"github.com/lockerd/lockerd/sync/protocol"
	"github.com/lockerd/lockerd/sync/sip2"
)

// CircRec is one transaction for the library's system (the ILS), queued
// from a locker's event: a checkout when a reader took an order's items,
// a checkin when an item came back (or was loaded, with checkin_on_load),
// a patron check of an order made while the ILS could not be asked.
type CircRec struct {
	ID      uint64    `json:"id"`
	Event   string    `json:"event,omitempty"` // the locker event's id
	Locker  string    `json:"locker"`
	Order   string    `json:"order,omitempty"`
	Kind    string    `json:"kind"` // checkout, checkin, patron
	Patron  string    `json:"patron,omitempty"`
	Item    string    `json:"item,omitempty"`
	Title   string    `json:"title,omitempty"`
	EventAt time.Time `json:"event_time"`     // when it happened at the locker
	Hist    bool      `json:"hist,omitempty"` // recorded while the locker was offline
	Queued  time.Time `json:"queued"`         // when the hub queued it

	State     string    `json:"state"` // queued, sending, done, refused, exception, resolved
	Attempts  int       `json:"attempts"`
	LastError string    `json:"last_error,omitempty"`
	LastTry   time.Time `json:"last_try,omitzero"`
	NoBlock   bool      `json:"no_block,omitempty"` // sent with no-block Y
	// Uncertain: sent, and whether the ILS acted on it is not known (no
	// reply): a checkout is looked up (17, 63) before it is sent again.
	Uncertain bool `json:"uncertain,omitempty"`

	// The ILS's answer.
	OK        bool      `json:"ok,omitempty"`
	Due       string    `json:"due,omitempty"`        // AH, as the ILS wrote it
	Alert     bool      `json:"alert,omitempty"`      // a checkin the staff must sort
	AlertType string    `json:"alert_type,omitempty"` // CV
	Screen    string    `json:"screen,omitempty"`     // AF
	Done      time.Time `json:"done,omitzero"`
	Note      string    `json:"note,omitempty"` // the staff's, on resolve
}

// Circulation transaction kinds and states.
const (
	CircCheckout = "checkout"
	CircCheckin  = "checkin"
	CircPatron   = "patron"

	CircQueued    = "queued"
	CircSending   = "sending"
	CircDone      = "done"
	CircRefused   = "refused"   // the ILS said no (ok 0): a person decides
	CircException = "exception" // a person must act: an alert, or no reply after max attempts
	CircResolved  = "resolved"  // a refusal or exception a person dealt with
)

// Open reports whether c still needs the bridge (queued, sending) or a
// person (refused, exception).
func (c CircRec) Open() bool {
	return c.State == CircQueued || c.State == CircSending || c.State == CircRefused || c.State == CircException
}

// Loan is what the ILS answered to an order item's checkout.
type Loan struct {
	Item   string `json:"item"`
	OK     bool   `json:"ok"`
	Due    string `json:"due,omitempty"`
	Screen string `json:"screen,omitempty"`
	Circ   uint64 `json:"circ"` // its transaction
}

// Tx is the part of a store transaction the bridge needs.
type Tx struct {
	Circ   CircTx
	Orders Orders
	Alarms alarm.Tx
	Hooks  webhook.Tx
	Lease  Lease // the bridge's lease among replicas, in this transaction
}

// CircTx is the queue. AddCirc numbers c (its ID, from 1, in the order
// added); PutCirc writes a numbered one's new state. Circs lists them
// after id after, by id (at most limit; 0: all); OpenCircs those still
// open (CircRec.Open), by id.
type CircTx interface {
	AddCirc(c CircRec) (CircRec, error)
	PutCirc(c CircRec) error
	Circ(id uint64) (c CircRec, found bool, err error)
	Circs(after uint64, limit int) ([]CircRec, error)
	OpenCircs(limit int) ([]CircRec, error)
}

// Orders is what the bridge needs of the core's orders.
type Orders interface {
	// OrderItems is an order's reader (library card) and items; found is
	// false when the locker has no such order.
	OrderItems(lockerID, orderID string) (patron string, items []protocol.Item, found bool, err error)
	// SetLoan keeps the ILS's answer to the checkout of one of an order's
	// items with the order (replacing the one of the same item).
	SetLoan(lockerID, orderID string, loan Loan) error
}

// Lease is the bridge's lease among replicas: held, the queue is this
// replica's to work until ttl from now.
type Lease interface {
	Claim(ttl time.Duration) (held bool, err error)
	Release() error
}

// Store runs transactions over the bridge's part of a store.
type Store interface {
	View(fn func(Tx) error) error
	Update(fn func(Tx) error) error
}

// Metrics counts what the bridge did (the hub's Prometheus metrics).
type Metrics interface {
	Outcome(c CircRec)
	RTT(kind string, d time.Duration, err error)
}

// Config is a Bridge's: Circulation (what lockerhub's sip2 section
// gives) and what the hub wires in.
type Config struct {
	Circulation
	Store    Store
	LeaseTTL time.Duration // how long the lease stays with a replica that stopped renewing it
	// Raise raises an alarm in tx and tells the webhooks of a new one
	// (the hub's rule for every alarm).
	Raise   func(alarms alarm.Tx, hooks webhook.Tx, a alarm.Alarm) error
	Hooks   *webhook.Service
	Metrics Metrics
	Log     *slog.Logger
}

// Bridge is the circulation bridge of one hub replica.
type Bridge struct {
	cfg          Config
	log          *slog.Logger
	ils          ilsWatch
	loginAlarmAt atomic.Int64 // when the last login alarm was raised, unix ns
}

// New makes a Bridge. Without an ILS it queues nothing and works
// nothing, and lists what its store holds.
func New(cfg Config) *Bridge {
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 5
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Bridge{cfg: cfg, log: cfg.Log.With("component", "circulation")}
}

// raiseCentral raises an alarm of the central itself (no locker).
func (b *Bridge) raiseCentral(tx Tx, typ, detail string) error {
	return b.cfg.Raise(tx.Alarms, tx.Hooks, alarm.Alarm{Type: typ, Detail: detail})
}

const (
	// loginAlarmEvery spaces the alarms of a login the ILS refuses.
	loginAlarmEvery = 10 * time.Minute
	// maxList bounds one page of List.
	maxList = 1000
	// MaxBarcodeLen bounds an item's barcode sent to the ILS.
	MaxBarcodeLen = 64
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

// defaultILSAlarmAfter: a library system may restart, or drop a session,
// for a minute; longer, a person must know that loans are waiting.
const defaultILSAlarmAfter = 3 * time.Minute

// ilsWatch follows why the bridge cannot send (the leader's view): it
// logs when that starts and ends, and raises alarm.ILSUnavailable once it
// has lasted AlarmAfter. Only the circulation loop touches it; Status
// reads it.
type ilsWatch struct {
	mu     sync.Mutex
	why    string    // "" while the bridge can send
	since  time.Time // when why became non-empty
	raised bool      // the alarm is open
}

// ILSStatus is what the bridge knows of the library system now.
type ILSStatus struct {
	Bridge  bool      `json:"bridge"`         // a SIP2 bridge is configured
	Up      bool      `json:"up"`             // logged in and answering
	Why     string    `json:"why,omitempty"`  // why queued transactions wait, when they do
	Since   time.Time `json:"since,omitzero"` // since when
	Waiting int       `json:"waiting"`        // open transactions in the queue
}

// blockedWhy says why the bridge cannot send now: the session is down, or
// the ILS's flags refuse a kind of transaction that is waiting.
func (b *Bridge) blockedWhy(waitingCheckout, waitingCheckin bool) string {
	st := b.cfg.ILS.State()
	if !st.Up {
		why := "the library system is unreachable"
		if st.LastError != "" {
			why += ": " + st.LastError
		}
		if st.LoginRefusals > 0 && !st.Since.IsZero() {
			why += fmt.Sprintf(" (%d login refusals since start)", st.LoginRefusals)
		}
		return why
	}
	if waitingCheckout {
		if why := st.NotAccepting(true); why != "" {
			return "checkouts wait: " + why
		}
	}
	if waitingCheckin {
		if why := st.NotAccepting(false); why != "" {
			return "checkins wait: " + why
		}
	}
	return ""
}

// watchILS runs at each round of the circulation loop.
func (b *Bridge) watchILS(now time.Time) {
	var checkouts, checkins bool
	st := b.cfg.ILS.State()
	if st.Up && (st.NotAccepting(true) != "" || st.NotAccepting(false) != "") {
		// Which kinds wait (read only while a flag is off).
		if err := b.cfg.Store.View(func(tx Tx) error {
			open, err := tx.Circ.OpenCircs(1000)
			for _, c := range open {
				if c.State == CircQueued || c.State == CircSending {
					checkouts = checkouts || c.Kind == CircCheckout
					checkins = checkins || c.Kind == CircCheckin
				}
			}
			return err
		}); err != nil {
			return
		}
	}
	why := b.blockedWhy(checkouts, checkins)
	w := &b.ils
	w.mu.Lock()
	was, since, raised := w.why, w.since, w.raised
	switch {
	case why != "" && was == "":
		w.why, w.since = why, now
		since = now
	case why != "":
		w.why = why
	case was != "":
		w.why, w.since, w.raised = "", time.Time{}, false
	}
	raise := why != "" && !raised && now.Sub(since) >= b.ilsAlarmAfter()
	if raise {
		w.raised = true
	}
	w.mu.Unlock()

	switch {
	case why != "" && was == "":
		b.log.Warn("circulation waits: the library system takes no transactions now", "why", why)
	case why == "" && was != "":
		b.log.Info("circulation goes on: the library system takes transactions again", "after", now.Sub(since).Round(time.Second))
		if raised {
			if err := b.cfg.Store.Update(func(tx Tx) error {
				return alarm.Clear(tx.Alarms, "", alarm.ILSUnavailable, "", "the library system takes transactions again", now)
			}); err != nil {
				b.log.Warn("alarm not resolved", "err", err)
			}
		}
	}
	if raise {
		detail := fmt.Sprintf("since %s: %s; loans and returns wait in the queue (lockerhub circ list)", since.UTC().Format(time.RFC3339), why)
		if err := b.cfg.Store.Update(func(tx Tx) error { return b.raiseCentral(tx, alarm.ILSUnavailable, detail) }); err != nil {
			b.log.Warn("alarm not stored", "err", err)
			w.mu.Lock()
			w.raised = false // tried again next round
			w.mu.Unlock()
		}
	}
}

func (b *Bridge) ilsAlarmAfter() time.Duration {
	if d := b.cfg.AlarmAfter; d > 0 {
		return d
	}
	return defaultILSAlarmAfter
}

// Status says whether the bridge can send now and, when it cannot,
// why and since when.
func (b *Bridge) Status() (ILSStatus, error) {
	ils := b.cfg.ILS
	if ils == nil {
		return ILSStatus{}, nil
	}
	var n int
	if err := b.cfg.Store.View(func(tx Tx) error {
		open, err := tx.Circ.OpenCircs(0)
		for _, c := range open {
			if c.State == CircQueued || c.State == CircSending {
				n++
			}
		}
		return err
	}); err != nil {
		return ILSStatus{}, err
	}
	out := ILSStatus{Bridge: true, Up: ils.State().Up, Waiting: n}
	b.ils.mu.Lock()
	out.Why, out.Since = b.ils.why, b.ils.since
	b.ils.mu.Unlock()
	if out.Why == "" && !out.Up {
		// Not yet seen by the loop (a hub just started, or not leading).
		out.Why = b.blockedWhy(false, false)
	}
	return out, nil
}
