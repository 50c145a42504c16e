package protocol

import (
	"encoding/json"
	"os"
	"testing"
	"time"
)

// vectors016 are the additions of lockerd 0.16 (testdata/protocol-v1-0.16.json).
type vectors016 struct {
	BadgeHash  string            `json:"badge_hash"`
	RespPatron map[string]string `json:"resp_patron"`
	CmdBadges  map[string]string `json:"cmd_badges"`
	SharedCode map[string]string `json:"shared_code"`
	Patron     []struct {
		PatronHash string `json:"patron_hash"`
		Valid      bool   `json:"valid"`
	} `json:"patron"`
}

// TestVectors016: each signed message of the 0.16 vectors opens with the
// central's key of protocol-v1.json, decodes as the locker decodes it,
// and carries what docs/protocol.md says; an order sharing a code with a
// patron hash and delivery, a resp.patron and a cmd.badges.
func TestVectors016(t *testing.T) {
	base := load(t)
	pub, err := ParsePublicKey(base.CentralPublicKey)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("../../testdata/protocol-v1-0.16.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectors016
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	open := func(name string, vec map[string]string) Message {
		t.Helper()
		body, err := Open([]byte(vec["envelope"]), pub)
		if err != nil || string(body) != vec["body"] {
			t.Fatalf("%s: %v (body %s)", name, err, body)
		}
		m, err := Decode(body, "nb-main-01")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return m
	}
	m := open("resp.patron", v.RespPatron)
	var r RespPatron
	if err := DecodeData(m, &r); err != nil || m.Type != TypeRespPatron || m.Ref == "" || !r.OK || r.PatronHash != v.Patron[0].PatronHash {
		t.Fatalf("resp.patron: %+v %+v %v", m, r, err)
	}
	m = open("cmd.badges", v.CmdBadges)
	var b CmdBadges
	if err := DecodeData(m, &b); err != nil || m.Exp == nil || !m.Exp.After(m.TS) || len(b.Add) != 1 || b.Add[0].Hash != v.BadgeHash ||
		b.Add[0].Role != "volunteer" || len(b.Revoke) != 1 || b.Revoke[0].Name == "" {
		t.Fatalf("cmd.badges: %+v %v", b, err)
	}
	m = open("orders.upsert", v.SharedCode)
	var up OrdersUpsert
	if err := DecodeData(m, &up); err != nil || len(up.Orders) != 2 {
		t.Fatalf("orders.upsert: %+v %v", up, err)
	}
	a, c := up.Orders[0], up.Orders[1]
	if a.CodeHash != c.CodeHash || a.PatronHash != v.Patron[0].PatronHash || c.PatronHash != a.PatronHash || a.Delivery || !c.Delivery ||
		!a.ExpiresAt.After(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("orders sharing a code: %+v", up.Orders)
	}
}
