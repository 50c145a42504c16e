package alarm

import (
	"fmt"
	"slices"
	"time"
)

// Alarm is something at a locker that needs a person.
//
// One alarm stands for a condition at a locker (or a compartment of it):
// while it is not resolved, the same condition again updates it (LastSeen,
// Count, Detail) instead of raising another.
type Alarm struct {
	Seq         uint64    `json:"seq"`
	At          time.Time `json:"at"` // first seen
	Locker      string    `json:"locker"`
	Type        string    `json:"type"`
	Detail      string    `json:"detail"`
	Severity    string    `json:"severity,omitempty"` // critical, warning
	Compartment string    `json:"compartment,omitempty"`
	LastSeen    time.Time `json:"last_seen,omitzero"`
	Count       int       `json:"count,omitempty"`
	State       string    `json:"state,omitempty"` // open ("" in older records), acknowledged, resolved
	AckBy       string    `json:"ack_by,omitempty"`
	AckAt       time.Time `json:"ack_at,omitzero"`
	ResolvedBy  string    `json:"resolved_by,omitempty"`
	ResolvedAt  time.Time `json:"resolved_at,omitzero"`
	Note        string    `json:"note,omitempty"`
}

// Alarm states.
const (
	Open         = "open"
	Acknowledged = "acknowledged"
	Resolved     = "resolved"
)

// Unresolved reports whether a still needs a person (open or
// acknowledged).
func (a Alarm) Unresolved() bool { return a.State != Resolved }

// Key is what makes two alarms the same condition.
func (a Alarm) Key() string { return a.Locker + "\x1f" + a.Type + "\x1f" + a.Compartment }

// Alarm types raised by the hub itself.
const (
	// StoreReplaced: the locker's store identity changed (an SD card
	// swapped or wiped): its seq starts again, acks follow the new store.
	StoreReplaced = "store.replaced"
	// Cloned: two cabinets announce the same locker id.
	Cloned = "locker.cloned"
	// UnknownLocker: messages from a locker id the hub does not serve
	// (not configured or added): dropped, not stored.
	UnknownLocker = "locker.unknown"
	// TailAhead: a locker reports events acked beyond what the hub
	// stored for that store (a forged status, or a hub store restored
	// from an old backup); the mark is not raised.
	TailAhead = "outbox.tail_ahead"
	// ILSLogin: the library's system refused the SIP2 login; loans
	// and returns wait in the queue until it is fixed.
	ILSLogin = "ils.login_refused"
)

// Alarm types raised from lockers' events and the hub's timers.
const (
	DoorForced    = "door.forced"
	DoorLeftOpen  = "door.left_open"
	DoorJammed    = "door.jammed"
	OutOfService  = "compartment.out_of_service"
	ReturnBinFull = "return_bin.full"
	HardwareFault = "hardware.fault"
	StoreLowSpace = "store.low_space"
	Offline       = "locker.offline"
	Circulation   = "circulation.exception"
	NoSpace       = "load.no_space"
	// Items: a compartment's item sensor contradicts what happened (a
	// load that left it empty, books left after a pickup or a retrieval):
	// someone looks.
	Items = "compartment.items"
	// CertExpiring: a cabinet's broker certificate ends soon (or has
	// ended): provision it again before the broker refuses it.
	// Provisioning it again resolves the alarm.
	CertExpiring = "locker.certificate_expiring"
	// ILSUnavailable: loans and returns cannot reach the library's system
	// — it is unreachable, its login is refused or dropped, or its 98 SC
	// Status says it takes no checkout or checkin now — and have not for
	// the bridge's alarm_after. Resolved by itself when the bridge can
	// send again.
	ILSUnavailable = "ils.unavailable"
)

// Severities.
const (
	Critical = "critical" // someone should go now: a forced door, a locker down
	Warning  = "warning"  // today: a jam, a full bin, an item to sort
)

var severity = map[string]string{
	DoorForced: Critical, HardwareFault: Critical, StoreLowSpace: Critical, Offline: Critical, Cloned: Critical,
	TailAhead: Critical, ILSLogin: Critical, ILSUnavailable: Critical,
}

// SeverityOf is an alarm type's severity (warning unless critical).
func SeverityOf(typ string) string {
	if s, ok := severity[typ]; ok {
		return s
	}
	return Warning
}

// Tx is the part of a store transaction this package needs. Add stores a,
// numbered (its Seq set); Alarms lists those after seq after. PutAlarm
// writes a numbered one's new state. OpenAlarm finds the latest
// unresolved alarm with key (Alarm.Key); OpenAlarms lists the unresolved
// ones, by seq.
type Tx interface {
	AddAlarm(a Alarm) (Alarm, error)
	Alarms(after uint64) ([]Alarm, error)
	PutAlarm(a Alarm) error
	OpenAlarm(key string) (a Alarm, found bool, err error)
	OpenAlarms() ([]Alarm, error)
}

// Store runs transactions over this package's records.
type Store interface {
	View(fn func(Tx) error) error
	Update(fn func(Tx) error) error
}

// maxDetail bounds an alarm's detail.
const maxDetail = 1000

// Raise records a condition in tx at now: a new alarm (isNew: the caller
// tells whoever must hear of it, in the same transaction), or the
// unresolved one of the same condition updated.
func Raise(tx Tx, a Alarm, now time.Time) (stored Alarm, isNew bool, err error) {
	now = now.UTC()
	if len(a.Detail) > maxDetail {
		a.Detail = a.Detail[:maxDetail] + "…"
	}
	cur, found, err := tx.OpenAlarm(a.Key())
	if err != nil {
		return Alarm{}, false, err
	}
	if found {
		cur.LastSeen, cur.Count, cur.Detail = now, max(cur.Count, 1)+1, a.Detail
		return cur, false, tx.PutAlarm(cur)
	}
	a.At, a.LastSeen, a.Count, a.State, a.Severity = now, now, 1, Open, SeverityOf(a.Type)
	a, err = tx.AddAlarm(a)
	return a, err == nil, err
}

// Clear resolves the unresolved alarm of a condition that ended by
// itself (by says how).
func Clear(tx Tx, lockerID, typ, compartment, by string, now time.Time) error {
	cur, found, err := tx.OpenAlarm(Alarm{Locker: lockerID, Type: typ, Compartment: compartment}.Key())
	if err != nil || !found {
		return err
	}
	cur.State, cur.ResolvedBy, cur.ResolvedAt = Resolved, by, now.UTC()
	return tx.PutAlarm(cur)
}

// IsOpen reports whether the locker's alarm of type typ is unresolved (or
// cannot be read): a sweep leaves it, and writes nothing when that is all
// it found.
func IsOpen(tx Tx, lockerID, typ string) bool {
	_, open, err := tx.OpenAlarm(Alarm{Locker: lockerID, Type: typ}.Key())
	return err != nil || open
}

// Ack acknowledges an unresolved alarm (someone is on it).
func Ack(s Store, seq uint64, by string, now time.Time) (Alarm, error) {
	return change(s, seq, func(a *Alarm) error {
		if a.State == Resolved {
			return fmt.Errorf("alarm %d is resolved", seq)
		}
		a.State, a.AckBy, a.AckAt = Acknowledged, by, now.UTC()
		return nil
	})
}

// Resolve closes an unresolved alarm, with a note (checked by the caller).
func Resolve(s Store, seq uint64, by, note string, now time.Time) (Alarm, error) {
	return change(s, seq, func(a *Alarm) error {
		if a.State == Resolved {
			return fmt.Errorf("alarm %d is resolved", seq)
		}
		a.State, a.ResolvedBy, a.ResolvedAt, a.Note = Resolved, by, now.UTC(), note
		return nil
	})
}

func change(s Store, seq uint64, f func(*Alarm) error) (Alarm, error) {
	var a Alarm
	err := s.Update(func(tx Tx) error {
		// Only an unresolved alarm changes: it is found among those (a
		// few), not by reading the whole history.
		open, err := tx.OpenAlarms()
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
		return tx.PutAlarm(a)
	})
	return a, err
}
