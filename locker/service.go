package locker

// The technician's controls: compartments in and out of service, and the
// maintenance open.

import (
	"context"
	"fmt"
)

// SetService takes a compartment out of service or puts it back.
func (l *Locker) SetService(id string, inService bool, reason string) error {
	return l.setService(id, inService, reason, "")
}

// setService is SetService for the badge named by ("" for none).
func (l *Locker) setService(id string, inService bool, reason, by string) error {
	if l.doors.get(id) == nil || id == ReturnSlotID || id == ReturnBinID {
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
		return l.record(tx, CompartmentService{Compartment: id, InService: inService, Reason: reason, By: by})
	})
}

// MaintenanceOpen opens a compartment (or the return slot) for a
// technician; the event is written before the lock is pulsed.
func (l *Locker) MaintenanceOpen(ctx context.Context, id, reason string) (ScanResult, error) {
	if reason == "" {
		return ScanResult{}, fmt.Errorf("a reason is required")
	}
	return l.maintenanceOpen(ctx, MaintenanceOpened{Compartment: id, Reason: reason})
}

// maintenanceOpen opens one door as it is, with ev recorded first.
func (l *Locker) maintenanceOpen(ctx context.Context, ev MaintenanceOpened) (ScanResult, error) {
	if l.doors.get(ev.Compartment) == nil {
		return ScanResult{}, fmt.Errorf("unknown compartment %q", ev.Compartment)
	}
	opened, jammed, err := l.openFor(ctx, doorJob{ids: []string{ev.Compartment}, op: OpNone,
		prepare: func(tx Tx) error { return l.record(tx, ev) }})
	if err != nil {
		return ScanResult{Outcome: OutcomeError, Reason: "store"}, err
	}
	l.log.Info("maintenance open", "compartment", ev.Compartment, "remote", ev.Remote, "opened", len(opened) > 0)
	if len(jammed) > 0 {
		return ScanResult{Outcome: OutcomeJammed, Compartments: jammed}, nil
	}
	return ScanResult{Outcome: OutcomeMaintOpen, Compartments: opened}, nil
}
