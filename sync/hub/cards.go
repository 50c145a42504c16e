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

// onRequest takes a locker's question (up/req) on the leader: a card
// check here, another type by Config.Requests.
func (h *Hub) onRequest(id string, payload []byte) {
	if len(payload) > max(protocol.MaxReqPatron, protocol.MaxReqHold) || !h.Leader() {
		return
	}
	var m protocol.Message
	if json.Unmarshal(payload, &m) != nil || m.Locker != id || m.ID == "" || len(m.ID) > 128 {
		h.log.Warn("malformed request refused", "locker", id)
		return
	}
	if m.Type == protocol.TypeReqPatron {
		h.onCardRequest(id, m)
	} else if answer := h.cfg.Requests[m.Type]; answer != nil {
		answer(id, m)
	} else {
		h.log.Warn("request of an unknown type refused", "locker", id, "type", m.Type)
	}
}

// Reply signs and sends the answer to request ref of locker id (down/ack).
func (h *Hub) Reply(id, typ, ref string, data any) {
	env, err := h.sealReply(id, typ, ref, data)
	if err != nil {
		h.log.Error("answer not signed", "locker", id, "type", typ, "err", err)
		return
	}
	h.publish(h.topics(id).DownAck(), env)
}

// onCardRequest handles one req.patron from locker id.
func (h *Hub) onCardRequest(id string, m protocol.Message) {
	var req protocol.ReqPatron
	if len(m.Data) > protocol.MaxReqPatron || protocol.DecodeData(m, &req) != nil {
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
	ctx, cancel := context.WithTimeout(context.Background(), cardCheckTimeout)
	defer cancel()
	return circulation.AnswerCard(ctx, h.cfg.Circulation.ILS, h.cfg.PickupKey, req)
}

// answerCard signs and sends the answer to request ref of locker id.
func (h *Hub) answerCard(id, ref string, ans protocol.RespPatron, outcome string) {
	if h.metrics != nil {
		h.metrics.Card(outcome)
	}
	h.Reply(id, protocol.TypeRespPatron, ref, ans)
	h.log.Info("card check", "locker", id, "outcome", outcome)
}
