package hub

// A locker's questions (up/req): a card and PIN, a hold scan. The leader
// takes each and hands it to its answerer (Config.Requests: the package
// sync/hub/requests), which answers with Reply.

import (
	"encoding/json"

	"github.com/lockerd/lockerd/sync/protocol"
)

// onRequest takes a locker's question (up/req) on the leader.
func (h *Hub) onRequest(id string, payload []byte) {
	if len(payload) > max(protocol.MaxReqPatron, protocol.MaxReqHold) || !h.Leader() {
		return
	}
	var m protocol.Message
	if json.Unmarshal(payload, &m) != nil || m.Locker != id || m.ID == "" || len(m.ID) > 128 {
		h.log.Warn("malformed request refused", "locker", id)
		return
	}
	if answer := h.cfg.Requests[m.Type]; answer != nil {
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

// CountCard counts a card check's outcome (the metrics).
func (h *Hub) CountCard(outcome string) { h.metrics.Card(outcome) }
