package locker

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"sort"
	"time"
)

// The core's side of synchronisation with the central library: applying
// order changes (upsert, cancel, snapshot) idempotently by rev, acking
// events, and opening doors remotely.
// Physical facts recorded at this locker always win over the central
// library's view; every disagreement is reported as a Conflict.

// Counter names.
const (
	CounterOrdersRev = "orders_rev" // highest order rev applied
	CounterAckedSeq  = "acked_seq"  // central stored every event up to this
	// CounterSnapshotRev is the rev of the last complete order set
	// swapped in (ReplaceOrders): an older one, however late, is ignored.
	CounterSnapshotRev = "snapshot_rev"
)

// ErrStaleRev is returned for an order change whose rev is not newer than
// the stored one.
var ErrStaleRev = errors.New("stale order rev")

// Conflict is an order change refused, with why.
type Conflict struct {
	OrderID string     `json:"order_id"`
	Reason  string     `json:"reason"`
	State   OrderState `json:"state,omitempty"` // the order's state here
}

// OrdersResult says what an order change did, for ack.orders. Applied
// and Stale list at most MaxListedIDs ids (a snapshot of 200,000 orders
// must not make a 2.4 MB ack); their counts are exact. Conflicts and
// rejections are always listed whole.
type OrdersResult struct {
	Rev          uint64     `json:"rev"` // orders_rev after the change
	Applied      []string   `json:"applied,omitempty"`
	Stale        []string   `json:"stale,omitempty"`
	AppliedCount int        `json:"applied_count"`
	StaleCount   int        `json:"stale_count"`
	Conflicts    []Conflict `json:"conflicts,omitempty"`
	Rejected     []Conflict `json:"rejected,omitempty"`
	Pending      bool       `json:"pending,omitempty"` // snapshot part staged, waiting for the rest
}

// MaxListedIDs bounds the applied and stale ids an OrdersResult lists.
const MaxListedIDs = 100

func (r *OrdersResult) applied(id string) {
	r.AppliedCount++
	if len(r.Applied) < MaxListedIDs {
		r.Applied = append(r.Applied, id)
	}
}

func (r *OrdersResult) stale(id string) {
	r.StaleCount++
	if len(r.Stale) < MaxListedIDs {
		r.Stale = append(r.Stale, id)
	}
}

// checkIncoming validates an order from the central library.
func checkIncoming(o Order) error {
	switch {
	case o.ID == "":
		return errors.New("order without id")
	case o.Rev == 0:
		return errors.New("rev must be positive")
	case !o.Size.Valid():
		return fmt.Errorf("bad size %q", o.Size)
	case !isHexHash(o.CodeHash):
		return errors.New("code_hash must be 64 hex digits (or send code)")
	case o.PatronHash != "" && !isHexHash(o.PatronHash):
		return errors.New("patron_hash must be 64 hex digits")
	case o.State != OrderAssigned && o.State != OrderReady:
		return fmt.Errorf("central may send assigned or ready, not %q", o.State)
	case o.ExpiresAt.IsZero():
		return errors.New("expires_at required")
	}
	return nil
}

// isHexHash reports whether h is 64 lowercase hex digits (a keyed hash).
func isHexHash(h string) bool {
	if len(h) != 64 {
		return false
	}
	for i := 0; i < len(h); i++ {
		if !(h[i] >= '0' && h[i] <= '9' || h[i] >= 'a' && h[i] <= 'f') {
			return false
		}
	}
	return true
}

// applyOrder stores one order from the central library in tx. A new order
// is stored as assigned (only a load here makes it ready) and its
// pre-assigned compartment reserved if free. A known order takes the new
// descriptive fields, code and expiry; its state stays what happened here.
func (l *Locker) applyOrder(tx Tx, o Order, res *OrdersResult) error {
	if err := checkIncoming(o); err != nil {
		res.Rejected = append(res.Rejected, Conflict{OrderID: o.ID, Reason: err.Error()})
		return nil
	}
	cur, err := tx.Order(o.ID)
	switch {
	case errors.Is(err, ErrNotFound):
		central := o.State
		o.State, o.Loaded, o.Compartments, o.FactSeq = OrderAssigned, false, nil, 0
		o.LoadedAt, o.PickedUpAt = time.Time{}, time.Time{}
		if central == OrderReady {
			// The central library's record of a load here, for an order
			// this store does not know (a replaced SD card restored by a
			// snapshot): believed only if that compartment is free here.
			restored, err := l.restoreLoaded(tx, &o)
			if err != nil {
				return err
			}
			if !restored {
				res.Conflicts = append(res.Conflicts, Conflict{OrderID: o.ID, State: OrderAssigned,
					Reason: fmt.Sprintf("ready in %q per central, but that compartment is not free here; kept as assigned", o.Assigned)})
			}
		} else if err := l.reserve(tx, o.Assigned, o.ID); err != nil {
			return err
		}
		if err := tx.PutOrder(o); err != nil {
			return err
		}
	case err != nil:
		return err
	case o.Rev <= cur.Rev:
		res.stale(o.ID)
		return nil
	default:
		if cur.State.Terminal() || cur.Loaded && cur.State != OrderReady {
			res.Conflicts = append(res.Conflicts, Conflict{OrderID: o.ID, State: cur.State,
				Reason: fmt.Sprintf("%s here; not reverted", cur.State)})
		} else if cur.State == OrderCancelled && !cur.Loaded {
			cur.State = OrderAssigned // the central library revives its own cancel
			cur.EndedAt = time.Time{}
		}
		if cur.State == OrderAssigned && cur.Assigned != o.Assigned {
			if o.Assigned != "" {
				if _, err := tx.Compartment(o.Assigned); errors.Is(err, ErrNotFound) {
					res.Conflicts = append(res.Conflicts, Conflict{OrderID: o.ID, State: cur.State,
						Reason: fmt.Sprintf("compartment %q does not exist here; staff choose one when loading", o.Assigned)})
				} else if err != nil {
					return err
				}
			}
			if err := l.unreserve(tx, cur.Assigned, cur.ID); err != nil {
				return err
			}
			if err := l.reserve(tx, o.Assigned, cur.ID); err != nil {
				return err
			}
			cur.Assigned = o.Assigned
		}
		cur.Rev, cur.Items, cur.ExpiresAt, cur.Size = o.Rev, o.Items, o.ExpiresAt, o.Size
		cur.Delivery = o.Delivery
		if !cur.State.Terminal() {
			cur.CodeHash, cur.PatronHash = o.CodeHash, o.PatronHash
		}
		if err := tx.PutOrder(cur); err != nil {
			return err
		}
	}
	res.applied(o.ID)
	return bumpRev(tx, o.Rev)
}

func bumpRev(tx Tx, rev uint64) error {
	cur, err := tx.Counter(CounterOrdersRev)
	if err != nil || rev <= cur {
		return err
	}
	return tx.SetCounter(CounterOrdersRev, rev)
}

// restoreLoaded takes a new order the central library says is ready in
// compartment o.Assigned as loaded there, if that compartment is free.
func (l *Locker) restoreLoaded(tx Tx, o *Order) (bool, error) {
	if o.Assigned == "" {
		return false, nil
	}
	c, err := tx.Compartment(o.Assigned)
	if errors.Is(err, ErrNotFound) || err == nil && (c.State != CompFree || c.OutOfService) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	c.State, c.OrderID = CompLoaded, o.ID
	o.State, o.Loaded, o.Compartments = OrderReady, true, []string{c.ID}
	o.LoadedAt = l.clock.Now().UTC()
	l.log.Warn("order restored as loaded from the central library's record", "order", o.ID, "compartment", c.ID)
	return true, tx.PutCompartment(c)
}

// reserve marks compartment id reserved for orderID if it is free.
func (l *Locker) reserve(tx Tx, id, orderID string) error {
	if id == "" {
		return nil
	}
	c, err := tx.Compartment(id)
	if errors.Is(err, ErrNotFound) {
		return nil // unknown here: staff pick a compartment when loading
	}
	if err != nil || c.State != CompFree || c.OutOfService {
		return err
	}
	c.State, c.OrderID = CompReserved, orderID
	return tx.PutCompartment(c)
}

func (l *Locker) unreserve(tx Tx, id, orderID string) error {
	if id == "" {
		return nil
	}
	c, err := tx.Compartment(id)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil || c.State != CompReserved || c.OrderID != orderID {
		return err
	}
	c.State, c.OrderID = CompFree, ""
	return tx.PutCompartment(c)
}

// ApplyOrders applies orders.upsert in one transaction.
func (l *Locker) ApplyOrders(orders []Order) (OrdersResult, error) {
	var res OrdersResult
	err := l.update(func(tx Tx) error {
		res = OrdersResult{}
		for _, o := range orders {
			if err := l.applyOrder(tx, o, &res); err != nil {
				return err
			}
		}
		var err error
		res.Rev, err = tx.Counter(CounterOrdersRev)
		return err
	})
	return res, err
}

// ApplyOrder applies one order; a stale or refused order is an error.
func (l *Locker) ApplyOrder(o Order) error {
	res, err := l.ApplyOrders([]Order{o})
	switch {
	case err != nil:
		return err
	case res.StaleCount > 0:
		return fmt.Errorf("order %s rev %d: %w", o.ID, o.Rev, ErrStaleRev)
	case len(res.Rejected) > 0:
		return fmt.Errorf("order %s: %s", o.ID, res.Rejected[0].Reason)
	}
	return nil
}

// cancelOrder cancels one order in tx (see CancelOrders).
func (l *Locker) cancelOrder(tx Tx, id string, rev uint64, res *OrdersResult) error {
	o, err := tx.Order(id)
	if errors.Is(err, ErrNotFound) {
		if rev == 0 {
			res.Rejected = append(res.Rejected, Conflict{OrderID: id, Reason: "unknown order"})
			return nil
		}
		// The cancel overtook the order itself (two central replicas
		// publishing, a broker failing over): kept as a cancelled order
		// without a code (a tombstone), so that the order arriving later
		// with a lower rev is stale and never becomes collectable.
		o = Order{ID: id, Rev: rev, State: OrderCancelled}
		o.markEnded(l.clock.Now())
		if err := tx.PutOrder(o); err != nil {
			return err
		}
		l.log.Info("cancel of an order not yet here kept", "order", id, "rev", rev)
		res.applied(id)
		return bumpRev(tx, rev)
	}
	if err != nil {
		return err
	}
	if rev != 0 && rev <= o.Rev {
		res.stale(id)
		return nil
	}
	if o.State != OrderCancelled {
		if err := o.Move(OrderCancelled); err != nil {
			res.Conflicts = append(res.Conflicts, Conflict{OrderID: id, State: o.State, Reason: fmt.Sprintf("%s here; cannot cancel", o.State)})
			return nil
		}
	}
	if rev != 0 {
		o.Rev = rev
	}
	o.markEnded(l.clock.Now())
	if !o.Loaded {
		if err := l.unreserve(tx, o.Assigned, o.ID); err != nil {
			return err
		}
	}
	if err := tx.PutOrder(o); err != nil {
		return err
	}
	l.log.Info("order cancelled", "order", id, "needs_retrieval", o.NeedsRetrieval())
	res.applied(id)
	return bumpRev(tx, rev)
}

// CancelOrders applies orders.cancel in one transaction. An order not yet
// loaded is simply cancelled (its reserved compartment freed); a loaded
// one stays in its compartment until staff retrieve it. An order already
// picked up, expired or retrieved here is a conflict.
func (l *Locker) CancelOrders(ids []string, rev uint64) (OrdersResult, error) {
	var res OrdersResult
	err := l.update(func(tx Tx) error {
		res = OrdersResult{}
		for _, id := range ids {
			if err := l.cancelOrder(tx, id, rev, &res); err != nil {
				return err
			}
		}
		var err error
		res.Rev, err = tx.Counter(CounterOrdersRev)
		return err
	})
	return res, err
}

// CancelOrder cancels one order; a conflict is an error.
func (l *Locker) CancelOrder(id string, rev uint64) error {
	res, err := l.CancelOrders([]string{id}, rev)
	switch {
	case err != nil:
		return err
	case res.StaleCount > 0:
		return fmt.Errorf("cancel %s rev %d: %w", id, rev, ErrStaleRev)
	case len(res.Conflicts) > 0:
		return fmt.Errorf("cancel %s: %w: %s", id, ErrIllegalTransition, res.Conflicts[0].Reason)
	case len(res.Rejected) > 0:
		return fmt.Errorf("cancel %s: %s", id, res.Rejected[0].Reason)
	}
	return nil
}

// ReplaceOrders swaps in a complete set of the central library's orders,
// taken at order rev rev (a snapshot). orders yields the set a batch at a
// time (a snapshot's parts, read from wherever they were kept), so memory
// stays bounded by a batch, not the set.
//
// The orders are applied by rev, as upserts, and each id is marked as
// seen; then the orders not seen are dropped — except an order whose books
// are in a compartment here, whose physical fact the central library has
// not acknowledged (both kept, as conflicts), or changed after the set was
// taken (a rev above rev). A set older than the last one applied (rev
// below it) changes nothing and is reported rejected.
//
// Every transaction is small, so that the store's writer is never held
// long: a pickup waits behind it, and so do the run loop's door events and
// /healthz. Stopped half-way (an error, a crash), ReplaceOrders may simply
// be called again with the same set: applying it is idempotent.
func (l *Locker) ReplaceOrders(rev uint64, orders iter.Seq2[[]Order, error]) (OrdersResult, error) {
	var res OrdersResult
	var applied uint64
	err := l.update(func(tx Tx) error {
		var err error
		if applied, err = tx.Counter(CounterSnapshotRev); err != nil || rev < applied {
			if err == nil {
				res.Rev, err = tx.Counter(CounterOrdersRev)
			}
			return err
		}
		return tx.ClearSnapSeen()
	})
	if err != nil {
		return res, err
	}
	if rev < applied {
		res.Rejected = append(res.Rejected, Conflict{Reason: fmt.Sprintf(
			"snapshot (rev %d) is older than the snapshot applied (rev %d): ignored", rev, applied)})
		return res, nil
	}
	batch := snapshotTxMin
	for part, err := range orders {
		if err != nil {
			return res, err
		}
		for lo := 0; lo < len(part); {
			chunk := part[lo:min(lo+batch, len(part))]
			t0 := time.Now()
			if err := l.update(func(tx Tx) error { return l.applySnapshotOrders(tx, chunk, &res) }); err != nil {
				return res, err
			}
			lo += len(chunk)
			batch = nextBatch(batch, time.Since(t0))
		}
	}
	for after := ""; ; {
		var ids []string
		err := l.update(func(tx Tx) error {
			var err error
			if ids, err = tx.OrderIDsAfter(after, snapshotDropBatch); err != nil {
				return err
			}
			acked, err := tx.Counter(CounterAckedSeq)
			if err != nil {
				return err
			}
			for _, id := range ids {
				seen, err := tx.SnapSeen(id)
				if err != nil || seen {
					if err != nil {
						return err
					}
					continue
				}
				o, err := tx.Order(id)
				if err != nil {
					return err
				}
				if err := l.dropAbsent(tx, o, rev, acked, &res); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return res, err
		}
		if len(ids) < snapshotDropBatch {
			break
		}
		after = ids[len(ids)-1]
	}
	err = l.update(func(tx Tx) error {
		if err := bumpRev(tx, rev); err != nil {
			return err
		}
		if err := tx.SetCounter(CounterSnapshotRev, rev); err != nil {
			return err
		}
		if err := tx.ClearSnapSeen(); err != nil {
			return err
		}
		var err error
		res.Rev, err = tx.Counter(CounterOrdersRev)
		return err
	})
	if err == nil {
		l.log.Info("snapshot applied", "rev", rev, "applied", res.AppliedCount, "stale", res.StaleCount,
			"conflicts", len(res.Conflicts), "rejected", len(res.Rejected))
	}
	return res, err
}

// Bounds of ReplaceOrders: how many orders a transaction applies follows
// how long the last one held the writer: doubled while under half the
// target, halved when over it. So it suits the card's speed — a
// transaction's cost is mostly its commit, which writes every index page
// the orders touched and syncs.
const (
	snapshotTxTarget  = 25 * time.Millisecond
	snapshotTxMin     = 50
	snapshotTxMax     = 5000
	snapshotDropBatch = 2000 // ids looked at a transaction
)

// nextBatch sizes the next transaction of a snapshot's apply from how long
// the last one took.
func nextBatch(batch int, took time.Duration) int {
	switch {
	case took > snapshotTxTarget:
		return max(batch/2, snapshotTxMin)
	case took < snapshotTxTarget/2:
		return min(batch*2, snapshotTxMax)
	}
	return batch
}

// applySnapshotOrders applies some of a snapshot's orders in tx and marks
// them seen.
func (l *Locker) applySnapshotOrders(tx Tx, orders []Order, res *OrdersResult) error {
	ids := make([]string, 0, len(orders))
	for _, o := range orders {
		seen, err := tx.SnapSeen(o.ID)
		if err != nil {
			return err
		}
		if seen || slices.Contains(ids, o.ID) {
			// Listed twice: a higher rev still counts (it is applied
			// like any upsert); the listing is reported.
			res.Rejected = append(res.Rejected, Conflict{OrderID: o.ID, Reason: fmt.Sprintf("listed twice in the snapshot (rev %d)", o.Rev)})
			if cur, err := tx.Order(o.ID); err == nil && o.Rev > cur.Rev {
				var dup OrdersResult
				if err := l.applyOrder(tx, o, &dup); err != nil {
					return err
				}
				res.Conflicts = append(res.Conflicts, dup.Conflicts...)
			}
			continue
		}
		ids = append(ids, o.ID)
		if err := l.applyOrder(tx, o, res); err != nil {
			return err
		}
	}
	return tx.MarkSnapSeen(ids)
}

// dropAbsent drops an order absent from a snapshot of rev, unless it is
// newer than the snapshot, holds books here, or has a physical fact the
// central library has not acknowledged (those are kept, as conflicts).
func (l *Locker) dropAbsent(tx Tx, o Order, rev, acked uint64, res *OrdersResult) error {
	if o.Rev > rev {
		return nil // changed after the snapshot was taken: newer than it
	}
	holdsBooks := o.Loaded && !o.State.Terminal()
	if holdsBooks || o.FactSeq > acked {
		res.Conflicts = append(res.Conflicts, Conflict{OrderID: o.ID, State: o.State,
			Reason: fmt.Sprintf("absent from snapshot but %s here; kept", o.State)})
		return nil
	}
	if err := l.unreserve(tx, o.Assigned, o.ID); err != nil {
		return err
	}
	return tx.DeleteOrder(o.ID)
}

// AckEvents removes events up to upto from the outbox: the central
// library has stored them. upto beyond the last seq recorded is clamped.
func (l *Locker) AckEvents(upto uint64) (int, error) {
	var n int
	err := l.update(func(tx Tx) error {
		last, err := tx.LastSeq()
		if err != nil {
			return err
		}
		upto = min(upto, last)
		acked, err := tx.Counter(CounterAckedSeq)
		if err != nil || upto <= acked {
			n = 0
			return err
		}
		if n, err = tx.AckEvents(upto); err != nil {
			return err
		}
		return tx.SetCounter(CounterAckedSeq, upto)
	})
	return n, err
}

// SyncState is what the link announces in its birth message.
type SyncState struct {
	Boot      uint64
	StoreID   string // the store's identity (Store.ID)
	OrdersRev uint64
	// SnapshotRev is the rev of the last complete order set applied: a
	// snapshot older than it is ignored.
	SnapshotRev uint64
	OutboxHead  uint64 // last seq recorded
	OutboxTail  uint64 // first seq not acked (head+1 when the outbox is empty)
	AckedSeq    uint64
	Depth       int
}

// SyncState reads the synchronisation counters.
func (l *Locker) SyncState() (SyncState, error) {
	st := SyncState{Boot: l.store.Boot(), StoreID: l.store.ID()}
	err := l.store.View(func(tx Tx) error {
		var err error
		if st.OrdersRev, err = tx.Counter(CounterOrdersRev); err != nil {
			return err
		}
		if st.SnapshotRev, err = tx.Counter(CounterSnapshotRev); err != nil {
			return err
		}
		if st.AckedSeq, err = tx.Counter(CounterAckedSeq); err != nil {
			return err
		}
		if st.OutboxHead, err = tx.LastSeq(); err != nil {
			return err
		}
		if st.Depth, err = tx.OutboxDepth(); err != nil {
			return err
		}
		first, err := tx.Events(0, 1)
		st.OutboxTail = st.OutboxHead + 1
		if len(first) == 1 {
			st.OutboxTail = first[0].Seq
		}
		return err
	})
	return st, err
}

// StoreID is the identity of the locker's store.
func (l *Locker) StoreID() string { return l.store.ID() }

// RecordIdentityConflict records that another cabinet uses this locker's
// id (the link saw its birth messages), with what is known of it.
func (l *Locker) RecordIdentityConflict(c IdentityConflict) {
	l.log.Error("another cabinet is using this locker id (a cloned SD card?): both take each other's MQTT session, and order changes reach whichever is connected",
		"other_instance", c.OtherInstance, "other_store", c.OtherStore, "same_store", c.SameStore, "births_seen", c.BirthsSeen)
	l.recordOne(c)
}

// RemoteOpen opens a compartment on the central library's authenticated
// command (a reader called support). If the compartment holds a ready
// order, that is its pickup (via remote); otherwise it is a maintenance
// open. Either way the event is written before the lock is pulsed.
func (l *Locker) RemoteOpen(ctx context.Context, id, reason string) (ScanResult, error) {
	if l.doors.get(id) == nil {
		return ScanResult{}, fmt.Errorf("unknown compartment %q", id)
	}
	var o Order
	var ready bool
	if err := l.store.View(func(tx Tx) error {
		if id == ReturnSlotID {
			return nil
		}
		c, err := tx.Compartment(id)
		if err != nil {
			return err
		}
		if c.State == CompLoaded && c.OrderID != "" {
			o, err = tx.Order(c.OrderID)
			ready = err == nil && o.State == OrderReady && slices.Contains(o.Compartments, id)
		}
		return nil
	}); err != nil {
		return ScanResult{Outcome: OutcomeError, Reason: "store"}, err
	}
	if ready {
		l.recordOne(MaintenanceOpened{Compartment: id, Reason: reason, Remote: true, OrderID: o.ID})
		return l.pickup(ctx, Device{}, o, ViaRemote, ""), nil
	}
	if reason == "" {
		reason = "remote"
	}
	return l.maintenanceOpen(ctx, MaintenanceOpened{Compartment: id, Reason: reason, Remote: true})
}

// Telemetry is the periodic health summary (never in the outbox).
type Telemetry struct {
	Free        map[Size]int    `json:"free"`
	Used        map[Size]int    `json:"used"`
	OutOfServ   []string        `json:"out_of_service,omitempty"`
	DoorsOpen   []string        `json:"doors_open,omitempty"`
	OutboxDepth int             `json:"outbox_depth"`
	BinFull     bool            `json:"bin_full"`
	Scanners    map[string]bool `json:"scanners"` // connected, by name
	// Compartments, each with its state, for the central's console to
	// draw the cabinet.
	Compartments []TeleCompartment `json:"compartments,omitempty"`
}

// TeleCompartment is one compartment in the telemetry.
type TeleCompartment struct {
	ID           string `json:"id"`
	Size         Size   `json:"size"`
	State        string `json:"state"` // free, assigned, ready, ...
	DoorOpen     bool   `json:"door_open,omitempty"`
	OutOfService bool   `json:"out_of_service,omitempty"`
}

// Telemetry reads the current summary.
func (l *Locker) Telemetry() (Telemetry, error) {
	st, err := l.LiveStatus()
	if err != nil {
		return Telemetry{}, err
	}
	t := Telemetry{Free: map[Size]int{}, Used: map[Size]int{}, OutboxDepth: st.OutboxDepth, BinFull: st.BinFull,
		Scanners: l.ScannerStates()}
	for _, c := range st.Compartments {
		switch {
		case c.OutOfService:
			t.OutOfServ = append(t.OutOfServ, c.ID)
		case c.State == CompFree:
			t.Free[c.Size]++
		default:
			t.Used[c.Size]++
		}
		if c.DoorOpen {
			t.DoorsOpen = append(t.DoorsOpen, c.ID)
		}
		t.Compartments = append(t.Compartments, TeleCompartment{ID: c.ID, Size: c.Size, State: string(c.Effective),
			DoorOpen: c.DoorOpen, OutOfService: c.OutOfService})
	}
	sort.Strings(t.DoorsOpen)
	return t, nil
}
