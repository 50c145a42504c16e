package locker

// Status queries: the locker at a glance, orders and events listed, the
// devices' states. Reads only.

import (
	"maps"
	"time"
)

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
			open := l.doors.isOpen(c.ID)
			st.Compartments = append(st.Compartments, CompartmentStatus{Compartment: c, Effective: c.EffectiveState(), DoorOpen: open, DoorUnknown: unknown[c.ID]})
		}
		st.ReturnOpen = l.doors.isOpen(ReturnSlotID)
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

// ScannerStates reports which scanners are connected.
func (l *Locker) ScannerStates() map[string]bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.scanners)
}

// HardwareStates reports, for every device that ever reported a fault or
// recovery, whether it answers now.
func (l *Locker) HardwareStates() map[string]bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.hardware)
}

// RecordConfigApplied records that a configuration the central pushed
// runs, healthy.
func (l *Locker) RecordConfigApplied(e ConfigApplied) { l.recordOne(e) }

// RecordConfigRejected records a pushed configuration refused or rolled
// back.
func (l *Locker) RecordConfigRejected(e ConfigRejected) { l.recordOne(e) }

// RecordUpdateApplied records that lockerd runs a new version, healthy.
func (l *Locker) RecordUpdateApplied(e UpdateApplied) { l.recordOne(e) }

// RecordUpdateFailed records a software update refused or rolled back.
func (l *Locker) RecordUpdateFailed(e UpdateFailed) { l.recordOne(e) }

// Idle reports whether nothing is going on that a restart would cut
// short: no door open, no staff session, no order being handled.
func (l *Locker) Idle() bool {
	if len(l.doors.openIDs()) > 0 {
		return false
	}
	now := l.clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.sessions {
		if now.Before(s.until) {
			return false
		}
	}
	return len(l.busy) == 0
}
