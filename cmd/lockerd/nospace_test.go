package main

import (
	"strings"
	"testing"

	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/sync/brokertest"
	"github.com/lockerd/lockerd/sync/hub"
	"github.com/lockerd/lockerd/sync/hub/alarm"
)

// TestLoadNoSpace: staff scan an order when no free compartment fits it
// (the one L compartment holds another order): the staff are told, the
// locker records load.no_space, and the central marks the order for
// redirection with an alarm.
func TestLoadNoSpace(t *testing.T) {
	mq := brokertest.StartMosquitto(t, brokertest.MosquittoOptions{})
	key, _ := newKey(t)
	hubC := startCentral(t, mq.URL, key, nil, "lockerhub")
	c := newCabinet(t, "0s", withMQTT(mq.URL, hubC.Pub, ""))
	d := start(t, c.Config)
	var ids []string
	for range 2 {
		cr, err := hubC.CreateOrder(hub.NewOrder{Locker: lockerID, Size: "L"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, cr.Order.ID)
	}
	until(t, "orders at the locker", func() bool { li, _ := hubC.Locker(lockerID); return li.OrdersRev >= 2 })
	if comp := loadOrder(t, d, ids[0]); comp != "C01" {
		t.Fatalf("the first L order went into %s", comp)
	}
	if res := d.scan("keypad", staffBadge); res.Outcome != locker.OutcomeStaffOn {
		t.Fatalf("badge: %+v", res)
	}
	res := d.scan("keypad", ids[1])
	if res.Outcome != locker.OutcomeNothing || !strings.Contains(res.Reason, "no free compartment fits size L") {
		t.Fatalf("loading the second L order: %+v", res)
	}
	d.waitEvent(locker.EvLoadNoSpace, map[string]any{"order_id": ids[1], "size": "L"})
	until(t, "the central marks the order and raises an alarm", func() bool {
		orders, _ := hubC.Orders(lockerID)
		marked := false
		for _, o := range orders {
			if o.ID == ids[1] && !o.NoSpace.IsZero() {
				marked = true
			}
		}
		as, _ := hubC.OpenAlarms()
		for _, a := range as {
			if marked && a.Type == alarm.NoSpace && strings.Contains(a.Detail, ids[1]) {
				return true
			}
		}
		return false
	})
}

// TestAccessibleLoading: an order marked accessible goes only into an
// accessible compartment; an ordinary order takes an ordinary one first;
// with no accessible compartment free, the staff are told and
// load.no_space says the order needs one.
func TestAccessibleLoading(t *testing.T) {
	mq := brokertest.StartMosquitto(t, brokertest.MosquittoOptions{})
	key, _ := newKey(t)
	hubC := startCentral(t, mq.URL, key, nil, "lockerhub")
	c := newCabinet(t, "0s", withMQTT(mq.URL, hubC.Pub, ""), func(c *cabinet) { c.AccessibleA03 = true })
	d := start(t, c.Config)
	place := func(accessible bool) string {
		cr, err := hubC.CreateOrder(hub.NewOrder{Locker: lockerID, Size: "S", Accessible: accessible})
		if err != nil {
			t.Fatal(err)
		}
		return cr.Order.ID
	}
	ordinary, wheelchair, second := place(false), place(true), place(true)
	until(t, "orders at the locker", func() bool { li, _ := hubC.Locker(lockerID); return li.OrdersRev >= 3 })
	if comp := loadOrder(t, d, ordinary); comp == "A03" {
		t.Fatal("an ordinary order took the accessible compartment while others were free")
	}
	if comp := loadOrder(t, d, wheelchair); comp != "A03" {
		t.Fatalf("the accessible order went into %s, not the accessible A03", comp)
	}
	if res := d.scan("keypad", staffBadge); res.Outcome != locker.OutcomeStaffOn {
		t.Fatalf("badge: %+v", res)
	}
	res := d.scan("keypad", second)
	if res.Outcome != locker.OutcomeNothing || !strings.Contains(res.Reason, "no free accessible compartment fits size S") {
		t.Fatalf("a second accessible order: %+v", res)
	}
	d.waitEvent(locker.EvLoadNoSpace, map[string]any{"order_id": second, "accessible": true})
}
