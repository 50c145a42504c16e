package locker

import (
	"context"
	"errors"
	"slices"
	"sort"
	"strings"
	"time"
)

// openDoorIDs are the doors that read open now.
func (l *Locker) openDoorIDs() map[string]bool { return l.doors.openIDs() }

func (l *Locker) staffSessionActive(device string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.sessions[device]
	return s != nil && now.Before(s.until)
}

func (l *Locker) startStaff(device string, b Badge, now time.Time) {
	visit, _ := NewCode(10) // only an id: a failed draw leaves "" (each item its own order)
	l.mu.Lock()
	l.sessions[device] = &staffSession{device: device, badge: b, until: now.Add(l.set.Policy.StaffIdle), visit: visit}
	l.mu.Unlock()
	l.log.Info("staff session started", "scanner", device, "by", b.Name, "role", b.Role)
	l.notify(Notice{Type: NoticeStaffSession, Data: map[string]any{"scanner": device, "on": true, "by": b.Name, "role": string(b.Role)}})
}

// badgeScan handles a badge scanned outside a session: staff and
// technicians start one; a volunteer's badge opens every ready order
// here marked for delivery.
func (l *Locker) badgeScan(ctx context.Context, dev Device, b Badge, now time.Time) ScanResult {
	if b.Role == RoleVolunteer {
		return l.volunteerScan(ctx, dev, b)
	}
	l.startStaff(dev.Name, b, now)
	return ScanResult{Outcome: OutcomeStaffOn, Reason: string(b.Role)}
}

// volunteerScan opens every ready delivery order in the cabinet for a
// volunteer's badge, each recorded as picked up by the badge's name.
func (l *Locker) volunteerScan(ctx context.Context, dev Device, b Badge) ScanResult {
	var orders []Order
	if err := l.store.View(func(tx Tx) error {
		comps, err := tx.Compartments()
		if err != nil {
			return err
		}
		seen := map[string]bool{}
		for _, c := range comps {
			if c.State != CompLoaded || seen[c.OrderID] || len(orders) >= MaxOrdersPerCode {
				continue
			}
			seen[c.OrderID] = true
			o, err := tx.Order(c.OrderID)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if o.Delivery && o.State == OrderReady {
				orders = append(orders, o)
			}
		}
		return nil
	}); err != nil {
		return ScanResult{Outcome: OutcomeError, Reason: "store"}
	}
	if len(orders) == 0 {
		l.log.Info("volunteer badge: nothing to collect", "by", b.Name)
		return ScanResult{Outcome: OutcomeNothing, Reason: "no delivery orders here"}
	}
	l.log.Info("volunteer collects", "by", b.Name, "orders", len(orders))
	return l.openOrders(ctx, dev, orders, ViaBadge, b.Name)
}

func (l *Locker) endStaff(device string) {
	l.mu.Lock()
	delete(l.sessions, device)
	l.mu.Unlock()
	l.log.Info("staff session ended", "scanner", device)
	l.notify(Notice{Type: NoticeStaffSession, Data: map[string]any{"scanner": device, "on": false}})
}

// touchStaff extends the idle timeout of device's session and returns it.
func (l *Locker) touchStaff(device string) *staffSession {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.sessions[device]
	if s != nil {
		s.until = l.clock.Now().Add(l.set.Policy.StaffIdle)
	}
	return s
}

// staffScan handles a scan in a staff session: an order id or item barcode
// opens a compartment for loading; RETRIEVE starts a retrieval round.
func (l *Locker) staffScan(ctx context.Context, dev Device, text string) ScanResult {
	s := l.touchStaff(dev.Name)
	if s == nil {
		return ScanResult{Outcome: OutcomeNothing}
	}
	key := CleanScan(text)
	if res, ok := l.staffCommand(ctx, s, key); ok {
		return res
	}
	if s.badge.Role != RoleStaff {
		return ScanResult{Outcome: OutcomeNothing, Reason: "a " + string(s.badge.Role) + " badge handles no orders"}
	}
	var o Order
	err := l.store.View(func(tx Tx) error {
		var err error
		if o, err = tx.Order(key); errors.Is(err, ErrNotFound) {
			o, err = tx.OrderByBarcode(key)
		}
		return err
	})
	if errors.Is(err, ErrNotFound) {
		return l.holdScan(ctx, s, key)
	}
	if err != nil {
		return ScanResult{Outcome: OutcomeError, Reason: "store"}
	}
	if o.State != OrderAssigned {
		return ScanResult{Outcome: OutcomeNothing, Reason: "order is " + string(o.State), OrderID: o.ID}
	}
	return l.load(ctx, o, s.badge.Name)
}

// Staff command codes scanned (or typed) during a staff session: printed
// on the staff's command sheet as barcodes, or typed on the keypad.
const (
	StaffCmdRetrieve = "RETRIEVE"
	StaffCmdEmptyBin = "EMPTYBIN"
	// StaffCmdOpen, StaffCmdOutOfService and StaffCmdInService take a
	// compartment id after the dash: MAINT-A03.
	StaffCmdOpen         = "MAINT-"
	StaffCmdOutOfService = "OOS-"
	StaffCmdInService    = "INS-"
)

// staffCommand runs a command scanned in session s, if key is one: what
// each role may do is decided here.
func (l *Locker) staffCommand(ctx context.Context, s *staffSession, key string) (ScanResult, bool) {
	up := strings.ToUpper(key)
	role := s.badge.Role
	refused := ScanResult{Outcome: OutcomeNothing, Reason: "not allowed for a " + string(role) + " badge"}
	switch {
	case up == StaffCmdRetrieve:
		if role != RoleStaff {
			return refused, true
		}
		return l.startRetrieve(ctx, s), true
	case up == StaffCmdEmptyBin:
		if role != RoleStaff {
			return refused, true
		}
		return l.emptyBin(ctx, s.badge.Name), true
	case strings.HasPrefix(up, StaffCmdOpen), strings.HasPrefix(up, StaffCmdOutOfService), strings.HasPrefix(up, StaffCmdInService):
		cmd, id, _ := strings.Cut(up, "-")
		id = l.compartmentID(id)
		if id == "" {
			return ScanResult{Outcome: OutcomeNothing, Reason: "unknown compartment"}, true
		}
		if cmd+"-" == StaffCmdOpen {
			res, err := l.maintenanceOpen(ctx, MaintenanceOpened{Compartment: id, Reason: "badge", By: s.badge.Name})
			if err != nil {
				l.log.Error("maintenance open", "compartment", id, "err", err)
			}
			return res, true
		}
		in := cmd+"-" == StaffCmdInService
		if err := l.setService(id, in, "badge", s.badge.Name); err != nil {
			l.log.Error("service change", "compartment", id, "err", err)
			return ScanResult{Outcome: OutcomeError, Reason: "store"}, true
		}
		return ScanResult{Outcome: OutcomeNothing, Reason: map[bool]string{true: "in service", false: "out of service"}[in], Compartments: []string{id}}, true
	}
	return ScanResult{}, false
}

// compartmentID returns the configured compartment whose id matches id
// without regard to case ("" if none).
func (l *Locker) compartmentID(id string) string {
	for _, c := range l.set.Compartments {
		if strings.EqualFold(c.ID, id) {
			return c.ID
		}
	}
	return ""
}

// chooseCompartment picks where to load o: its pre-assigned compartment if
// usable, else the smallest free compartment that fits. A compartment
// whose door reads open (doorOpen) is not usable: forced, or its sensor
// stuck, its door could not confirm the load.
func chooseCompartment(comps []Compartment, o Order, doorOpen map[string]bool) (string, bool) {
	comps = slices.DeleteFunc(slices.Clone(comps), func(c Compartment) bool { return doorOpen[c.ID] })
	for _, c := range comps {
		if c.ID == o.Assigned && !c.OutOfService &&
			(c.State == CompFree || (c.State == CompReserved && c.OrderID == o.ID)) {
			return c.ID, true
		}
	}
	var fits []Compartment
	for _, c := range comps {
		if c.State == CompFree && !c.OutOfService && o.Size.Fits(c.Size) && (c.Accessible || !o.Accessible) {
			fits = append(fits, c)
		}
	}
	if len(fits) == 0 {
		return "", false
	}
	// The smallest that fits; among equals, an ordinary order takes an
	// ordinary compartment first, keeping accessible ones for those who
	// need them.
	sort.SliceStable(fits, func(i, j int) bool {
		if fits[i].Size.Rank() != fits[j].Size.Rank() {
			return fits[i].Size.Rank() < fits[j].Size.Rank()
		}
		if fits[i].Accessible != fits[j].Accessible {
			return !fits[i].Accessible
		}
		return fits[i].ID < fits[j].ID
	})
	return fits[0].ID, true
}

func (l *Locker) load(ctx context.Context, o Order, by string) ScanResult {
	if !l.claim(o.ID) {
		return ScanResult{Outcome: OutcomeNothing, Reason: "busy", OrderID: o.ID}
	}
	defer l.release(o.ID)
	var id string
	var ok bool
	if err := l.store.View(func(tx Tx) error {
		comps, err := tx.Compartments()
		// Not usable either: a free compartment whose item sensor says
		// something is still inside (books left behind).
		blocked := l.openDoorIDs()
		for _, c := range comps {
			if holds, known := l.holdsItems(c); c.State == CompFree && known && holds {
				blocked[c.ID] = true
			}
		}
		id, ok = chooseCompartment(comps, o, blocked)
		return err
	}); err != nil {
		return ScanResult{Outcome: OutcomeError, Reason: "store"}
	}
	if !ok {
		// Recorded for the central, which redirects the order (each scan
		// that finds no space again is another).
		l.recordOne(LoadNoSpace{OrderID: o.ID, Size: o.Size, Accessible: o.Accessible})
		what := "no free compartment fits size "
		if o.Accessible {
			what = "no free accessible compartment fits size "
		}
		return ScanResult{Outcome: OutcomeNothing, Reason: what + string(o.Size), OrderID: o.ID}
	}
	opened, jammed, err := l.openFor(ctx, doorJob{ids: []string{id}, op: OpLoad, orderID: o.ID, by: by})
	if err != nil || len(opened)+len(jammed) == 0 {
		l.log.Error("load outcome", "err", err)
		return ScanResult{Outcome: OutcomeError, Reason: "store"}
	}
	if len(jammed) > 0 {
		return ScanResult{Outcome: OutcomeJammed, OrderID: o.ID, Compartments: jammed}
	}
	l.log.Info("loading", "order", o.ID, "compartment", id)
	return ScanResult{Outcome: OutcomeLoading, OrderID: o.ID, Compartments: opened}
}

// startRetrieve queues every in-service compartment holding an expired or
// cancelled order and opens the first; each door closing opens the next.
func (l *Locker) startRetrieve(ctx context.Context, s *staffSession) ScanResult {
	var ids []string
	if err := l.store.View(func(tx Tx) error {
		comps, err := tx.Compartments()
		if err != nil {
			return err
		}
		for _, c := range comps {
			if c.State != CompLoaded || c.OutOfService {
				continue
			}
			o, err := tx.Order(c.OrderID)
			if err == nil && o.NeedsRetrieval() {
				ids = append(ids, c.ID)
			}
		}
		return nil
	}); err != nil {
		return ScanResult{Outcome: OutcomeError, Reason: "store"}
	}
	if len(ids) == 0 {
		return ScanResult{Outcome: OutcomeNothing, Reason: "nothing to retrieve"}
	}
	l.mu.Lock()
	s.pending = ids
	l.mu.Unlock()
	return l.retrieveNext(ctx, s)
}

// retrieveNext opens the next compartment of s's retrieval round. A door
// that jams is skipped (and counted); the round goes on.
func (l *Locker) retrieveNext(ctx context.Context, s *staffSession) ScanResult {
	for {
		l.mu.Lock()
		live := l.sessions[s.device] == s && l.clock.Now().Before(s.until)
		if !live || len(s.pending) == 0 {
			s.pending = nil
			l.mu.Unlock()
			return ScanResult{Outcome: OutcomeNothing, Reason: "retrieval round done"}
		}
		id := s.pending[0]
		s.pending = s.pending[1:]
		s.until = l.clock.Now().Add(l.set.Policy.StaffIdle)
		l.mu.Unlock()

		var orderID string
		if err := l.store.View(func(tx Tx) error {
			c, err := tx.Compartment(id)
			orderID = c.OrderID
			return err
		}); err != nil {
			return ScanResult{Outcome: OutcomeError, Reason: "store"}
		}
		opened, _, err := l.openFor(ctx, doorJob{ids: []string{id}, op: OpRetrieve, orderID: orderID, by: s.badge.Name})
		if err != nil {
			return ScanResult{Outcome: OutcomeError, Reason: "store"}
		}
		if len(opened) > 0 {
			l.log.Info("retrieving", "order", orderID, "compartment", id)
			return ScanResult{Outcome: OutcomeRetrieving, OrderID: orderID, Compartments: opened}
		}
	}
}

type staffSession struct {
	device  string
	badge   Badge
	until   time.Time
	pending []string // compartments still to retrieve
	visit   string   // random: the same reader's items of one visit join one order
	cardFor string   // an item whose reader the central asked for (the next scan is the slip's card)
}

// finishOnClose completes what a compartment's door was opened for. It
// returns the staff session whose retrieval round should go on, if any.
func (l *Locker) finishOnClose(tx Tx, id string) (*staffSession, error) {
	switch id {
	case ReturnSlotID:
		return nil, nil
	case ReturnBinID:
		return nil, l.binDoorClosed(tx)
	}
	c, err := tx.Compartment(id)
	if err != nil {
		return nil, err
	}
	if c.State != CompOpen {
		return nil, nil
	}
	now := l.clock.Now().UTC()
	var next *staffSession
	o, err := tx.Order(c.OrderID)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	found := err == nil
	switch {
	case c.Op == OpLoad && found && o.State == OrderAssigned:
		if err := o.Move(OrderReady); err != nil {
			return nil, err
		}
		o.Loaded, o.LoadedAt = true, now
		if !slices.Contains(o.Compartments, id) {
			o.Compartments = append(o.Compartments, id)
		}
		c.State = CompLoaded
		if err := l.recordFact(tx, &o, OrderLoaded{OrderID: o.ID, Compartment: id, By: c.By}); err != nil {
			return nil, err
		}
		if holds, known := l.holdsItems(c); known && !holds {
			// The order stays ready (the sensor may be wrong, a thin book
			// may not reach it); the staff and the central are told.
			if err := l.record(tx, LoadEmpty{OrderID: o.ID, Compartment: id}); err != nil {
				return nil, err
			}
			tx.AfterCommit(func() {
				l.notify(Notice{Type: NoticeItems, Data: map[string]any{"what": "load_empty", "compartment": id, "order_id": o.ID}})
			})
		}
	case c.Op == OpRetrieve && found && o.NeedsRetrieval():
		if err := o.Move(OrderRetrieved); err != nil {
			return nil, err
		}
		c.State, c.OrderID = CompFree, ""
		if err := l.recordFact(tx, &o, RetrievedOrder{OrderID: o.ID, Compartment: id, By: c.By}); err != nil {
			return nil, err
		}
		if holds, known := l.holdsItems(c); known && holds {
			if err := l.record(tx, RetrieveItemsLeft{OrderID: o.ID, Compartment: id}); err != nil {
				return nil, err
			}
			tx.AfterCommit(func() {
				l.notify(Notice{Type: NoticeItems, Data: map[string]any{"what": "retrieve_items_left", "compartment": id, "order_id": o.ID}})
			})
		}
		next = l.sessionRetrieving()
	default:
		// A pickup's door closing, or an operation whose order changed
		// meanwhile: the compartment holds what the order says.
		op := c.Op
		if op == OpPickup && found && o.State == OrderPickedUp {
			if holds, known := l.holdsItems(c); known && holds {
				// The reader left books inside: the kiosk says so, and
				// the reopen grace lets them scan again.
				if err := l.record(tx, PickupItemsLeft{OrderID: o.ID, Compartment: id}); err != nil {
					return nil, err
				}
				tx.AfterCommit(func() {
					l.notify(Notice{Type: NoticeItems, Data: map[string]any{"what": "pickup_items_left", "compartment": id, "order_id": o.ID}})
				})
			}
		}
		if err := l.settleInterrupted(tx, &c); err != nil {
			return nil, err
		}
		if op == OpRetrieve {
			next = l.sessionRetrieving()
		}
	}
	c.Op, c.By = OpNone, ""
	return next, tx.PutCompartment(c)
}

// holdsItems reads compartment c's item sensor: whether something lies
// inside, and whether that is known (no sensor, or one that cannot be
// read now, knows nothing: then nothing is checked, as without one).
func (l *Locker) holdsItems(c Compartment) (holds, known bool) {
	if c.ItemSensor == "" {
		return false, false
	}
	active, err := l.hw.Read(c.ItemSensor)
	if err != nil {
		l.log.Warn("item sensor unreadable", "compartment", c.ID, "sensor", c.ItemSensor, "err", err)
		return false, false
	}
	return active, true
}

// sessionRetrieving returns the live staff session with more to retrieve.
func (l *Locker) sessionRetrieving() *staffSession {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock.Now()
	for _, s := range l.sessions {
		if now.Before(s.until) && len(s.pending) > 0 {
			return s
		}
	}
	return nil
}
