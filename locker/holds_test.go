package locker_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/locker/lockertest"
)

// central is a fake of the central's hold lookup: a scripted answer per
// item (an order made, or a refusal), or unreachable.
type central struct {
	mu      sync.Mutex
	down    bool
	answers map[string]locker.HoldAnswer // by item, or item+"/"+card
	asked   []locker.HoldScan
}

func (c *central) AskHold(_ context.Context, s locker.HoldScan) (locker.HoldAnswer, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.asked = append(c.asked, s)
	if c.down {
		return locker.HoldAnswer{}, errors.New("the central is offline")
	}
	key := s.Item
	if s.Card != "" {
		key += "/" + s.Card
	}
	if a, ok := c.answers[key]; ok {
		return a, nil
	}
	return locker.HoldAnswer{Reason: "no_hold", Message: "no hold waits for item " + s.Item}, nil
}

// A staff scan of an item with no order asks the central: the order it
// makes for the hold's reader opens a compartment for loading; a second
// item of the visit joining that order while its door is open goes into
// the same compartment; a refusal is shown with its reason; a hold the
// central asks the slip's card for takes the next scan as that card;
// offline, the scan is recorded for the central and staff are told.
func TestHoldScansAtTheCabinet(t *testing.T) {
	set, badge := staffSettings()
	c := lockertest.NewCabinet(t, set)
	exp := c.Clock.Now().Add(72 * time.Hour)
	held := locker.Order{ID: "H-1", Rev: 5, State: locker.OrderAssigned, Size: locker.SizeS, Items: []locker.Item{{Barcode: "H1", Title: "三体"}},
		CodeHash: lockertest.Key.Hash("HOLDCODE1"), ExpiresAt: exp}
	joined := held
	joined.Rev, joined.Items = 6, append(joined.Items, locker.Item{Barcode: "H2"})
	slip := locker.Order{ID: "H-3", Rev: 7, State: locker.OrderAssigned, Size: locker.SizeS, Items: []locker.Item{{Barcode: "H4"}},
		CodeHash: lockertest.Key.Hash("HOLDCODE3"), ExpiresAt: exp}
	cen := &central{answers: map[string]locker.HoldAnswer{
		"H1":    {OK: true, Order: held},
		"H2":    {OK: true, Order: joined},
		"FAR":   {Reason: "other_pickup", Message: "the hold on item FAR is for pickup at SOUTH"},
		"H4":    {Reason: "no_reader", Message: "scan the reader's card on the hold slip"},
		"H4/P2": {OK: true, Order: slip},
		"H8":    {Reason: "unavailable", Message: "the library system cannot be asked now"},
	}}
	c.L.SetHoldAsker(cen)
	notices, stop := c.L.SubscribeNotices()
	defer stop()

	if res := scan(t, c, "front", "H1"); res.Outcome == locker.OutcomeLoading {
		t.Fatalf("outside a staff session an item opens nothing: %+v", res)
	}
	scan(t, c, "front", badge)
	res := scan(t, c, "front", "H1")
	if res.Outcome != locker.OutcomeLoading || res.OrderID != "H-1" || len(res.Compartments) != 1 {
		t.Fatalf("held item: %+v", res)
	}
	door := res.Compartments[0]
	if res := scan(t, c, "front", "H2"); res.Outcome != locker.OutcomeLoading || res.Compartments[0] != door {
		t.Fatalf("the same reader's next item, door still open: %+v (want %s again)", res, door)
	}
	if n := len(c.HW.Pulses()); n != 1 {
		t.Fatalf("%d pulses: the open door is not pulsed again", n)
	}
	closeDoor(t, c, door)
	c.WaitEvent(t, locker.EvOrderLoaded, map[string]any{"order_id": "H-1", "compartment": door})
	if o := order(t, c, "H-1"); o.State != locker.OrderReady || len(o.Items) != 2 {
		t.Fatalf("order after loading: %+v", o)
	}

	if res := scan(t, c, "front", "FAR"); res.Outcome != locker.OutcomeNothing || res.Reason != "other_pickup" || res.Message == "" {
		t.Fatalf("a hold for elsewhere: %+v", res)
	}
	waitNotice(t, notices, func(n locker.Notice) bool {
		return n.Type == locker.NoticeHold && n.Data["reason"] == "other_pickup" && n.Data["item"] == "FAR"
	})

	if res := scan(t, c, "front", "H4"); res.Outcome != locker.OutcomeCardNeeded {
		t.Fatalf("no reader named: %+v", res)
	}
	res = scan(t, c, "front", "P2") // the card on the hold slip
	if res.Outcome != locker.OutcomeLoading || res.OrderID != "H-3" {
		t.Fatalf("the slip's card: %+v", res)
	}
	if last := cen.asked[len(cen.asked)-1]; last.Item != "H4" || last.Card != "P2" || last.By == "" || last.Visit == "" {
		t.Fatalf("asked %+v", last)
	}
	closeDoor(t, c, res.Compartments[0])
	c.WaitEvent(t, locker.EvOrderLoaded, map[string]any{"order_id": "H-3"})

	if res := scan(t, c, "front", "H8"); res.Outcome != locker.OutcomeQueued {
		t.Fatalf("the library system down behind the central: %+v", res)
	}
	c.WaitEvent(t, locker.EvHoldScanQueued, map[string]any{"item": "H8"})
	cen.mu.Lock()
	cen.down = true
	cen.mu.Unlock()
	if res := scan(t, c, "front", "H9"); res.Outcome != locker.OutcomeQueued {
		t.Fatalf("offline: %+v", res)
	}
	c.WaitEvent(t, locker.EvHoldScanQueued, map[string]any{"item": "H9"})
	if n := len(c.HW.Pulses()); n != 2 {
		t.Fatalf("%d pulses: a refused or queued scan opens nothing", n)
	}
	// Garbage is not sent to the central.
	before := len(cen.asked)
	scan(t, c, "front", string(make([]byte, 200)))
	if len(cen.asked) != before {
		t.Fatal("an over-long scan was sent to the central")
	}
}

func waitNotice(t *testing.T, ch <-chan locker.Notice, ok func(locker.Notice) bool) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case n := <-ch:
			if ok(n) {
				return
			}
		case <-timeout:
			t.Fatal("notice not seen")
		}
	}
}
