package locker

// Order administration at the locker: orders created here, the keyed hash
// of a code, and expiry.

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// expireDue expires the ready orders due at date. It looks first in a
// read transaction: a write transaction syncs the file even when it
// changes nothing, and this runs every second (an SD card wears).
func (l *Locker) expireDue(date time.Time) error {
	l.untrusted.Store(false)
	var due []Order
	if err := l.store.View(func(tx Tx) error {
		var err error
		due, err = tx.ReadyExpiring(date)
		return err
	}); err != nil || len(due) == 0 {
		return err
	}
	return l.update(func(tx Tx) error {
		due, err := tx.ReadyExpiring(date)
		if err != nil {
			return err
		}
		for _, o := range due {
			if err := l.expire(tx, o); err != nil {
				return err
			}
		}
		return nil
	})
}

func (l *Locker) expire(tx Tx, o Order) error {
	if err := o.Move(OrderExpired); err != nil {
		return err
	}
	if err := tx.PutOrder(o); err != nil {
		return err
	}
	l.log.Info("order expired", "order", o.ID)
	return l.record(tx, ExpiredOrder{OrderID: o.ID, Compartments: o.Compartments})
}

// NewOrder is a request to create an order at this locker without a
// central library (lockerctl orders add, the demo).
type NewOrder struct {
	ID          string
	Size        Size
	Items       []Item
	Compartment string        // empty: smallest free that fits
	TTL         time.Duration // until expiry
	CodeLen     int
	// Assigned creates the order waiting to be loaded by staff (state
	// assigned, the compartment reserved if one is given) instead of ready.
	Assigned bool
}

// DefaultCodeLen is the length of codes this locker generates itself.
const DefaultCodeLen = 8

// CreateOrder puts a new order straight into a compartment, as if staff
// had just loaded it (or, with Assigned, registers it for staff to load),
// and returns it with its pickup code — the only time the plaintext code
// exists.
func (l *Locker) CreateOrder(req NewOrder) (Order, string, error) {
	if req.CodeLen == 0 {
		req.CodeLen = DefaultCodeLen
	}
	if req.Size == "" {
		req.Size = SizeS
	}
	if !req.Size.Valid() {
		return Order{}, "", fmt.Errorf("bad size %q", req.Size)
	}
	if req.TTL <= 0 {
		return Order{}, "", fmt.Errorf("order lifetime must be positive")
	}
	now := l.clock.Now().UTC()
	if req.ID == "" {
		suffix, err := NewCode(6)
		if err != nil {
			return Order{}, "", err
		}
		req.ID = "L-" + suffix
	}
	var o Order
	var code string
	err := l.update(func(tx Tx) error {
		if _, err := tx.Order(req.ID); err == nil {
			return fmt.Errorf("order %s already exists", req.ID)
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		id, err := l.placeNewOrder(tx, req)
		if err != nil {
			return err
		}
		o = Order{ID: req.ID, State: OrderReady, Size: req.Size, Items: req.Items,
			Compartments: []string{id}, ExpiresAt: now.Add(req.TTL), Loaded: true, LoadedAt: now}
		if req.Assigned {
			o = Order{ID: req.ID, State: OrderAssigned, Size: req.Size, Items: req.Items,
				Assigned: id, ExpiresAt: now.Add(req.TTL)}
		}
		// A fresh random code colliding with a live order is rare; draw
		// again (a shared code opens every order it matches, so another
		// reader's must never share it by chance).
		for tries := 0; ; tries++ {
			if code, err = NewCode(req.CodeLen); err != nil {
				return err
			}
			o.CodeHash = l.key.Hash(code)
			same, err := tx.OrdersByCodeHash(o.CodeHash)
			if err != nil {
				return err
			}
			if !slices.ContainsFunc(same, func(p Order) bool { return p.Live() }) {
				break
			}
			if tries > 8 {
				return errors.New("no unused pickup code after 10 draws")
			}
		}
		if err := tx.PutOrder(o); err != nil || id == "" {
			return err
		}
		c, err := tx.Compartment(id)
		if err != nil {
			return err
		}
		if req.Assigned {
			c.State, c.OrderID = CompReserved, o.ID
			return tx.PutCompartment(c)
		}
		c.State, c.OrderID, c.Op = CompLoaded, o.ID, OpNone
		if err := tx.PutCompartment(c); err != nil {
			return err
		}
		return l.recordFact(tx, &o, OrderLoaded{OrderID: o.ID, Compartment: id, Via: "local"})
	})
	if err != nil {
		return Order{}, "", err
	}
	l.log.Info("order created", "order", o.ID, "state", o.State, "compartments", o.Compartments, "reserved", o.Assigned)
	return o, code, nil
}

// placeNewOrder checks the compartment a new order asks for, or picks the
// smallest free one that fits. An assigned order without a compartment
// gets none ("" and no error): staff choose when loading.
func (l *Locker) placeNewOrder(tx Tx, req NewOrder) (string, error) {
	id := req.Compartment
	if id == "" {
		if req.Assigned {
			return "", nil
		}
		comps, err := tx.Compartments()
		if err != nil {
			return "", err
		}
		var ok bool
		if id, ok = chooseCompartment(comps, Order{Size: req.Size}, l.openDoorIDs()); !ok {
			return "", fmt.Errorf("no free compartment fits size %s", req.Size)
		}
	}
	c, err := tx.Compartment(id)
	if err != nil {
		return "", fmt.Errorf("compartment %s: %w", id, err)
	}
	if c.State != CompFree || c.OutOfService {
		return "", fmt.Errorf("compartment %s is %s", id, c.EffectiveState())
	}
	if !req.Size.Fits(c.Size) {
		return "", fmt.Errorf("order size %s does not fit compartment %s (size %s)", req.Size, id, c.Size)
	}
	return id, nil
}

// HashCode normalises a plaintext code and returns its keyed hash.
func (l *Locker) HashCode(raw string) (string, error) {
	code, err := NormalizeCode(raw)
	if err != nil {
		return "", err
	}
	return l.key.Hash(code), nil
}
