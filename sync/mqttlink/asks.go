package mqttlink

// The locker's questions to the central: a request on up/req, the
// central's signed answer on down/ack with ref = the request's id. A
// library card + PIN (req.patron) is sent once, never stored or logged;
// an item staff scanned with no order here (req.hold) is answered with
// the order made for its hold.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/sync/protocol"
)

var (
	_ locker.PatronChecker = (*Link)(nil)
	_ locker.HoldAsker     = (*Link)(nil)
)

// maxAskWaits bounds the questions waiting for the central at once.
const maxAskWaits = 4

// CheckPatron implements locker.PatronChecker: it asks the central about
// a card and PIN and waits for the signed answer until ctx ends.
func (k *Link) CheckPatron(ctx context.Context, card, pin string) (locker.PatronAnswer, error) {
	m, err := k.ask(ctx, protocol.TypeReqPatron, protocol.ReqPatron{Card: card, PIN: pin})
	if err != nil {
		return locker.PatronAnswer{}, err
	}
	var r protocol.RespPatron
	if m.Type != protocol.TypeRespPatron || protocol.DecodeData(m, &r) != nil {
		return locker.PatronAnswer{}, fmt.Errorf("malformed answer %s to a card check", m.Type)
	}
	return locker.PatronAnswer{OK: r.OK, PatronHash: r.PatronHash, Reason: r.Reason, Message: r.Message}, nil
}

// AskHold implements locker.HoldAsker: it asks the central whose hold a
// scanned item is and waits for the order made for it until ctx ends.
func (k *Link) AskHold(ctx context.Context, s locker.HoldScan) (locker.HoldAnswer, error) {
	m, err := k.ask(ctx, protocol.TypeReqHold, protocol.ReqHold{Item: s.Item, Card: s.Card, By: s.By, Visit: s.Visit, Loading: s.Loading})
	if err != nil {
		return locker.HoldAnswer{}, err
	}
	var r protocol.RespHold
	if m.Type != protocol.TypeRespHold || protocol.DecodeData(m, &r) != nil || r.OK && r.Order == nil {
		return locker.HoldAnswer{}, fmt.Errorf("malformed answer %s to a hold scan", m.Type)
	}
	ans := locker.HoldAnswer{OK: r.OK, Reason: r.Reason, Message: r.Message}
	if r.OK {
		if ans.Order, err = k.toCore(*r.Order); err != nil {
			return locker.HoldAnswer{}, fmt.Errorf("order in the answer to a hold scan: %w", err)
		}
	}
	return ans, nil
}

// ask sends a request and waits for the signed answer that refers to it.
// Only an answer to this request (its random id) is taken: a replayed or
// late answer to another one matches nothing.
func (k *Link) ask(ctx context.Context, typ string, data any) (protocol.Message, error) {
	if up, _ := k.isConnected(); !up {
		return protocol.Message{}, errors.New("not connected to the broker")
	}
	k.mu.Lock()
	online := k.centralOnline
	k.mu.Unlock()
	if !online {
		return protocol.Message{}, errors.New("the central is offline")
	}
	nonce := make([]byte, 8)
	if _, err := rand.Read(nonce); err != nil {
		return protocol.Message{}, err
	}
	id := fmt.Sprintf("%s-q%d-%s", k.cfg.LockerID, k.l.Boot(), hex.EncodeToString(nonce))
	raw, err := protocol.Encode(typ, id, k.cfg.LockerID, "", time.Now(), data)
	if err != nil {
		return protocol.Message{}, err
	}
	ch := make(chan protocol.Message, 1)
	k.askMu.Lock()
	if len(k.askWaits) >= maxAskWaits {
		k.askMu.Unlock()
		return protocol.Message{}, errors.New("too many questions waiting for the central")
	}
	if k.askWaits == nil {
		k.askWaits = map[string]chan protocol.Message{}
	}
	k.askWaits[id] = ch
	k.askMu.Unlock()
	defer func() {
		k.askMu.Lock()
		delete(k.askWaits, id)
		k.askMu.Unlock()
	}()
	k.client.Publish(k.topics.UpReq(), 1, false, raw)
	select {
	case m := <-ch:
		return m, nil
	case <-ctx.Done():
		return protocol.Message{}, fmt.Errorf("no answer from the central: %w", ctx.Err())
	}
}

// handleAnswer delivers the central's answer to the request it refers to
// (nothing waits for it any more: dropped).
func (k *Link) handleAnswer(m protocol.Message) {
	k.askMu.Lock()
	ch := k.askWaits[m.Ref]
	delete(k.askWaits, m.Ref)
	k.askMu.Unlock()
	if ch == nil {
		k.log.Info("answer for no waiting request dropped", "type", m.Type, "ref", m.Ref)
		return
	}
	ch <- m
}
