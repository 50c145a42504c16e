package hub_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/lockerd/lockerd/locker/lockertest"
	"github.com/lockerd/lockerd/sync/brokertest"
	"github.com/lockerd/lockerd/sync/hub"
	"github.com/lockerd/lockerd/sync/hub/circulation"
	"github.com/lockerd/lockerd/sync/hub/hubtest"
	"github.com/lockerd/lockerd/sync/protocol"
	"github.com/lockerd/lockerd/sync/sip2"
)

// cardILS is a fake library system for card checks: patrons with PINs.
type cardILS struct {
	down  bool
	pins  map[string]string
	block map[string]bool
	asked chan string
}

func (f *cardILS) State() sip2.State { return sip2.State{Up: !f.down} }
func (f *cardILS) Checkout(context.Context, sip2.Checkout) (sip2.CheckoutResult, error) {
	return sip2.CheckoutResult{}, errors.New("not here")
}
func (f *cardILS) Checkin(context.Context, sip2.Checkin) (sip2.CheckinResult, error) {
	return sip2.CheckinResult{}, errors.New("not here")
}
func (f *cardILS) ItemInformation(context.Context, string) (sip2.ItemInfo, error) {
	return sip2.ItemInfo{}, errors.New("not here")
}
func (f *cardILS) PatronInformation(context.Context, string, string, bool) (sip2.PatronInfo, error) {
	return sip2.PatronInfo{}, errors.New("not here")
}
func (f *cardILS) PatronStatus(_ context.Context, patron, pin string) (sip2.PatronInfo, error) {
	f.asked <- patron
	if f.down {
		return sip2.PatronInfo{}, errors.New("connection refused")
	}
	want, ok := f.pins[patron]
	return sip2.PatronInfo{Valid: ok, PINOK: ok && pin == want, Blocked: f.block[patron], Screen: map[bool]string{true: "fines owing"}[f.block[patron]]}, nil
}

// TestCardChecks: the hub answers a locker's card check, signed, with
// ref = the request: the card's patron hash for a right PIN, the reason
// otherwise; a locker that floods is
// answered "unavailable" without asking the library system.
func TestCardChecks(t *testing.T) {
	url := brokertest.StartEmbedded(t, protocol.DefaultPrefix, "lockerhub")
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ils := &cardILS{pins: map[string]string{"2100": "1234", "2200": "0000", "aadjfiander": "4321"}, block: map[string]bool{"2200": true}, asked: make(chan string, 100)}
	h := hubtest.Start(t, hub.Config{Brokers: []string{url}, SigningKey: priv, PickupKey: lockertest.Key, Lockers: []string{"nb-1"},
		Circulation: circulation.Circulation{ILS: ils}})
	topics := protocol.Topics{Prefix: protocol.DefaultPrefix, Locker: "nb-1"}
	rec := brokertest.Record(t, url, "nb-1", "", nil, topics.DownAck())
	deadline := time.Now().Add(10 * time.Second)
	for !h.Connected() || !h.Leader() {
		if time.Now().After(deadline) {
			t.Fatal("hub not connected and leading")
		}
		time.Sleep(10 * time.Millisecond)
	}
	n := 0
	ask := func(card, pin string) protocol.RespPatron {
		t.Helper()
		n++
		id := fmt.Sprintf("nb-1-q1-%d", n)
		raw, _ := protocol.Encode(protocol.TypeReqPatron, id, "nb-1", "", time.Now(), protocol.ReqPatron{Card: card, PIN: pin})
		from := rec.Len()
		rec.Publish(topics.UpReq(), raw)
		m := rec.WaitFrom(from, 5*time.Second, "the answer to "+id, func(m brokertest.Msg) bool {
			body, err := protocol.Open(m.Payload, pub)
			if err != nil {
				return false
			}
			var msg protocol.Message
			return json.Unmarshal(body, &msg) == nil && msg.Ref == id
		})
		body, _ := protocol.Open(m.Payload, pub)
		var msg protocol.Message
		var r protocol.RespPatron
		if json.Unmarshal(body, &msg) != nil || msg.Type != protocol.TypeRespPatron || protocol.DecodeData(msg, &r) != nil {
			t.Fatalf("answer: %s", body)
		}
		return r
	}
	tests := []struct {
		name, card, pin string
		want            protocol.RespPatron
	}{
		{"right PIN", "2100", "1234", protocol.RespPatron{OK: true, PatronHash: lockertest.Key.PatronHash("2100")}},
		{"wrong PIN", "2100", "9999", protocol.RespPatron{Reason: protocol.PatronWrongPIN}},
		{"blocked card", "2200", "0000", protocol.RespPatron{Reason: protocol.PatronRefused, Message: "fines owing"}},
		{"unknown card", "2999", "1234", protocol.RespPatron{Reason: protocol.PatronRefused}},
		{"card not one", "21|00", "1234", protocol.RespPatron{Reason: protocol.PatronWrongPIN}},
		// The library system matches case (as a real one may): the card is
		// sent as read; the hash that matches orders is of its upper case.
		{"lower-case card", "aadjfiander", "4321", protocol.RespPatron{OK: true, PatronHash: lockertest.Key.PatronHash("AADJFIANDER")}},
		{"lower-case card upper-cased", "AADJFIANDER", "4321", protocol.RespPatron{Reason: protocol.PatronRefused}},
	}
	for _, tt := range tests {
		if got := ask(tt.card, tt.pin); got != tt.want {
			t.Errorf("%s: %+v, want %+v", tt.name, got, tt.want)
		}
	}
	ils.down = true
	if got := ask("2100", "1234"); got.Reason != protocol.PatronUnavailable {
		t.Errorf("ILS down: %+v", got)
	}
	ils.down = false
	// A flood: after the burst, answered at once without the ILS.
	for len(ils.asked) > 0 {
		<-ils.asked
	}
	var limited int
	for range 12 {
		if ask("2100", "1234").Reason == protocol.PatronUnavailable {
			limited++
		}
	}
	if limited == 0 || len(ils.asked) > 10 {
		t.Errorf("flood: %d answered unavailable, %d asked of the ILS", limited, len(ils.asked))
	}
}

func (f *cardILS) PatronHolds(context.Context, string) (sip2.PatronInfo, error) {
	return sip2.PatronInfo{}, errors.New("not here")
}
