package locker

// Library card + PIN: a reader scans their library card (or types its
// number) and types their PIN; the central checks the PIN with the
// library system and answers, signed, with the card's patron hash; every
// ready order of that reader here opens. The card number is held in
// memory only until the PIN is typed (CardPINWindow), the PIN only while
// the central is asked; neither is stored or logged.

import (
	"context"
	"strings"
	"time"
)

// Outcomes and refusal reasons of the card flow.
const (
	// OutcomePINNeeded: a library card with ready orders here was
	// scanned; the kiosk asks for its PIN.
	OutcomePINNeeded Outcome = "pin_needed"
	// DenyWrongPIN: the central says the PIN is wrong (counts towards
	// the lockouts of the scanner and of the card).
	DenyWrongPIN = "wrong_pin"
	// DenyCardRefused: the library system refuses the card (blocked,
	// unknown, expired): the reader goes to the desk.
	DenyCardRefused = "card_refused"
	// DenyUseCode: the central could not be asked (offline, no answer
	// in time, no library system): the pickup code always works.
	DenyUseCode = "use_code"
	// DenyNoCard: a PIN typed with no card scanned (or after the window).
	DenyNoCard = "no_card"
)

// CardPINWindow is how long after a card is scanned its PIN may be typed.
const CardPINWindow = 60 * time.Second

// CardCheckTimeout bounds the central's answer to a card and PIN.
const CardCheckTimeout = 3 * time.Second

// MaxPINLen bounds a PIN typed on the keypad.
const MaxPINLen = 16

// PatronAnswer is the central's signed answer to a card and PIN.
type PatronAnswer struct {
	OK         bool
	PatronHash string // the card's keyed hash, as orders carry it
	// Reason when not OK: "pin" (wrong PIN), "refused" (the library
	// system refuses the card), "unavailable" (no library system).
	Reason string
	// Message is the library system's screen message, if any.
	Message string
}

// PatronChecker asks the central about a card and PIN (the sync link is
// one). It returns an error when the central cannot be asked or does not
// answer within the context's deadline.
type PatronChecker interface {
	CheckPatron(ctx context.Context, card, pin string) (PatronAnswer, error)
}

// SetPatronChecker wires the central's card check (nil: cards are not
// accepted; the kiosk says to use the pickup code). Call before Run.
func (l *Locker) SetPatronChecker(pc PatronChecker) {
	l.mu.Lock()
	l.patrons = pc
	l.mu.Unlock()
}

// pendingCard is a card scanned and waiting for its PIN.
type pendingCard struct {
	card   string // the card number as read (CleanPatron): memory only
	hash   string
	device Device
	until  time.Time
}

// cardScan takes a scan that matched no code and no badge as a library
// card: with ready orders of its reader here, the kiosk asks for the PIN.
func (l *Locker) cardScan(dev Device, text string, now time.Time) (ScanResult, bool) {
	card, err := CleanPatron(text) // as read: the library system may match case
	if err != nil {
		return ScanResult{}, false
	}
	hash := l.key.PatronHash(strings.ToUpper(card))
	var ready int
	if err := l.store.View(func(tx Tx) error {
		orders, err := tx.OrdersByPatronHash(hash)
		for _, o := range orders {
			if o.State == OrderReady {
				ready++
			}
		}
		return err
	}); err != nil || ready == 0 {
		return ScanResult{}, false
	}
	l.mu.Lock()
	l.card = &pendingCard{card: card, hash: hash, device: dev, until: now.Add(CardPINWindow)}
	l.mu.Unlock()
	l.log.Info("library card scanned: PIN asked", "scanner", dev.Name, "orders", ready)
	l.notify(Notice{Type: NoticeCard, Data: map[string]any{"scanner": dev.Name, "until": now.Add(CardPINWindow).UTC()}})
	return ScanResult{Outcome: OutcomePINNeeded, Until: now.Add(CardPINWindow).UTC()}, true
}

// cardLockoutKey is the lockout of one card: a PIN guessed on one
// scanner and then another still meets it.
func cardLockoutKey(hash string) string { return "card:" + hash[:16] }

// EnterPIN takes the PIN typed for the card scanned last: the central is
// asked, and a right PIN opens every ready order of the card's reader
// here. A wrong one counts towards the lockouts of the scanner the card
// was scanned on and of the card.
func (l *Locker) EnterPIN(ctx context.Context, pin string) ScanResult {
	now := l.clock.Now()
	l.mu.Lock()
	pc, checker := l.card, l.patrons
	l.card = nil
	l.mu.Unlock()
	if pc == nil || !now.Before(pc.until) {
		return ScanResult{Outcome: OutcomeDenied, Reason: DenyNoCard}
	}
	if len(pin) == 0 || len(pin) > MaxPINLen || !printableASCII(pin) {
		return l.wrongPIN(pc, now)
	}
	cardKey := cardLockoutKey(pc.hash)
	for _, key := range []string{pc.device.Name, cardKey} {
		if until, locked := l.lockouts.LockedUntil(key, now); locked {
			l.refuse(pc.device, EvPickupDenied, DenyLockedOut, until, false)
			return ScanResult{Outcome: OutcomeDenied, Reason: DenyLockedOut, Until: until}
		}
	}
	if checker == nil {
		return ScanResult{Outcome: OutcomeDenied, Reason: DenyUseCode}
	}
	cctx, cancel := context.WithTimeout(ctx, CardCheckTimeout)
	ans, err := checker.CheckPatron(cctx, pc.card, pin)
	cancel()
	switch {
	case err != nil:
		l.log.Warn("library card not checked: the central could not be asked", "err", err)
		return ScanResult{Outcome: OutcomeDenied, Reason: DenyUseCode}
	case !ans.OK && ans.Reason == "pin":
		return l.wrongPIN(pc, now)
	case !ans.OK && ans.Reason == "unavailable":
		return ScanResult{Outcome: OutcomeDenied, Reason: DenyUseCode}
	case !ans.OK:
		l.log.Info("library card refused by the library system", "scanner", pc.device.Name)
		return ScanResult{Outcome: OutcomeDenied, Reason: DenyCardRefused}
	case ans.PatronHash != pc.hash:
		// Signed, but for another card: never open on it.
		l.log.Error("the central's card answer names another card: refused")
		return ScanResult{Outcome: OutcomeDenied, Reason: DenyUseCode}
	}
	var orders []Order
	if err := l.store.View(func(tx Tx) error {
		var err error
		orders, err = tx.OrdersByPatronHash(pc.hash)
		return err
	}); err != nil {
		return ScanResult{Outcome: OutcomeError, Reason: "store"}
	}
	return l.openOrders(ctx, pc.device, orders, ViaCard, "")
}

// wrongPIN counts a wrong PIN against the scanner and the card.
func (l *Locker) wrongPIN(pc *pendingCard, now time.Time) ScanResult {
	until, started := l.refuse(pc.device, EvPickupDenied, DenyWrongPIN, time.Time{}, true)
	key := cardLockoutKey(pc.hash)
	cuntil, cstarted := l.lockouts.Fail(key, now)
	if err := l.update(func(tx Tx) error {
		if err := tx.PutLockoutState(key, l.lockouts.State(key)); err != nil {
			return err
		}
		if cstarted {
			return l.record(tx, LockoutStarted{Scanner: key, Until: cuntil.UTC()})
		}
		return nil
	}); err != nil {
		l.log.Error("card lockout not recorded", "err", err)
	}
	l.log.Info("wrong PIN", "scanner", pc.device.Name, "lockout_started", started || cstarted)
	if started || cstarted {
		return ScanResult{Outcome: OutcomeDenied, Reason: DenyLockedOut, Until: later(until, cuntil)}
	}
	return ScanResult{Outcome: OutcomeDenied, Reason: DenyWrongPIN}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
