package mqttlink

// The locker's side of library card + PIN: a request on up/req, the
// central's signed answer on down/ack with ref = the request's id. The
// card and PIN are sent once, never stored or logged.

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

var _ locker.PatronChecker = (*Link)(nil)

// maxCardWaits bounds the card checks waiting for the central at once.
const maxCardWaits = 4

// CheckPatron implements locker.PatronChecker: it asks the central about
// a card and PIN and waits for the signed answer until ctx ends. Only an
// answer to this request (its random id) is taken: a replayed or late
// answer to another one matches nothing.
func (k *Link) CheckPatron(ctx context.Context, card, pin string) (locker.PatronAnswer, error) {
	if up, _ := k.isConnected(); !up {
		return locker.PatronAnswer{}, errors.New("not connected to the broker")
	}
	k.mu.Lock()
	online := k.centralOnline
	k.mu.Unlock()
	if !online {
		return locker.PatronAnswer{}, errors.New("the central is offline")
	}
	nonce := make([]byte, 8)
	if _, err := rand.Read(nonce); err != nil {
		return locker.PatronAnswer{}, err
	}
	id := fmt.Sprintf("%s-q%d-%s", k.cfg.LockerID, k.l.Boot(), hex.EncodeToString(nonce))
	raw, err := protocol.Encode(protocol.TypeReqPatron, id, k.cfg.LockerID, "", time.Now(), protocol.ReqPatron{Card: card, PIN: pin})
	if err != nil {
		return locker.PatronAnswer{}, err
	}
	ch := make(chan protocol.RespPatron, 1)
	k.cardMu.Lock()
	if len(k.cardWaits) >= maxCardWaits {
		k.cardMu.Unlock()
		return locker.PatronAnswer{}, errors.New("too many card checks waiting")
	}
	if k.cardWaits == nil {
		k.cardWaits = map[string]chan protocol.RespPatron{}
	}
	k.cardWaits[id] = ch
	k.cardMu.Unlock()
	defer func() {
		k.cardMu.Lock()
		delete(k.cardWaits, id)
		k.cardMu.Unlock()
	}()
	k.client.Publish(k.topics.UpReq(), 1, false, raw)
	select {
	case r := <-ch:
		return locker.PatronAnswer{OK: r.OK, PatronHash: r.PatronHash, Reason: r.Reason, Message: r.Message}, nil
	case <-ctx.Done():
		return locker.PatronAnswer{}, fmt.Errorf("no answer from the central: %w", ctx.Err())
	}
}

// handleRespPatron delivers the central's answer to the request it refers
// to (nothing waits for it any more: dropped).
func (k *Link) handleRespPatron(m protocol.Message) {
	var r protocol.RespPatron
	if err := protocol.DecodeData(m, &r); err != nil {
		k.log.Warn("card answer refused", "ref", m.Ref, "err", err)
		return
	}
	k.cardMu.Lock()
	ch := k.cardWaits[m.Ref]
	delete(k.cardWaits, m.Ref)
	k.cardMu.Unlock()
	if ch == nil {
		k.log.Info("card answer for no waiting request dropped", "ref", m.Ref)
		return
	}
	ch <- r
}
