package hub

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/lockerd/lockerd/sync/hub/alarm"
	"github.com/lockerd/lockerd/sync/hub/circulation"
	"github.com/lockerd/lockerd/sync/hub/webhook"
	"github.com/lockerd/lockerd/sync/protocol"
	"github.com/lockerd/lockerd/sync/sip2"
)

// Alarms are the conditions a person must see: each has a severity, a
// locker, a compartment where there is one, when it was first and last
// seen and how often, and is acknowledged and then resolved by a person
// (or resolved by the locker itself when the condition ends: a hardware
// fault recovered, a compartment back in service, a locker back online).
// While one is unresolved, the same condition again updates it.

// raise records a condition in tx (alarm.Raise) and, for a new alarm,
// logs it and queues its webhook in the same transaction.
func (h *Hub) raise(tx Tx, a alarm.Alarm) error { return h.raiseParts(tx.Alarms, tx.Webhooks, a) }

// raiseParts is raise given the alarm and webhook parts of a transaction
// (what the circulation bridge has of one).
func (h *Hub) raiseParts(alarms alarm.Tx, hooks webhook.Tx, a alarm.Alarm) error {
	a, isNew, err := alarm.Raise(alarms, a, time.Now())
	if err != nil || !isNew {
		return err
	}
	h.log.Error("alarm", "locker", a.Locker, "type", a.Type, "compartment", a.Compartment, "severity", a.Severity, "detail", a.Detail)
	return h.hooks.Queue(hooks, webhook.HookAlarm, fmt.Sprintf("alarm-%d", a.Seq), "", a)
}

// clear resolves the unresolved alarm of a condition that ended by
// itself (by says how).
func (h *Hub) clear(tx Tx, lockerID, typ, compartment, by string) error {
	return alarm.Clear(tx.Alarms, lockerID, typ, compartment, by, time.Now())
}

// alarmsFromEvent raises or clears the alarms an event from a locker
// calls for, in the transaction that stores it (once per event).
func (h *Hub) alarmsFromEvent(tx Tx, lockerID string, e protocol.Event, data any) error {
	switch d := data.(type) {
	case *protocol.DoorChange:
		if e.Type == protocol.EvDoorForced {
			return h.raise(tx, alarm.Alarm{Locker: lockerID, Type: alarm.DoorForced, Compartment: d.Compartment,
				Detail: fmt.Sprintf("door %s opened without a command at %s", d.Compartment, e.TS.Format(time.RFC3339))})
		}
	case *protocol.DoorLeftOpen:
		return h.raise(tx, alarm.Alarm{Locker: lockerID, Type: alarm.DoorLeftOpen, Compartment: d.Compartment,
			Detail: fmt.Sprintf("door %s left open for %d s", d.Compartment, d.OpenS)})
	case *protocol.DoorJammed:
		detail := fmt.Sprintf("door %s did not open when pulsed", d.Compartment)
		if d.Jams != nil {
			detail += fmt.Sprintf(" (%d jams in a row)", *d.Jams)
		}
		if d.LockError != "" {
			detail += ": " + d.LockError
		}
		return h.raise(tx, alarm.Alarm{Locker: lockerID, Type: alarm.DoorJammed, Compartment: d.Compartment, Detail: detail})
	case *protocol.CompartmentService:
		if d.InService {
			return h.clear(tx, lockerID, alarm.OutOfService, d.Compartment, "back in service")
		}
		return h.raise(tx, alarm.Alarm{Locker: lockerID, Type: alarm.OutOfService, Compartment: d.Compartment,
			Detail: fmt.Sprintf("compartment %s out of service: %s", d.Compartment, d.Reason)})
	case *protocol.ReturnBinEmptied:
		if d.StillFull {
			return nil // return_bin.full follows and keeps the alarm
		}
		return h.clear(tx, lockerID, alarm.ReturnBinFull, "", fmt.Sprintf("emptied by %s (%d items)", cmp.Or(d.By, "staff"), d.Count))
	case *protocol.ItemsCheck:
		what := map[string]string{
			protocol.EvLoadEmpty:         "order %s was loaded into %s, but its item sensor reads it empty: check the compartment",
			protocol.EvPickupItemsLeft:   "order %s was picked up from %s, but its item sensor reads something still inside",
			protocol.EvRetrieveItemsLeft: "order %s was retrieved from %s, but its item sensor reads something still inside",
		}[e.Type]
		return h.raise(tx, alarm.Alarm{Locker: lockerID, Type: alarm.Items, Compartment: d.Compartment, Detail: fmt.Sprintf(what, d.OrderID, d.Compartment)})
	case *protocol.ReturnBinFull:
		return h.raise(tx, alarm.Alarm{Locker: lockerID, Type: alarm.ReturnBinFull, Detail: "the return bin is full (" + d.Source + "): empty it; returns are refused meanwhile"})
	case *protocol.HardwareState:
		if e.Type == protocol.EvHardwareRecovered {
			return h.clear(tx, lockerID, alarm.HardwareFault, d.Device, "recovered")
		}
		return h.raise(tx, alarm.Alarm{Locker: lockerID, Type: alarm.HardwareFault, Compartment: d.Device, Detail: d.Device + ": " + d.Detail})
	case *protocol.LoadNoSpace:
		return h.raise(tx, alarm.Alarm{Locker: lockerID, Type: alarm.NoSpace,
			Detail: fmt.Sprintf("order %s (size %s) found no free compartment when staff loaded it: redirect it to another locker or the desk", d.OrderID, d.Size)})
	case *protocol.StoreLowSpace:
		return h.raise(tx, alarm.Alarm{Locker: lockerID, Type: alarm.StoreLowSpace,
			Detail: fmt.Sprintf("the locker's store has %d bytes of headroom (minimum %d): free space on its SD card", d.HeadroomBytes, d.MinFreeBytes)})
	}
	return nil
}

// SweepOffline raises locker.offline for the lockers not seen for
// OfflineAfter before now, as the leader does on its timer (tests call it
// with a clock of their own).
func (h *Hub) SweepOffline(now time.Time) { h.sweepOffline(now) }

// sweepOffline raises locker.offline for the lockers not seen for
// OfflineAfter (run by the leader).
func (h *Hub) sweepOffline(now time.Time) {
	var due []alarm.Alarm
	err := h.store.View(func(tx Tx) error {
		lockers, err := tx.Lockers.Lockers()
		if err != nil {
			return err
		}
		for _, li := range lockers {
			if li.Online || li.LastSeen.IsZero() || now.Sub(li.LastSeen) < h.cfg.OfflineAfter || alarm.IsOpen(tx.Alarms, li.ID, alarm.Offline) {
				continue
			}
			due = append(due, alarm.Alarm{Locker: li.ID, Type: alarm.Offline,
				Detail: fmt.Sprintf("offline since %s (more than %v)", li.LastSeen.Format(time.RFC3339), h.cfg.OfflineAfter)})
		}
		return nil
	})
	if err == nil {
		err = h.raiseNew(due)
	}
	if err != nil {
		h.log.Warn("offline sweep", "err", err)
	}
}

// raiseNew raises those of alarms (a timer's findings) that are not open
// already, in one transaction: an open one is not written again every
// sweep.
func (h *Hub) raiseNew(alarms []alarm.Alarm) error {
	if len(alarms) == 0 {
		return nil
	}
	return h.store.Update(func(tx Tx) error {
		for _, a := range alarms {
			_, open, err := tx.Alarms.OpenAlarm(a.Key())
			if err != nil {
				return err
			}
			if open {
				continue
			}
			if err := h.raise(tx, a); err != nil {
				return err
			}
		}
		return nil
	})
}

// AckAlarm acknowledges an alarm (someone is on it); ResolveAlarm closes
// it, with a note.
func (h *Hub) AckAlarm(seq uint64, by string) (alarm.Alarm, error) {
	return alarm.Ack(h.alarms(), seq, by, time.Now())
}

// ResolveAlarm closes an alarm.
func (h *Hub) ResolveAlarm(seq uint64, by, note string) (alarm.Alarm, error) {
	note = strings.TrimSpace(note)
	if len(note) > 1000 || !printable(note) {
		return alarm.Alarm{}, errors.New("a note: up to 1000 printable characters")
	}
	return alarm.Resolve(h.alarms(), seq, by, note, time.Now())
}

// alarms is the store as the alarm package's.
func (h *Hub) alarms() alarm.Store {
	return Capability(h.store, func(tx Tx) alarm.Tx { return tx.Alarms })
}

// OpenAlarms lists the unresolved alarms.
func (h *Hub) OpenAlarms() ([]alarm.Alarm, error) {
	var out []alarm.Alarm
	err := h.store.View(func(tx Tx) error {
		var err error
		out, err = tx.Alarms.OpenAlarms()
		return err
	})
	return out, err
}

// metricsSource is the hub as its metrics read it: the bridge's state
// and queue, and the alarms.
type metricsSource struct{ h *Hub }

func (m metricsSource) ILSState() *sip2.State                     { return m.h.circ.ILSState() }
func (m metricsSource) OpenCircs() ([]circulation.CircRec, error) { return m.h.circ.OpenCircs() }
func (m metricsSource) OpenAlarms() ([]alarm.Alarm, error)        { return m.h.OpenAlarms() }

// MetricsHandler serves the hub's metrics (Prometheus text format).
func (h *Hub) MetricsHandler() http.Handler { return h.metrics.Handler() }
