package locker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"
)

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
		// A fresh random code colliding with a live order is rare; draw again.
		for tries := 0; ; tries++ {
			if code, err = NewCode(req.CodeLen); err != nil {
				return err
			}
			o.CodeHash = l.key.Hash(code)
			if err = tx.PutOrder(o); !errors.Is(err, ErrCodeTaken) || tries > 8 {
				break
			}
		}
		if err != nil || id == "" {
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
		return l.recordFact(tx, &o, EvOrderLoaded, map[string]any{"order_id": o.ID, "compartment": id, "via": "local"})
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

// SetService takes a compartment out of service or puts it back.
func (l *Locker) SetService(id string, inService bool, reason string) error {
	if _, ok := l.doors[id]; !ok || id == ReturnSlotID {
		return fmt.Errorf("unknown compartment %q", id)
	}
	return l.update(func(tx Tx) error {
		c, err := tx.Compartment(id)
		if err != nil {
			return err
		}
		c.OutOfService = !inService
		if inService {
			c.Jams = 0
		}
		if err := tx.PutCompartment(c); err != nil {
			return err
		}
		return l.record(tx, EvCompartmentService, map[string]any{"compartment": id, "in_service": inService, "reason": reason})
	})
}

// MaintenanceOpen opens a compartment (or the return slot) for a
// technician; the event is written before the lock is pulsed.
func (l *Locker) MaintenanceOpen(ctx context.Context, id, reason string) (ScanResult, error) {
	if _, ok := l.doors[id]; !ok {
		return ScanResult{}, fmt.Errorf("unknown compartment %q", id)
	}
	if reason == "" {
		return ScanResult{}, fmt.Errorf("a reason is required")
	}
	if err := l.roomToRecord(); err != nil {
		return ScanResult{Outcome: OutcomeError, Reason: "store"}, err
	}
	if err := l.update(func(tx Tx) error {
		return l.record(tx, EvMaintenanceOpen, map[string]any{"compartment": id, "reason": reason})
	}); err != nil {
		return ScanResult{Outcome: OutcomeError, Reason: "store"}, err
	}
	l.log.Info("maintenance open", "compartment", id)
	opened, jammed, _ := l.openDoors(ctx, []string{id})
	if len(jammed) > 0 {
		return ScanResult{Outcome: OutcomeJammed, Compartments: jammed}, nil
	}
	return ScanResult{Outcome: OutcomeMaintOpen, Compartments: opened}, nil
}

// CompartmentStatus is a compartment with its door's live state.
type CompartmentStatus struct {
	Compartment
	Effective CompartmentState `json:"effective_state"`
	DoorOpen  bool             `json:"door_open"`
	// DoorUnknown: the door sensor cannot be read now (its lock board is
	// not answering); DoorOpen is then the last state known.
	DoorUnknown bool `json:"door_unknown,omitempty"`
}

// Status is the locker at a glance.
type Status struct {
	LockerID     string              `json:"locker_id"`
	Boot         uint64              `json:"boot"`
	Store        string              `json:"store"` // the store's identity
	Compartments []CompartmentStatus `json:"compartments"`
	ReturnOpen   bool                `json:"return_open"`
	BinFull      bool                `json:"bin_full"`
	Orders       map[OrderState]int  `json:"orders"`
	OutboxDepth  int                 `json:"outbox_depth"`
	LastSeq      uint64              `json:"last_seq"`
	StaffOn      []string            `json:"staff_sessions,omitempty"`
	Now          time.Time           `json:"now"`
}

// Status reads the current state.
func (l *Locker) Status() (Status, error) { return l.status(true) }

// LiveStatus is Status without the order counts, which read every order:
// for the kiosk and telemetry, which ask often.
func (l *Locker) LiveStatus() (Status, error) { return l.status(false) }

func (l *Locker) status(countOrders bool) (Status, error) {
	st := Status{LockerID: l.set.LockerID, Boot: l.store.Boot(), Store: l.store.ID(), Now: l.clock.Now().UTC()}
	err := l.store.View(func(tx Tx) error {
		comps, err := tx.Compartments()
		if err != nil {
			return err
		}
		// Read serves the driver's last reading (no bus traffic); it is
		// asked outside l.mu, which the input path also takes.
		unknown := map[string]bool{}
		for _, c := range comps {
			if c.Sensor != "" {
				if _, err := l.hw.Read(c.Sensor); err != nil {
					unknown[c.ID] = true
				}
			}
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, c := range comps {
			open := false
			if d := l.doors[c.ID]; d != nil {
				open = d.open
			}
			st.Compartments = append(st.Compartments, CompartmentStatus{Compartment: c, Effective: c.EffectiveState(), DoorOpen: open, DoorUnknown: unknown[c.ID]})
		}
		if d := l.doors[ReturnSlotID]; d != nil {
			st.ReturnOpen = d.open
		}
		st.BinFull = l.binFull
		for dev, s := range l.sessions {
			if st.Now.Before(s.until) {
				st.StaffOn = append(st.StaffOn, dev)
			}
		}
		if countOrders {
			if st.Orders, err = tx.OrderCount(); err != nil {
				return err
			}
		}
		if st.OutboxDepth, err = tx.OutboxDepth(); err != nil {
			return err
		}
		st.LastSeq, err = tx.LastSeq()
		return err
	})
	return st, err
}

// Orders lists stored orders (without code hashes' use to anyone: they are
// keyed hashes).
func (l *Locker) Orders() ([]Order, error) {
	var out []Order
	err := l.store.View(func(tx Tx) error {
		return tx.ForEachOrder(func(o Order) error { out = append(out, o); return nil })
	})
	return out, err
}

// OrdersPage lists up to limit stored orders with ids after after.
func (l *Locker) OrdersPage(after string, limit int) ([]Order, error) {
	var out []Order
	err := l.store.View(func(tx Tx) error {
		var err error
		out, err = tx.OrdersAfter(after, limit)
		return err
	})
	return out, err
}

// Events reads outbox events after seq.
func (l *Locker) Events(after uint64, limit int) ([]Event, error) {
	var out []Event
	err := l.store.View(func(tx Tx) error {
		var err error
		out, err = tx.Events(after, limit)
		return err
	})
	return out, err
}

// Devices lists the configured input devices.
func (l *Locker) Devices() []Device { return l.set.Devices }

// Boot is this run's boot number.
func (l *Locker) Boot() uint64 { return l.store.Boot() }

// HashCode normalises a plaintext code and returns its keyed hash.
func (l *Locker) HashCode(raw string) (string, error) {
	code, err := NormalizeCode(raw)
	if err != nil {
		return "", err
	}
	return l.key.Hash(code), nil
}

// ScannerStates reports which scanners are connected.
func (l *Locker) ScannerStates() map[string]bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.scanners)
}

// RecordScannerState records scanner.connected / scanner.disconnected.
func (l *Locker) RecordScannerState(name string, connected bool, detail string) {
	l.mu.Lock()
	if l.scanners == nil {
		l.scanners = map[string]bool{}
	}
	l.scanners[name] = connected
	l.mu.Unlock()
	typ := EvScannerDisconnected
	if connected {
		typ = EvScannerConnected
	}
	data := map[string]any{"scanner": name}
	if detail != "" {
		data["detail"] = detail
	}
	l.recordOne(typ, data)
}

// HardwareStates reports, for every device that ever reported a fault or
// recovery, whether it answers now.
func (l *Locker) HardwareStates() map[string]bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.hardware)
}

// RecordHardwareFault records hardware.fault / hardware.recovered.
func (l *Locker) RecordHardwareFault(f HardwareFault) {
	l.mu.Lock()
	if l.hardware == nil {
		l.hardware = map[string]bool{}
	}
	l.hardware[f.Device] = f.OK
	l.mu.Unlock()
	l.log.Info("hardware", "device", f.Device, "ok", f.OK, "detail", f.Detail)
	typ := EvHardwareFault
	if f.OK {
		typ = EvHardwareRecovered
	}
	data := map[string]any{"device": f.Device}
	if f.Detail != "" {
		data["detail"] = f.Detail
	}
	l.recordOne(typ, data)
}
