package circulation

import (
	"context"
	"strings"

	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/sync/protocol"
)

// Card check outcomes (the metrics' labels).
const (
	CardOK          = "ok"
	CardMalformed   = "malformed"
	CardNoILS       = "no_ils"
	CardUnreachable = "ils_unreachable"
	CardRefused     = "refused"
	CardWrongPIN    = "wrong_pin"
)

// CardCheck is the library system's answer about a card and PIN.
type CardCheck struct {
	Outcome string // one of the Card outcomes
	Card    string // the card as the library system knows it (CleanPatron)
	Name    string // the reader's name, when OK
	Screen  string // the library system's message, when refused
}

// CheckCard asks ils about a library card and its PIN (SIP2 Patron
// Status): whether the reader may use the service. The card and PIN are
// used for this one question: never stored, never logged. A nil ils
// answers CardNoILS.
func CheckCard(ctx context.Context, ils ILS, card, pin string) CardCheck {
	if ils == nil {
		return CardCheck{Outcome: CardNoILS}
	}
	// The card goes to the library system as the reader's card was read.
	card, err := locker.CleanPatron(card)
	if err != nil || pin == "" || len(pin) > locker.MaxPINLen {
		return CardCheck{Outcome: CardMalformed}
	}
	p, err := ils.PatronStatus(ctx, card, pin)
	switch {
	case err != nil:
		return CardCheck{Outcome: CardUnreachable, Card: card}
	case !p.Valid || p.Blocked:
		return CardCheck{Outcome: CardRefused, Card: card, Screen: p.Screen}
	case !p.PINOK:
		return CardCheck{Outcome: CardWrongPIN, Card: card}
	}
	return CardCheck{Outcome: CardOK, Card: card, Name: p.Name}
}

// AnswerCard is a locker's card check answered (resp.patron) and its
// outcome: with key, the card's patron hash as orders carry it (of the
// card's normalised form); without a key or a library system, unavailable.
func AnswerCard(ctx context.Context, ils ILS, key locker.CodeKey, req protocol.ReqPatron) (protocol.RespPatron, string) {
	if len(key) == 0 {
		return protocol.RespPatron{Reason: protocol.PatronUnavailable}, CardNoILS
	}
	c := CheckCard(ctx, ils, req.Card, req.PIN)
	switch c.Outcome {
	case CardOK:
		return protocol.RespPatron{OK: true, PatronHash: key.PatronHash(strings.ToUpper(c.Card))}, c.Outcome
	case CardRefused:
		return protocol.RespPatron{Reason: protocol.PatronRefused, Message: c.Screen}, c.Outcome
	case CardWrongPIN, CardMalformed:
		return protocol.RespPatron{Reason: protocol.PatronWrongPIN}, c.Outcome
	}
	return protocol.RespPatron{Reason: protocol.PatronUnavailable}, c.Outcome
}
