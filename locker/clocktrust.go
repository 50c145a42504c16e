package locker

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// A Pi has no real-time clock: it may boot at 1970, or with whatever date
// it last saved, until NTP or the central library tells it the time. The
// date decides expiry, so expiry waits for a clock it can trust: either the
// system clock is synchronised (NTP), or the central library's signed
// messages have told the locker the time recently — then the locker uses
// the central library's time (its offset from the local clock). Durations
// (door confirmation, lockouts, grace periods) use the local clock as is.
//
// A backwards jump never reopens an expired order (expiry is a recorded
// state change, and states only move forward); it only delays expiries.

// Clock trust modes (policy.clock_trust).
const (
	ClockTrustAuto   = "auto"   // NTP-synchronised or central time, else no expiry
	ClockTrustAlways = "always" // believe the local clock (a locker with an RTC, tests)
)

// CentralTimeValidity is how long a time heard from the central library
// stays usable without another message.
const CentralTimeValidity = 24 * time.Hour

// ClockTrust decides whether the date can be believed.
type ClockTrust struct {
	Mode string
	// Synced reports whether the system clock is NTP-synchronised.
	Synced func() bool
	// MinPlausible is a date before which the local clock is certainly
	// wrong (the build date): it is then trusted only through the central
	// library's time.
	MinPlausible time.Time

	mu       sync.Mutex
	observed bool
	localAt  time.Time     // local clock when the central time was heard
	offset   time.Duration // central - local at that moment
}

// Observe records the central library's time (from a signed message)
// heard at local time local. A message's time is when it was signed: a
// broker may have held it back, so it is a lower bound of the central
// library's time. The estimate therefore only moves forward: a delayed
// message never turns the clock back (and so never makes an old command
// look fresh).
func (c *ClockTrust) Observe(central, local time.Time) {
	if central.IsZero() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.observed {
		if since := local.Sub(c.localAt); since >= 0 && since <= CentralTimeValidity && !central.After(local.Add(c.offset)) {
			c.localAt = local // the estimate stands, and is good for another CentralTimeValidity
			return
		}
	}
	c.observed, c.localAt, c.offset = true, local, central.Sub(local)
}

// Now returns the date to decide expiry by, and whether it can be trusted.
func (c *ClockTrust) Now(local time.Time) (time.Time, bool) {
	if c == nil || c.Mode == ClockTrustAlways {
		return local, true
	}
	plausible := !local.Before(c.MinPlausible)
	if plausible && c.Synced != nil && c.Synced() {
		return local, true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.observed {
		since := local.Sub(c.localAt)
		if since >= 0 && since <= CentralTimeValidity {
			return local.Add(c.offset), true
		}
	}
	return local, false
}

// SetClockTrust installs the clock trust policy; without one the local
// clock is always believed.
func (l *Locker) SetClockTrust(c *ClockTrust) { l.trust = c }

// ObserveCentralTime records the time carried by an authenticated message
// from the central library.
func (l *Locker) ObserveCentralTime(central time.Time) {
	if l.trust != nil {
		l.trust.Observe(central, l.clock.Now())
	}
}

// expiryNow is the date expiry decisions use, and whether it is trusted.
func (l *Locker) expiryNow() (time.Time, bool) { return l.trust.Now(l.clock.Now()) }

// Errors of CheckCommandTime.
var (
	ErrCommandExpired = errors.New("command expired")
	ErrNoTrustedTime  = errors.New("no trusted time to judge the command's exp by (no NTP, no recent signed message from the central library)")
)

// CheckCommandTime judges a remote command's exp by the same trusted time
// as order expiry: NTP, or the central library's time from earlier signed
// messages plus the monotonic time since. The local clock alone is not
// believed: a Pi that booted at 1970 would take a command a broker held
// back for hours as fresh, and one running ahead would refuse every
// command. With no trusted time at all, a command that opens doors is
// refused rather than guessed at. Call it before observing the command's
// own time: a message cannot vouch for itself.
func (l *Locker) CheckCommandTime(exp time.Time) error {
	now, trusted := l.expiryNow()
	if !trusted {
		return ErrNoTrustedTime
	}
	if !now.Before(exp) {
		return fmt.Errorf("%w: exp %s has passed (trusted time %s)", ErrCommandExpired,
			exp.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return nil
}
