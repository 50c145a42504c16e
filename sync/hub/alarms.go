package hub

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lockerd/lockerd/sync/hub/webhook"
	"github.com/lockerd/lockerd/sync/protocol"
)

// Alarms are the conditions a person must see: each has a severity, a
// locker, a compartment where there is one, when it was first and last
// seen and how often, and is acknowledged and then resolved by a person
// (or resolved by the locker itself when the condition ends: a hardware
// fault recovered, a compartment back in service, a locker back online).
// While one is unresolved, the same condition again updates it.

// More alarm types, raised from lockers' events and the hub's timers.
const (
	AlarmDoorForced    = "door.forced"
	AlarmDoorLeftOpen  = "door.left_open"
	AlarmDoorJammed    = "door.jammed"
	AlarmOutOfService  = "compartment.out_of_service"
	AlarmReturnBinFull = "return_bin.full"
	AlarmHardwareFault = "hardware.fault"
	AlarmStoreLowSpace = "store.low_space"
	AlarmOffline       = "locker.offline"
	AlarmCirculation   = "circulation.exception"
	AlarmNoSpace       = "load.no_space"
	// AlarmItems: a compartment's item sensor contradicts what happened
	// (a load that left it empty, books left after a pickup or a
	// retrieval): someone looks.
	AlarmItems = "compartment.items"
)

// Severities.
const (
	SeverityCritical = "critical" // someone should go now: a forced door, a locker down
	SeverityWarning  = "warning"  // today: a jam, a full bin, an item to sort
)

var alarmSeverity = map[string]string{
	AlarmDoorForced: SeverityCritical, AlarmHardwareFault: SeverityCritical, AlarmStoreLowSpace: SeverityCritical,
	AlarmOffline: SeverityCritical, AlarmCloned: SeverityCritical, AlarmTailAhead: SeverityCritical, AlarmILSLogin: SeverityCritical,
	AlarmILSUnavailable: SeverityCritical,
}

// severityOf is an alarm type's severity (warning unless critical).
func severityOf(typ string) string {
	if s, ok := alarmSeverity[typ]; ok {
		return s
	}
	return SeverityWarning
}

// raise records a condition in tx: a new alarm, or the unresolved one of
// the same condition updated.
func (h *Hub) raise(tx Tx, a Alarm) error {
	now := time.Now().UTC()
	if len(a.Detail) > 1000 {
		a.Detail = a.Detail[:1000] + "…"
	}
	cur, found, err := tx.Alarms.OpenAlarm(a.Key())
	if err != nil {
		return err
	}
	if found {
		cur.LastSeen, cur.Count, cur.Detail = now, max(cur.Count, 1)+1, a.Detail
		return tx.Alarms.PutAlarm(cur)
	}
	a.At, a.LastSeen, a.Count, a.State, a.Severity = now, now, 1, AlarmOpen, severityOf(a.Type)
	h.log.Error("alarm", "locker", a.Locker, "type", a.Type, "compartment", a.Compartment, "severity", a.Severity, "detail", a.Detail)
	if a, err = tx.Alarms.AddAlarm(a); err != nil {
		return err
	}
	return h.hooks.Queue(tx.Webhooks, webhook.HookAlarm, fmt.Sprintf("alarm-%d", a.Seq), "", a)
}

// clear resolves the unresolved alarm of a condition that ended by
// itself (by says how).
func (h *Hub) clear(tx Tx, lockerID, typ, compartment, by string) error {
	cur, found, err := tx.Alarms.OpenAlarm(Alarm{Locker: lockerID, Type: typ, Compartment: compartment}.Key())
	if err != nil || !found {
		return err
	}
	cur.State, cur.ResolvedBy, cur.ResolvedAt = AlarmResolved, by, time.Now().UTC()
	return tx.Alarms.PutAlarm(cur)
}

// alarmsFromEvent raises or clears the alarms an event from a locker
// calls for, in the transaction that stores it (once per event).
func (h *Hub) alarmsFromEvent(tx Tx, lockerID string, e protocol.Event, data any) error {
	switch d := data.(type) {
	case *protocol.DoorChange:
		if e.Type == protocol.EvDoorForced {
			return h.raise(tx, Alarm{Locker: lockerID, Type: AlarmDoorForced, Compartment: d.Compartment,
				Detail: fmt.Sprintf("door %s opened without a command at %s", d.Compartment, e.TS.Format(time.RFC3339))})
		}
	case *protocol.DoorLeftOpen:
		return h.raise(tx, Alarm{Locker: lockerID, Type: AlarmDoorLeftOpen, Compartment: d.Compartment,
			Detail: fmt.Sprintf("door %s left open for %d s", d.Compartment, d.OpenS)})
	case *protocol.DoorJammed:
		detail := fmt.Sprintf("door %s did not open when pulsed", d.Compartment)
		if d.Jams != nil {
			detail += fmt.Sprintf(" (%d jams in a row)", *d.Jams)
		}
		if d.LockError != "" {
			detail += ": " + d.LockError
		}
		return h.raise(tx, Alarm{Locker: lockerID, Type: AlarmDoorJammed, Compartment: d.Compartment, Detail: detail})
	case *protocol.CompartmentService:
		if d.InService {
			return h.clear(tx, lockerID, AlarmOutOfService, d.Compartment, "back in service")
		}
		return h.raise(tx, Alarm{Locker: lockerID, Type: AlarmOutOfService, Compartment: d.Compartment,
			Detail: fmt.Sprintf("compartment %s out of service: %s", d.Compartment, d.Reason)})
	case *protocol.ReturnBinEmptied:
		if d.StillFull {
			return nil // return_bin.full follows and keeps the alarm
		}
		return h.clear(tx, lockerID, AlarmReturnBinFull, "", fmt.Sprintf("emptied by %s (%d items)", cmp.Or(d.By, "staff"), d.Count))
	case *protocol.ItemsCheck:
		what := map[string]string{
			protocol.EvLoadEmpty:         "order %s was loaded into %s, but its item sensor reads it empty: check the compartment",
			protocol.EvPickupItemsLeft:   "order %s was picked up from %s, but its item sensor reads something still inside",
			protocol.EvRetrieveItemsLeft: "order %s was retrieved from %s, but its item sensor reads something still inside",
		}[e.Type]
		return h.raise(tx, Alarm{Locker: lockerID, Type: AlarmItems, Compartment: d.Compartment, Detail: fmt.Sprintf(what, d.OrderID, d.Compartment)})
	case *protocol.ReturnBinFull:
		return h.raise(tx, Alarm{Locker: lockerID, Type: AlarmReturnBinFull, Detail: "the return bin is full (" + d.Source + "): empty it; returns are refused meanwhile"})
	case *protocol.HardwareState:
		if e.Type == protocol.EvHardwareRecovered {
			return h.clear(tx, lockerID, AlarmHardwareFault, d.Device, "recovered")
		}
		return h.raise(tx, Alarm{Locker: lockerID, Type: AlarmHardwareFault, Compartment: d.Device, Detail: d.Device + ": " + d.Detail})
	case *protocol.LoadNoSpace:
		return h.raise(tx, Alarm{Locker: lockerID, Type: AlarmNoSpace,
			Detail: fmt.Sprintf("order %s (size %s) found no free compartment when staff loaded it: redirect it to another locker or the desk", d.OrderID, d.Size)})
	case *protocol.StoreLowSpace:
		return h.raise(tx, Alarm{Locker: lockerID, Type: AlarmStoreLowSpace,
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
	var due []Alarm
	err := h.store.View(func(tx Tx) error {
		lockers, err := tx.Lockers.Lockers()
		if err != nil {
			return err
		}
		for _, li := range lockers {
			if li.Online || li.LastSeen.IsZero() || now.Sub(li.LastSeen) < h.cfg.OfflineAfter || alarmOpen(tx, li.ID, AlarmOffline) {
				continue
			}
			due = append(due, Alarm{Locker: li.ID, Type: AlarmOffline,
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

// alarmOpen reports whether the locker's alarm of type typ is open (or
// cannot be read): a sweep leaves it, and writes nothing when that is all
// it found.
func alarmOpen(tx Tx, lockerID, typ string) bool {
	_, open, err := tx.Alarms.OpenAlarm(Alarm{Locker: lockerID, Type: typ}.Key())
	return err != nil || open
}

// raiseNew raises those of alarms (a timer's findings) that are not open
// already, in one transaction: an open one is not written again every
// sweep.
func (h *Hub) raiseNew(alarms []Alarm) error {
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
func (h *Hub) AckAlarm(seq uint64, by string) (Alarm, error) {
	return h.changeAlarm(seq, func(a *Alarm) error {
		if a.State == AlarmResolved {
			return fmt.Errorf("alarm %d is resolved", seq)
		}
		a.State, a.AckBy, a.AckAt = AlarmAcknowledged, by, time.Now().UTC()
		return nil
	})
}

// ResolveAlarm closes an alarm.
func (h *Hub) ResolveAlarm(seq uint64, by, note string) (Alarm, error) {
	note = strings.TrimSpace(note)
	if len(note) > 1000 || !printable(note) {
		return Alarm{}, errors.New("a note: up to 1000 printable characters")
	}
	return h.changeAlarm(seq, func(a *Alarm) error {
		if a.State == AlarmResolved {
			return fmt.Errorf("alarm %d is resolved", seq)
		}
		a.State, a.ResolvedBy, a.ResolvedAt, a.Note = AlarmResolved, by, time.Now().UTC(), note
		return nil
	})
}

func (h *Hub) changeAlarm(seq uint64, f func(*Alarm) error) (Alarm, error) {
	var a Alarm
	err := h.store.Update(func(tx Tx) error {
		// Only an unresolved alarm changes: it is found among those (a
		// few), not by reading the whole history.
		open, err := tx.Alarms.OpenAlarms()
		if err != nil {
			return err
		}
		i := slices.IndexFunc(open, func(x Alarm) bool { return x.Seq == seq })
		if i < 0 {
			return fmt.Errorf("no unresolved alarm %d", seq)
		}
		a = open[i]
		if err := f(&a); err != nil {
			return err
		}
		return tx.Alarms.PutAlarm(a)
	})
	return a, err
}

// OpenAlarms lists the unresolved alarms.
func (h *Hub) OpenAlarms() ([]Alarm, error) {
	var out []Alarm
	err := h.store.View(func(tx Tx) error {
		var err error
		out, err = tx.Alarms.OpenAlarms()
		return err
	})
	return out, err
}
