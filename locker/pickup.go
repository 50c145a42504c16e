package locker

// The pickup flow: a scanned or typed code, checked against the lockout
// and the store, opens every door of its order; the grace reopen.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Outcome says what a scan (or an open) did.
type Outcome string

// Outcomes of a scan.
const (
	OutcomeOpened     Outcome = "opened"      // pickup: doors open
	OutcomeDenied     Outcome = "denied"      // pickup refused; Reason says why
	OutcomeStaffOn    Outcome = "staff_on"    // staff session started
	OutcomeStaffOff   Outcome = "staff_off"   // staff session ended
	OutcomeLoading    Outcome = "loading"     // staff: compartment open for loading
	OutcomeRetrieving Outcome = "retrieving"  // staff: compartment open for retrieval
	OutcomeNothing    Outcome = "nothing"     // staff: nothing to do for that scan
	OutcomeReturned   Outcome = "returned"    // return accepted, flap open
	OutcomeRefused    Outcome = "refused"     // return refused; Reason says why
	OutcomeJammed     Outcome = "jammed"      // a door did not open
	OutcomeError      Outcome = "error"       // could not be served (store or hardware)
	OutcomeMaintOpen  Outcome = "maintenance" // technician open
	OutcomeBinOpen    Outcome = "bin_open"    // staff: the return bin's door open for emptying
	OutcomeBinEmptied Outcome = "bin_emptied" // staff: the return bin recorded as emptied
)

// ScanResult says what a scan did. It never contains the scanned text.
type ScanResult struct {
	Outcome Outcome `json:"outcome"`
	Reason  string  `json:"reason,omitempty"`
	OrderID string  `json:"order_id,omitempty"`
	// Orders are every order a scan opened, when it opened several (one
	// code shared by a reader's orders, a card, a volunteer's badge).
	Orders       []string  `json:"orders,omitempty"`
	Compartments []string  `json:"compartments,omitempty"`
	Jammed       []string  `json:"jammed,omitempty"` // doors that did not open beside those that did
	Until        time.Time `json:"until,omitzero"`
	// Message is the central's words for the staff (a hold scan refused).
	Message string `json:"message,omitempty"`
}

// via values of pickup.completed.
const (
	ViaScan   = "scan"
	ViaKeypad = "keypad"
	ViaRemote = "remote"
	ViaBadge  = "badge" // a volunteer's badge collected it
	ViaCard   = "card"  // a library card and PIN the central checked
)

// Scan handles one line from an input device.
func (l *Locker) Scan(ctx context.Context, device, text string) (ScanResult, error) {
	dev, ok := l.devices[device]
	if !ok {
		return ScanResult{}, fmt.Errorf("unknown input device %q", device)
	}
	if dev.Role == RoleReturn {
		return l.returnScan(ctx, dev, text), nil
	}
	via := ViaScan
	if device == KeypadDevice {
		via = ViaKeypad
	}
	return l.pickupScan(ctx, dev, text, via), nil
}

func (l *Locker) pickupScan(ctx context.Context, dev Device, text, via string) ScanResult {
	now := l.clock.Now()
	code, codeErr := NormalizeCode(text)
	hash := ""
	if codeErr == nil {
		hash = l.key.Hash(code)
	}
	if l.staffSessionActive(dev.Name, now) {
		if b, ok := l.badge(hash); ok && hash != "" && b.Role != RoleVolunteer {
			l.endStaff(dev.Name)
			return ScanResult{Outcome: OutcomeStaffOff}
		}
		return l.staffScan(ctx, dev, text)
	}
	if until, locked := l.lockouts.LockedUntil(dev.Name, now); locked {
		// Aggregated: a scanner flooded with codes must not flood the
		// outbox (or the disk) as well.
		l.refuse(dev, EvPickupDenied, DenyLockedOut, until, false)
		return ScanResult{Outcome: OutcomeDenied, Reason: DenyLockedOut, Until: until}
	}
	if codeErr != nil {
		// Not a code; perhaps a library card (longer, or with dashes).
		if res, ok := l.cardScan(dev, text, now); ok {
			return res
		}
		return l.failCode(dev, now)
	}
	orders, err := l.ordersByHash(hash)
	if err != nil {
		l.log.Error("order lookup", "err", err)
		return ScanResult{Outcome: OutcomeError, Reason: "store"}
	}
	if len(orders) == 0 {
		if b, ok := l.badge(hash); ok {
			return l.badgeScan(ctx, dev, b, now)
		}
		if res, ok := l.cardScan(dev, text, now); ok {
			return res
		}
		return l.failCode(dev, now)
	}
	return l.openOrders(ctx, dev, orders, via, "")
}

// openOrders opens every ready order of orders (the orders one code, one
// card or one volunteer badge matched): all at once, one
// pickup.completed each. With none ready, an order picked up within the
// reopen grace opens again; otherwise the scan is refused with the
// reason of the order nearest to being picked up.
func (l *Locker) openOrders(ctx context.Context, dev Device, orders []Order, via, by string) ScanResult {
	now := l.clock.Now()
	var ready, recent []Order
	reason, orderID := "", ""
	for _, o := range orders {
		r := ""
		switch o.State {
		case OrderReady:
			if date, trusted := l.expiryNow(); trusted && !date.Before(o.ExpiresAt) {
				if err := l.update(func(tx Tx) error {
					cur, err := tx.Order(o.ID)
					if err != nil || cur.State != OrderReady {
						return err
					}
					return l.expire(tx, cur)
				}); err != nil {
					l.log.Error("expire on scan", "order", o.ID, "err", err)
				}
				r = DenyExpired
				break
			}
			ready = append(ready, o)
			continue
		case OrderPickedUp:
			// A clock that jumped backwards (negative age) grants nothing.
			if age := now.Sub(o.PickedUpAt); age >= 0 && age <= l.set.Policy.ReopenGrace {
				recent = append(recent, o)
				continue
			}
			r = DenyNotReady
		case OrderExpired, OrderRetrieved:
			r = DenyExpired
		case OrderCancelled:
			r = DenyCancelled
		default:
			r = DenyNotReady
		}
		if reason == "" || denyRank(r) < denyRank(reason) {
			reason, orderID = r, o.ID
		}
	}
	switch {
	case len(ready) > 0:
		return l.pickupAll(ctx, dev, ready, via, by)
	case len(recent) > 0:
		return l.reopenAll(ctx, recent)
	}
	return l.deny(dev, orderID, reason)
}

// denyRank orders refusal reasons: the one nearest to a pickup says most.
func denyRank(r string) int {
	switch r {
	case DenyNotReady:
		return 0
	case DenyExpired:
		return 1
	}
	return 2
}

// pickupAll picks up orders at once, each in its own door job, and sums
// up what happened: opened if any order's doors opened.
func (l *Locker) pickupAll(ctx context.Context, dev Device, orders []Order, via, by string) ScanResult {
	if len(orders) == 1 {
		return l.pickup(ctx, dev, orders[0], via, by)
	}
	results := make([]ScanResult, len(orders))
	var wg sync.WaitGroup
	for i, o := range orders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = l.pickup(ctx, dev, o, via, by)
		}()
	}
	wg.Wait()
	return mergeResults(results)
}

// reopenAll opens again the doors of orders picked up within the grace.
func (l *Locker) reopenAll(ctx context.Context, orders []Order) ScanResult {
	results := make([]ScanResult, len(orders))
	for i, o := range orders {
		results[i] = l.reopen(ctx, o)
	}
	return mergeResults(results)
}

// mergeResults sums up the results of several orders' door jobs: opened
// when any order opened (the jammed doors listed beside), else the first
// result.
func mergeResults(results []ScanResult) ScanResult {
	var out ScanResult
	for _, r := range results {
		switch r.Outcome {
		case OutcomeOpened:
			out.Outcome = OutcomeOpened
			out.Reason = r.Reason
			out.Orders = append(out.Orders, r.OrderID)
			out.Compartments = append(out.Compartments, r.Compartments...)
		case OutcomeJammed:
			out.Jammed = append(out.Jammed, r.Compartments...)
		}
	}
	if out.Outcome != OutcomeOpened {
		if len(out.Jammed) > 0 {
			return ScanResult{Outcome: OutcomeJammed, Compartments: out.Jammed, OrderID: results[0].OrderID}
		}
		return results[0]
	}
	out.OrderID = out.Orders[0]
	slices.Sort(out.Compartments)
	return out
}

// ordersByHash is the one index read a scanned code costs.
func (l *Locker) ordersByHash(hash string) ([]Order, error) {
	var out []Order
	err := l.store.View(func(tx Tx) error {
		var err error
		out, err = tx.OrdersByCodeHash(hash)
		return err
	})
	return out, err
}

// FindOrderByCode is the lookup a scan does — normalise, one HMAC, one
// index read — without acting on it (for benchmarks and tools): the
// first order the code matches.
func (l *Locker) FindOrderByCode(raw string) (Order, error) {
	code, err := NormalizeCode(raw)
	if err != nil {
		return Order{}, err
	}
	orders, err := l.ordersByHash(l.key.Hash(code))
	if err == nil && len(orders) == 0 {
		err = ErrNotFound
	}
	if err != nil {
		return Order{}, err
	}
	return orders[0], nil
}

// deny refuses a code that matched an order that cannot be picked up
// (expired, cancelled, not ready). It counts towards the device's
// lockout like an unknown code: a device that keeps scanning what is
// refused is flooding, whatever it scans.
func (l *Locker) deny(dev Device, orderID, reason string) ScanResult {
	_, started := l.refuse(dev, EvPickupDenied, reason, time.Time{}, true)
	l.log.Info("pickup denied", "scanner", dev.Name, "reason", reason, "order", orderID, "lockout_started", started)
	return ScanResult{Outcome: OutcomeDenied, Reason: reason}
}

// failCode records a code that matches nothing, and starts a lockout when
// there were too many.
func (l *Locker) failCode(dev Device, now time.Time) ScanResult {
	_, started := l.refuse(dev, EvPickupDenied, DenyUnknown, time.Time{}, true)
	l.log.Info("pickup denied", "scanner", dev.Name, "reason", DenyUnknown, "lockout_started", started)
	return ScanResult{Outcome: OutcomeDenied, Reason: DenyUnknown}
}

func (l *Locker) pickup(ctx context.Context, dev Device, o Order, via, by string) ScanResult {
	if !l.claim(o.ID) {
		return ScanResult{Outcome: OutcomeDenied, Reason: "busy", OrderID: o.ID}
	}
	defer l.release(o.ID)
	var res ScanResult
	_, _, err := l.openFor(ctx, doorJob{ids: o.Compartments, op: OpPickup, orderID: o.ID, whole: true,
		late: func(lo *lateOp) { lo.via, lo.scanner, lo.by = via, dev.Name, by },
		finish: func(tx Tx, opened, jammed []string) error {
			if len(jammed) > 0 {
				res = ScanResult{Outcome: OutcomeJammed, OrderID: o.ID, Compartments: jammed}
				return nil
			}
			cur, err := tx.Order(o.ID)
			if err != nil {
				return err
			}
			res = ScanResult{Outcome: OutcomeOpened, OrderID: o.ID, Compartments: opened}
			return l.completePickup(tx, cur, opened, via, dev.Name, by, false)
		}})
	switch {
	case errors.Is(err, errUnusable):
		return l.deny(dev, o.ID, DenyNotReady)
	case err != nil:
		l.log.Error("pickup not recorded", "order", o.ID, "err", err)
		return ScanResult{Outcome: OutcomeError, Reason: "store"}
	}
	l.log.Info("pickup", "order", o.ID, "outcome", res.Outcome, "compartments", res.Compartments)
	return res
}

// completePickup records, in tx, that order o was picked up through doors
// opened: the order moves to picked up, a compartment of it that opened
// and closed again before this commit (settled as still holding it) is
// free, and pickup.completed is recorded.
func (l *Locker) completePickup(tx Tx, o Order, opened []string, via, scanner, by string, late bool) error {
	if err := o.Move(OrderPickedUp); err != nil {
		return err
	}
	o.PickedUpAt = l.clock.Now().UTC()
	for _, id := range o.Compartments {
		c, err := tx.Compartment(id)
		if err != nil {
			return err
		}
		if c.State == CompLoaded && c.OrderID == o.ID {
			c.State, c.OrderID = CompFree, ""
			if err := tx.PutCompartment(c); err != nil {
				return err
			}
		}
	}
	return l.recordFact(tx, &o, PickupCompleted{OrderID: o.ID, Compartments: opened, Via: via, Scanner: scanner, By: by, Late: late})
}

// reopen opens again, within the grace period, the doors of an order just
// picked up (the reader forgot a book) — only doors nobody reused since.
func (l *Locker) reopen(ctx context.Context, o Order) ScanResult {
	if !l.claim(o.ID) {
		return ScanResult{Outcome: OutcomeDenied, Reason: "busy", OrderID: o.ID}
	}
	defer l.release(o.ID)
	var ids []string
	err := l.store.View(func(tx Tx) error {
		for _, id := range o.Compartments {
			c, err := tx.Compartment(id)
			if err != nil {
				return err
			}
			if !c.OutOfService && (c.State == CompFree || c.OrderID == o.ID) {
				ids = append(ids, id)
			}
		}
		return nil
	})
	if err != nil || len(ids) == 0 {
		return ScanResult{Outcome: OutcomeDenied, Reason: DenyNotReady, OrderID: o.ID}
	}
	opened, jammed, err := l.openFor(ctx, doorJob{ids: ids, op: OpPickup, orderID: o.ID})
	if err != nil {
		if len(opened)+len(jammed) == 0 {
			return ScanResult{Outcome: OutcomeError, Reason: "store"}
		}
		l.log.Error("reopen outcome", "err", err)
	}
	l.log.Info("reopened within grace", "order", o.ID, "compartments", opened)
	if len(jammed) > 0 {
		return ScanResult{Outcome: OutcomeJammed, OrderID: o.ID, Compartments: jammed}
	}
	return ScanResult{Outcome: OutcomeOpened, OrderID: o.ID, Compartments: opened, Reason: "reopen"}
}
