package hub

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/sync/hub/circulation"
	"github.com/lockerd/lockerd/sync/hub/notice"
	"github.com/lockerd/lockerd/sync/hub/stock"
	"github.com/lockerd/lockerd/sync/protocol"
)

// NewOrder asks the hub to create an order for a locker.
type NewOrder struct {
	Locker string `json:"locker"`
	ID     string `json:"id,omitempty"`
	// Patron is the reader's library card number, for the ILS: it stays
	// at the hub.
	Patron      string          `json:"patron,omitempty"`
	Size        string          `json:"size,omitempty"`
	Compartment string          `json:"compartment,omitempty"`
	Items       []protocol.Item `json:"items,omitempty"`
	// Accessible: the reader needs a compartment reachable from a
	// wheelchair.
	Accessible bool   `json:"accessible,omitempty"`
	TTL        string `json:"ttl,omitempty"` // default 72h
	CodeLen    int    `json:"code_len,omitempty"`
	// Delivery: a community volunteer or courier collects it (a
	// volunteer's badge opens it at the locker).
	Delivery bool `json:"delivery,omitempty"`
	// SameCodeAs gives the order the pickup code of another live order of
	// the same reader at the same locker: one scan opens both. No new
	// code is made (Created.Code is empty: the reader has it already).
	SameCodeAs string `json:"same_code_as,omitempty"`
	// Contact: how the reader is told when the books are in (notices).
	Contact notice.Contact `json:"contact,omitzero"`
	// Address is a home delivery's (with Delivery): kept at the hub for
	// the courier's list, never sent to the locker. Source says who made
	// the order: "" (the API, the console), "reader" (the order page),
	// "hold" (a staff scan of a held item).
	Address string `json:"address,omitempty"`
	Source  string `json:"source,omitempty"`
}

// Bounds of a new order.
const (
	MaxItems      = 50
	maxBarcodeLen = circulation.MaxBarcodeLen
	maxTitleLen   = 256
	minTTL        = time.Minute
	maxTTL        = 90 * 24 * time.Hour
)

var (
	orderIDRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
	compIDRe  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,15}$`)
)

// check bounds every field of a new order (the locker id is checked by
// requireKnown).
func (req NewOrder) check() error {
	if req.ID != "" && !orderIDRe.MatchString(req.ID) {
		return fmt.Errorf("order id %q: letters, digits, '.', '-' and '_', up to 64", req.ID)
	}
	if req.Compartment != "" && !compIDRe.MatchString(req.Compartment) {
		return fmt.Errorf("compartment %q: letters, digits, '-' and '_', up to 16", req.Compartment)
	}
	if len(req.Patron) > maxBarcodeLen || !printable(req.Patron) || strings.ContainsAny(req.Patron, "|") {
		return fmt.Errorf("patron %q: up to %d printable characters, no '|'", req.Patron, maxBarcodeLen)
	}
	if len(req.Items) > MaxItems {
		return fmt.Errorf("%d items: at most %d an order", len(req.Items), MaxItems)
	}
	for i, it := range req.Items {
		if it.Barcode == "" || len(it.Barcode) > maxBarcodeLen || !printable(it.Barcode) || strings.Contains(it.Barcode, "|") {
			return fmt.Errorf("item %d: barcode %q: 1 to %d printable characters, no '|'", i+1, it.Barcode, maxBarcodeLen)
		}
		if utf8.RuneCountInString(it.Title) > maxTitleLen || !utf8.ValidString(it.Title) || !printable(it.Title) {
			return fmt.Errorf("item %d: title: at most %d printable characters", i+1, maxTitleLen)
		}
	}
	if utf8.RuneCountInString(req.Address) > 300 || !printable(req.Address) || req.Address != "" && !req.Delivery || len(req.Source) > 16 {
		return fmt.Errorf("address: up to 300 printable characters, for a delivery only; source: up to 16")
	}
	if req.CodeLen != 0 && (req.CodeLen < locker.MinCodeLen || req.CodeLen > locker.MaxCodeLen) {
		return fmt.Errorf("code length %d out of bounds %d..%d", req.CodeLen, locker.MinCodeLen, locker.MaxCodeLen)
	}
	return nil
}

func printable(s string) bool {
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return false
		}
	}
	return true
}

// Created is a new order with its pickup code (shown once).
type Created struct {
	Order OrderRec `json:"order"`
	Code  string   `json:"code"`
}

// pendOrders signs an order change and keeps it as pending, until the
// locker acknowledges its rev, in tx; the caller publishes it once tx has
// committed.
func (h *Hub) pendOrders(tx Tx, out *[]PendingMsg, lockerID string, rev uint64, part int, typ string, data any) error {
	id, env, err := h.seal(lockerID, typ, nil, data)
	if err != nil {
		return err
	}
	p := PendingMsg{ID: id, Topic: h.topics(lockerID).DownOrders(), Payload: env, At: time.Now().UTC()}
	*out = append(*out, p)
	return tx.Orders.PutPending(lockerID, rev, part, p)
}

// update runs fn in a transaction and publishes the order changes it
// pended once it has committed. Transactions and their publishes are
// serialised together, so that order changes go out in rev order even
// when several are made at once.
func (h *Hub) update(fn func(tx Tx, out *[]PendingMsg) error) error {
	h.pubMu.Lock()
	defer h.pubMu.Unlock()
	var out []PendingMsg
	err := h.store.Update(func(tx Tx) error {
		out = nil
		return fn(tx, &out)
	})
	if err != nil {
		return err
	}
	for _, p := range out {
		h.publish(p.Topic, p.Payload)
	}
	return nil
}

// CreateOrder makes an order with a fresh pickup code and sends it to the
// locker. Only the code's keyed hash is stored and sent.
func (h *Hub) CreateOrder(req NewOrder) (Created, error) {
	if err := h.requireKnown(req.Locker); err != nil {
		return Created{}, err
	}
	if err := req.check(); err != nil {
		return Created{}, err
	}
	if err := req.Contact.Check(); err != nil {
		return Created{}, err
	}
	if len(h.cfg.PickupKey) == 0 {
		return Created{}, errors.New("hub has no pickup key")
	}
	if req.Size == "" {
		req.Size = "S"
	}
	req.Size = strings.ToUpper(req.Size)
	if !locker.Size(req.Size).Valid() {
		return Created{}, fmt.Errorf("bad size %q", req.Size)
	}
	ttl := 72 * time.Hour
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil || d < minTTL || d > maxTTL {
			return Created{}, fmt.Errorf("ttl %q: want a duration from %v to %v", req.TTL, minTTL, maxTTL)
		}
		ttl = d
	}
	if req.CodeLen == 0 {
		req.CodeLen = locker.DefaultCodeLen
	}
	code, err := locker.NewCode(req.CodeLen)
	if err != nil {
		return Created{}, err
	}
	codeHash := h.cfg.PickupKey.Hash(code)
	var sealed []byte // for the notices: the code sealed, never kept in the clear
	if !req.Contact.Empty() {
		if sealed, err = h.notices.Seal(code); err != nil {
			return Created{}, err
		}
	}
	patronHash := ""
	if req.Patron != "" {
		p, err := locker.NormalizePatron(req.Patron)
		if err != nil {
			return Created{}, fmt.Errorf("patron: %w", err)
		}
		patronHash = h.cfg.PickupKey.PatronHash(p)
	}
	if req.ID == "" {
		suffix, _ := locker.NewCode(8)
		req.ID = "ORD-" + suffix
	}
	if req.Items == nil {
		req.Items = []protocol.Item{}
	}
	checkQueued, err := h.circ.CheckPatron(req.Patron)
	if err != nil {
		return Created{}, err
	}
	var rec OrderRec
	err = h.update(func(tx Tx, out *[]PendingMsg) error {
		if _, exists, err := tx.Orders.Order(req.Locker, req.ID); err != nil || exists {
			if err == nil {
				err = fmt.Errorf("order %s exists", req.ID)
			}
			return err
		}
		if req.SameCodeAs != "" {
			// Only the same reader's live order here: a code shared by
			// two readers would open one's books for the other.
			other, found, err := tx.Orders.Order(req.Locker, req.SameCodeAs)
			switch {
			case err != nil:
				return err
			case !found:
				return fmt.Errorf("same code as %s: no such order at %s", req.SameCodeAs, req.Locker)
			case other.Patron == "" || other.Patron != req.Patron:
				return fmt.Errorf("same code as %s: only an order of the same reader (--patron) shares a code", req.SameCodeAs)
			case other.Status != "assigned" && other.Status != "ready":
				return fmt.Errorf("same code as %s: that order is %s", req.SameCodeAs, other.Status)
			}
			codeHash, code, sealed = other.CodeHash, "", other.SealedCode
		}
		rev, err := tx.Orders.NextRev(req.Locker)
		if err != nil {
			return err
		}
		rec = OrderRec{Order: protocol.Order{ID: req.ID, Rev: rev, State: "assigned", Size: req.Size,
			Compartment: req.Compartment, Items: req.Items, Accessible: req.Accessible, CodeHash: codeHash,
			PatronHash: patronHash, Delivery: req.Delivery,
			ExpiresAt: time.Now().Add(ttl).UTC().Truncate(time.Second)}, Locker: req.Locker, Status: "assigned", Patron: req.Patron,
			Contact: req.Contact, SealedCode: sealed, Address: req.Address, Source: req.Source}
		if err := tx.Orders.PutOrder(rec); err != nil {
			return err
		}
		if checkQueued {
			// The circulation.ILS could not be asked: it is asked later, and a refusal
			// is a staff exception.
			now := time.Now().UTC()
			if _, err := tx.Circ.AddCirc(circulation.CircRec{Locker: req.Locker, Order: req.ID, Kind: circulation.CircPatron, Patron: req.Patron,
				EventAt: now, Queued: now, State: circulation.CircQueued}); err != nil {
				return err
			}
		}
		return h.pendOrders(tx, out, req.Locker, rev, 0, protocol.TypeOrdersUpsert, protocol.OrdersUpsert{Orders: []protocol.Order{rec.Order}})
	})
	if err != nil {
		return Created{}, err
	}
	h.log.Info("order created", "locker", req.Locker, "order", rec.ID, "rev", rec.Rev)
	return Created{Order: rec, Code: code}, nil
}

// CancelOrder cancels an order at its locker.
func (h *Hub) CancelOrder(lockerID, orderID string) (uint64, error) {
	var rev uint64
	err := h.update(func(tx Tx, out *[]PendingMsg) error {
		o, found, err := tx.Orders.Order(lockerID, orderID)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("no order %s at %s", orderID, lockerID)
		}
		if rev, err = tx.Orders.NextRev(lockerID); err != nil {
			return err
		}
		o.Rev = rev
		if o.Status == "assigned" || o.Status == "ready" {
			o.Status = "cancelled"
			if err := h.tell(tx, &o, o.Status); err != nil {
				return err
			}
		}
		if err := tx.Orders.PutOrder(o); err != nil {
			return err
		}
		return h.pendOrders(tx, out, lockerID, rev, 0, protocol.TypeOrdersCancel, protocol.OrdersCancel{OrderIDs: []string{orderID}, Rev: rev})
	})
	return rev, err
}

// Snapshot sends the complete set of a locker's live orders (assigned or
// ready here) in parts of at most partSize orders.
func (h *Hub) Snapshot(lockerID string, partSize int) (string, int, error) {
	if err := h.requireKnown(lockerID); err != nil {
		return "", 0, err
	}
	if partSize <= 0 {
		partSize = 500
	}
	snapID := fmt.Sprintf("snap-%d", time.Now().UnixNano())
	var parts int
	// The orders are read in the transaction that takes the snapshot's
	// rev: an order added meanwhile is either in it or has a later rev.
	err := h.update(func(tx Tx, out *[]PendingMsg) error {
		orders, err := tx.Orders.Orders(lockerID)
		if err != nil {
			return err
		}
		var live []protocol.Order
		for _, o := range orders {
			if o.Status == "assigned" || o.Status == "ready" {
				w := o.Order
				w.State = o.Status
				live = append(live, w)
			}
		}
		parts = max(1, (len(live)+partSize-1)/partSize)
		rev, err := tx.Orders.NextRev(lockerID)
		if err != nil {
			return err
		}
		for p := 1; p <= parts; p++ {
			chunk := live[min((p-1)*partSize, len(live)):min(p*partSize, len(live))]
			if chunk == nil {
				chunk = []protocol.Order{}
			}
			if err := h.pendOrders(tx, out, lockerID, rev, p, protocol.TypeOrdersSnapshot,
				protocol.OrdersSnapshot{SnapID: snapID, Part: p, Parts: parts, Rev: rev, Orders: chunk}); err != nil {
				return err
			}
		}
		return nil
	})
	return snapID, parts, err
}

// Open sends cmd.open; the command expires after the hub's CmdTTL.
func (h *Hub) Open(lockerID, compartment, reason string) (string, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" || utf8.RuneCountInString(reason) > 500 || !printable(reason) {
		return "", errors.New("a remote open needs a reason (1 to 500 printable characters): it is audited")
	}
	if !compIDRe.MatchString(compartment) {
		return "", fmt.Errorf("compartment %q: letters, digits, '-' and '_', up to 16", compartment)
	}
	return h.command(lockerID, protocol.TypeCmdOpen, protocol.CmdOpen{Compartment: compartment, Reason: reason})
}

// Service sends cmd.service.
func (h *Hub) Service(lockerID, compartment string, inService bool) (string, error) {
	return h.command(lockerID, protocol.TypeCmdService, protocol.CmdService{Compartment: compartment, InService: inService})
}

// Badges sends cmd.badges: badges to add (each code's keyed hash, never
// the code) and to revoke by name or hash.
func (h *Hub) Badges(lockerID string, ch protocol.CmdBadges) (string, error) {
	if len(ch.Add)+len(ch.Revoke) == 0 {
		return "", errors.New("no badge to add or revoke")
	}
	if len(ch.Add)+len(ch.Revoke) > protocol.MaxBadgesPerCmd {
		return "", fmt.Errorf("at most %d badges a command", protocol.MaxBadgesPerCmd)
	}
	for _, b := range ch.Add {
		if err := (locker.Badge{Name: b.Name, Hash: b.Hash, Role: locker.BadgeRole(b.Role)}).Check(); err != nil {
			return "", err
		}
	}
	for _, r := range ch.Revoke {
		if r.Hash == "" && r.Name == "" {
			return "", errors.New("revoke: a badge's name or hash")
		}
	}
	return h.command(lockerID, protocol.TypeCmdBadges, ch)
}

// BadgeHash is the keyed hash of a badge's code, as the locker hashes a
// scan of it.
func (h *Hub) BadgeHash(code string) (string, error) {
	n, err := locker.NormalizeCode(code)
	if err != nil {
		return "", fmt.Errorf("badge code: %w", err)
	}
	if len(h.cfg.PickupKey) == 0 {
		return "", errors.New("hub has no pickup key")
	}
	return h.cfg.PickupKey.Hash(n), nil
}

func (h *Hub) command(lockerID, typ string, data any) (string, error) {
	if err := h.requireKnown(lockerID); err != nil {
		return "", err
	}
	exp := time.Now().Add(h.cfg.CmdTTL).UTC()
	id, env, err := h.seal(lockerID, typ, &exp, data)
	if err != nil {
		return "", err
	}
	if err := h.store.Update(func(tx Tx) error {
		return tx.Commands.PutCommand(CmdRec{ID: id, Locker: lockerID, Type: typ, Sent: time.Now().UTC()})
	}); err != nil {
		return "", err
	}
	h.publish(h.topics(lockerID).DownCmd(), env)
	return id, nil
}

// tell queues the reader's notice of an order's new status, and drops the
// sealed code once the order ended (it opens no door any more).
func (h *Hub) tell(tx Tx, o *OrderRec, status string) error {
	kind := map[string]string{"ready": notice.KindReady, "expired": notice.KindExpired, "cancelled": notice.KindCancelled}[status]
	if o.Delivery { // the reader waits at home: told when the courier takes the books
		kind = map[string]string{"picked_up": notice.KindDispatched, "cancelled": notice.KindCancelled}[status]
	}
	if kind != "" && !o.Contact.Empty() {
		n := notice.NewNotice{Order: o.ID, Locker: o.Locker, Kind: kind, Contact: o.Contact, Sealed: o.SealedCode, LastDay: o.ExpiresAt,
			Titles: notice.TitlesOf(o.Items), DeliverTo: o.Address}
		if len(o.Compartments) > 0 {
			n.Compartment = o.Compartments[0]
		}
		if err := h.notices.Queue(tx.Notices, n, time.Now()); err != nil {
			return err
		}
	}
	if status != "assigned" && status != "ready" {
		o.SealedCode = nil
	}
	return nil
}

// Remind queues the reminder of each ready order whose last day is less
// than a day away (once: the notice's key), as the leader does every ten
// minutes (tests call it with a clock of their own).
func (h *Hub) Remind(now time.Time) {
	if !h.notices.Enabled() || now.Sub(h.reminded) < 10*time.Minute {
		return
	}
	h.reminded = now
	known, _ := h.KnownLockers()
	for _, k := range known {
		err := h.store.Update(func(tx Tx) error {
			os, err := tx.Orders.Orders(k.ID)
			for _, o := range os {
				if err == nil && o.Status == "ready" && !o.Delivery && !o.Contact.Empty() && o.ExpiresAt.After(now) && o.ExpiresAt.Sub(now) < 24*time.Hour {
					err = h.notices.Queue(tx.Notices, notice.NewNotice{Order: o.ID, Locker: o.Locker, Kind: notice.KindReminder,
						Contact: o.Contact, Sealed: o.SealedCode, Compartment: strings.Join(o.Compartments, ", "), LastDay: o.ExpiresAt, Titles: notice.TitlesOf(o.Items)}, now)
				}
			}
			return err
		})
		if err != nil {
			h.log.Warn("reminders", "locker", k.ID, "err", err)
		}
	}
}

// Notices is what readers are told (sync/hub/notice); Stock the books
// readers may order to a locker (sync/hub/stock).
func (h *Hub) Notices() *notice.Service { return h.notices }
func (h *Hub) Stock() *stock.Service    { return h.stock }

// Order is one order as the hub has it.
func (h *Hub) Order(lockerID, orderID string) (o OrderRec, found bool, err error) {
	err = h.store.View(func(tx Tx) error { o, found, err = tx.Orders.Order(lockerID, orderID); return err })
	return o, found, err
}

// ExtendOrder keeps a ready order by more before it expires, once (the
// reader's ask), as a signed order change to its locker.
func (h *Hub) ExtendOrder(lockerID, orderID string, by time.Duration) (OrderRec, error) {
	return h.changeOrder(lockerID, orderID, func(o *OrderRec) error {
		if o.Status != "ready" || o.Extended || !o.ExpiresAt.After(time.Now()) {
			return fmt.Errorf("order %s is %s%s: only a ready order is kept longer, once", orderID, o.Status, map[bool]string{true: ", kept longer already"}[o.Extended])
		}
		o.ExpiresAt, o.Extended = o.ExpiresAt.Add(by), true
		return nil
	})
}

// AddOrderItem adds an item to an order not yet loaded (a hold of the
// same reader scanned while its door is open for loading), as a signed
// order change to its locker.
func (h *Hub) AddOrderItem(lockerID, orderID string, it protocol.Item) (OrderRec, error) {
	return h.changeOrder(lockerID, orderID, func(o *OrderRec) error {
		if o.Status != "assigned" || len(o.Items) >= MaxItems {
			return fmt.Errorf("order %s is %s with %d items: only an order to load takes another, up to %d", orderID, o.Status, len(o.Items), MaxItems)
		}
		o.Items = append(o.Items, it)
		return NewOrder{Items: o.Items}.check()
	})
}

// changeOrder changes an order by change (which says no with an error)
// under a new rev, and sends it to its locker.
func (h *Hub) changeOrder(lockerID, orderID string, change func(*OrderRec) error) (OrderRec, error) {
	var o OrderRec
	err := h.update(func(tx Tx, out *[]PendingMsg) error {
		var found bool
		var err error
		if o, found, err = tx.Orders.Order(lockerID, orderID); err != nil || !found {
			return errors.Join(err, fmt.Errorf("no order %s at %s", orderID, lockerID))
		}
		if err := change(&o); err != nil {
			return err
		}
		if o.Rev, err = tx.Orders.NextRev(lockerID); err != nil {
			return err
		}
		if err := tx.Orders.PutOrder(o); err != nil {
			return err
		}
		return h.pendOrders(tx, out, lockerID, o.Rev, 0, protocol.TypeOrdersUpsert, protocol.OrdersUpsert{Orders: []protocol.Order{o.Order}})
	})
	return o, err
}
