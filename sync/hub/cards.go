package hub

// Library card + PIN at a locker: the locker asks (req.patron on up/req),
// the hub asks the library system with SIP2 Patron Status carrying the
// PIN, and answers signed (resp.patron on down/ack, ref = the request).
// The card and PIN are used for that one question: never stored, never
// logged. One replica answers (the leader), so a wrong PIN is counted
// once at the library system.

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/lockerd/lockerd/sync/hub/circulation"
	"github.com/lockerd/lockerd/sync/protocol"
)

const (
	// cardCheckTimeout leaves the answer time to reach the locker within
	// its 3 s.
	cardCheckTimeout = 2500 * time.Millisecond
	// maxCardChecks bounds the card checks in flight (beyond: answered
	// unavailable at once, and the reader uses the pickup code).
	maxCardChecks = 8
	// A locker may ask 10 times at once, then once every 6 s: a scanner
	// flooded with cards does not flood the library system.
	cardBurst = 10
	cardEvery = 6 * time.Second
)

// onCardRequest handles one req.patron from locker id.
func (h *Hub) onCardRequest(id string, payload []byte) {
	if len(payload) > protocol.MaxReqPatron || !h.Leader() {
		return
	}
	var m protocol.Message
	var req protocol.ReqPatron
	if json.Unmarshal(payload, &m) != nil || m.Type != protocol.TypeReqPatron || m.Locker != id || m.ID == "" || len(m.ID) > 128 ||
		protocol.DecodeData(m, &req) != nil {
		h.log.Warn("malformed card request refused", "locker", id)
		return
	}
	if !h.cards.Allow(id, time.Now()) {
		h.answerCard(id, m.ID, protocol.RespPatron{Reason: protocol.PatronUnavailable, Message: "too many card checks: use the pickup code"}, "rate_limited")
		return
	}
	select {
	case h.cardSlots <- struct{}{}:
	default:
		h.answerCard(id, m.ID, protocol.RespPatron{Reason: protocol.PatronUnavailable}, "busy")
		return
	}
	go func() {
		defer func() { <-h.cardSlots }()
		ans, outcome := h.checkCard(req)
		h.answerCard(id, m.ID, ans, outcome)
	}()
}

// checkCard asks the library system about a card and PIN.
func (h *Hub) checkCard(req protocol.ReqPatron) (protocol.RespPatron, string) {
	if len(h.cfg.PickupKey) == 0 {
		return protocol.RespPatron{Reason: protocol.PatronUnavailable}, circulation.CardNoILS
	}
	ctx, cancel := context.WithTimeout(context.Background(), cardCheckTimeout)
	defer cancel()
	c := circulation.CheckCard(ctx, h.cfg.Circulation.ILS, req.Card, req.PIN)
	switch c.Outcome {
	case circulation.CardOK:
		// Only the hash that matches orders is of the card's normalised form.
		return protocol.RespPatron{OK: true, PatronHash: h.cfg.PickupKey.PatronHash(strings.ToUpper(c.Card))}, c.Outcome
	case circulation.CardRefused:
		return protocol.RespPatron{Reason: protocol.PatronRefused, Message: c.Screen}, c.Outcome
	case circulation.CardWrongPIN, circulation.CardMalformed:
		return protocol.RespPatron{Reason: protocol.PatronWrongPIN}, c.Outcome
	}
	return protocol.RespPatron{Reason: protocol.PatronUnavailable}, c.Outcome
}

// answerCard signs and sends the answer to request ref of locker id.
func (h *Hub) answerCard(id, ref string, ans protocol.RespPatron, outcome string) {
	if h.metrics != nil {
		h.metrics.Card(outcome)
	}
	env, err := h.sealReply(id, protocol.TypeRespPatron, ref, ans)
	if err != nil {
		h.log.Error("card answer not signed", "locker", id, "err", err)
		return
	}
	h.publish(h.topics(id).DownAck(), env)
	h.log.Info("card check", "locker", id, "outcome", outcome)
}
