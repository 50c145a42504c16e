package locker

// Named badges and their roles: who may do what at the cabinet, and the
// name every event a badge causes records (by).

import (
	"errors"
	"fmt"
	"strings"
)

// BadgeRole is what a badge may do at the cabinet.
type BadgeRole string

const (
	// RoleStaff loads, retrieves, empties the return bin and does
	// maintenance.
	RoleStaff BadgeRole = "staff"
	// RoleVolunteer collects the orders marked for delivery: one scan
	// opens every such ready order here.
	RoleVolunteer BadgeRole = "volunteer"
	// RoleTechnician opens doors for maintenance and takes compartments
	// out of service (and back); never an order.
	RoleTechnician BadgeRole = "technician"
)

// Valid reports whether r is a known role.
func (r BadgeRole) Valid() bool { return r == RoleStaff || r == RoleVolunteer || r == RoleTechnician }

// Where a badge record came from.
const (
	BadgeFromConfig  = "config"
	BadgeFromCentral = "central"
)

// MaxBadgeName bounds a badge's name (it is written into events).
const MaxBadgeName = 64

// Badge is a named badge: its code's keyed hash (never the code), its
// role, and whether the central revoked it. A revoked badge is kept as
// such, so that a config file listing it does not bring it back: the
// central's word (a lost badge) outranks the file until it adds the
// badge again.
type Badge struct {
	Hash    string    `json:"hash"`
	Name    string    `json:"name"`
	Role    BadgeRole `json:"role"`
	Source  string    `json:"source,omitempty"` // BadgeFromConfig or BadgeFromCentral
	Revoked bool      `json:"revoked,omitempty"`
}

// Check bounds a badge from the config or the central.
func (b Badge) Check() error {
	switch {
	case !isHexHash(b.Hash):
		return errors.New("badge hash must be 64 lowercase hex digits (lockerctl hash-code prints it)")
	case b.Name == "" || len(b.Name) > MaxBadgeName || !printableName(b.Name):
		return fmt.Errorf("badge name: 1 to %d printable characters", MaxBadgeName)
	case !b.Role.Valid():
		return fmt.Errorf("badge %s: role %q: want staff, volunteer or technician", b.Name, b.Role)
	}
	return nil
}

func printableName(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 || r == 0x2028 || r == 0x2029 {
			return false
		}
	}
	return strings.TrimSpace(s) == s
}

// badge returns the live badge whose code hashes to hash.
func (l *Locker) badge(hash string) (Badge, bool) {
	var b Badge
	err := l.store.View(func(tx Tx) error {
		var err error
		b, err = tx.Badge(hash)
		return err
	})
	switch {
	case errors.Is(err, ErrNotFound):
		return Badge{}, false
	case err != nil:
		// The store cannot be read: the config's badges still work.
		l.log.Error("badge lookup", "err", err)
		b, ok := l.cfgBadges[hash]
		return b, ok
	}
	return b, !b.Revoked
}

// BadgeChange is the central's change to the badges (cmd.badges): badges
// to add (or change), and badges to revoke by hash or by name.
type BadgeChange struct {
	Add          []Badge
	RevokeHashes []string
	RevokeNames  []string
}

// ChangeBadges applies the central's change at once: a revoked badge
// opens nothing from the moment this returns, and a staff session it
// holds ends. It returns how many badges changed.
func (l *Locker) ChangeBadges(ch BadgeChange) (int, error) {
	for _, b := range ch.Add {
		if err := b.Check(); err != nil {
			return 0, err
		}
	}
	n := 0
	var revoked []string
	err := l.update(func(tx Tx) error {
		n, revoked = 0, nil
		for _, b := range ch.Add {
			b.Source, b.Revoked = BadgeFromCentral, false
			if err := tx.PutBadge(b); err != nil {
				return err
			}
			n++
		}
		all, err := tx.Badges()
		if err != nil {
			return err
		}
		byName := map[string]bool{}
		for _, name := range ch.RevokeNames {
			byName[name] = true
		}
		revoke := map[string]Badge{}
		for _, h := range ch.RevokeHashes {
			revoke[h] = Badge{Hash: h, Name: "(unknown)", Role: RoleStaff}
		}
		for _, b := range all {
			if byName[b.Name] || revoke[b.Hash].Hash != "" {
				revoke[b.Hash] = b
			}
		}
		for _, b := range revoke {
			if !isHexHash(b.Hash) {
				return fmt.Errorf("revoke: badge hash must be 64 lowercase hex digits")
			}
			b.Revoked, b.Source = true, BadgeFromCentral
			if err := tx.PutBadge(b); err != nil {
				return err
			}
			revoked = append(revoked, b.Name)
			n++
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if len(revoked) > 0 {
		l.endSessionsOf(revoked)
	}
	l.log.Info("badges changed by the central", "added", len(ch.Add), "revoked", revoked)
	return n, nil
}

// Badges lists the badges known here (revoked ones included).
func (l *Locker) Badges() ([]Badge, error) {
	var out []Badge
	err := l.store.View(func(tx Tx) error {
		var err error
		out, err = tx.Badges()
		return err
	})
	return out, err
}

// syncConfigBadges writes the config's badges into the store at start:
// new and changed ones are stored, config badges no longer in the file
// are dropped, and the central's records (added or revoked) are kept.
func (l *Locker) syncConfigBadges(tx Tx) error {
	stored, err := tx.Badges()
	if err != nil {
		return err
	}
	have := map[string]Badge{}
	for _, b := range stored {
		have[b.Hash] = b
		if _, inFile := l.cfgBadges[b.Hash]; b.Source != BadgeFromCentral && !inFile {
			if err := tx.DeleteBadge(b.Hash); err != nil {
				return err
			}
		}
	}
	for _, b := range l.cfgBadges {
		if cur, ok := have[b.Hash]; ok && cur.Source == BadgeFromCentral {
			continue
		}
		if err := tx.PutBadge(b); err != nil {
			return err
		}
	}
	return nil
}

// endSessionsOf ends the staff sessions held by the named badges.
func (l *Locker) endSessionsOf(names []string) {
	l.mu.Lock()
	var ended []string
	for dev, s := range l.sessions {
		for _, n := range names {
			if s.badge.Name == n {
				delete(l.sessions, dev)
				ended = append(ended, dev)
			}
		}
	}
	l.mu.Unlock()
	for _, dev := range ended {
		l.log.Info("staff session ended: badge revoked", "scanner", dev)
		l.notify(Notice{Type: NoticeStaffSession, Data: map[string]any{"scanner": dev, "on": false}})
	}
}
