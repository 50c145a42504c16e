package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/lockerd/lockerd/drivers/serialscan/serialtest"
	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/locker/httpapi"
	"github.com/lockerd/lockerd/locker/lockertest"
	"github.com/lockerd/lockerd/sync/brokertest"
	"github.com/lockerd/lockerd/sync/hub"
	"github.com/lockerd/lockerd/sync/hub/alarm"
	"github.com/lockerd/lockerd/sync/protocol"
)

// centralAndCabinet runs Mosquitto, a hub and a cabinet config (opts
// applied) synced through it.
func centralAndCabinet(t *testing.T, opts ...func(*cabinet)) (*central, *cabinet) {
	t.Helper()
	mq := brokertest.StartMosquitto(t, brokertest.MosquittoOptions{})
	key, _ := newKey(t)
	hubC := startCentral(t, mq.URL, key, nil, "lockerhub")
	return hubC, newCabinet(t, "0s", append([]func(*cabinet){withMQTT(mq.URL, hubC.Pub, "")}, opts...)...)
}

// TestOneCodeOpensEveryOrder: the central gives a reader's second order
// the code of the first; one scan opens both compartments at once, one
// pickup.completed each, and the kiosk shows both doors open. Another
// reader's order never shares a code.
func TestOneCodeOpensEveryOrder(t *testing.T) {
	hubC, c := centralAndCabinet(t)
	d := start(t, c.Config)
	first, err := hubC.CreateOrder(hub.NewOrder{Locker: lockerID, Patron: "P1001", Size: "S"})
	if err != nil {
		t.Fatal(err)
	}
	second, err := hubC.CreateOrder(hub.NewOrder{Locker: lockerID, Patron: "P1001", Size: "M", SameCodeAs: first.Order.ID})
	if err != nil {
		t.Fatal(err)
	}
	if second.Code != "" || second.Order.CodeHash != first.Order.CodeHash {
		t.Fatalf("the second order got its own code: %+v", second)
	}
	if _, err := hubC.CreateOrder(hub.NewOrder{Locker: lockerID, Patron: "P2002", SameCodeAs: first.Order.ID}); err == nil || !strings.Contains(err.Error(), "same reader") {
		t.Fatalf("another reader's order took the code: %v", err)
	}
	until(t, "orders at the locker", func() bool { li, _ := hubC.Locker(lockerID); return li.OrdersRev >= 2 })
	compA := loadOrder(t, d, first.Order.ID)
	compB := loadOrder(t, d, second.Order.ID)

	res := d.scan("front", first.Code)
	if res.Outcome != locker.OutcomeOpened || len(res.Orders) != 2 || len(res.Compartments) != 2 {
		t.Fatalf("one code, two orders: %+v", res)
	}
	want := []string{compA, compB}
	slices.Sort(want)
	if !slices.Equal(res.Compartments, want) {
		t.Fatalf("opened %v, want %v", res.Compartments, want)
	}
	for _, id := range []string{first.Order.ID, second.Order.ID} {
		d.waitEvent(locker.EvPickupCompleted, map[string]any{"order_id": id, "via": "scan"})
	}
	if st := d.kioskState(); !st.Doors[compA] || !st.Doors[compB] {
		t.Fatalf("the kiosk does not show both doors open: %+v", st.Doors)
	}
	until(t, "the central has both picked up", func() bool {
		orders, _ := hubC.Orders(lockerID)
		n := 0
		for _, o := range orders {
			if o.Status == "picked_up" {
				n++
			}
		}
		return n == 2
	})
	// The reader forgot a book: within the grace the code opens both
	// again (the doors were closed, nobody reused them).
	d.sim("close", compA)
	d.sim("close", compB)
	if res := d.scan("front", first.Code); res.Outcome != locker.OutcomeOpened || res.Reason != "reopen" || len(res.Compartments) != 2 {
		t.Fatalf("reopen within the grace: %+v", res)
	}
}

// TestBadgesAndRoles: named badges from the config and from the central.
// A volunteer's badge opens every ready delivery order (and nothing
// else), recorded with its name; a technician may open a door for
// maintenance and take a compartment out of service, never load an
// order; staff loads are recorded with the badge's name. The central
// adds a badge, and revokes one: it opens nothing from then on, and the
// session it held ends.
func TestBadgesAndRoles(t *testing.T) {
	const volunteer, technician = "VOLUNTEER42", "TECHNIC77"
	hubC, c := centralAndCabinet(t, func(c *cabinet) {
		c.Badges = []locker.Badge{
			{Name: "Li (community volunteer)", Hash: lockertest.Key.Hash(volunteer), Role: locker.RoleVolunteer},
			{Name: "Wang (technician)", Hash: lockertest.Key.Hash(technician), Role: locker.RoleTechnician},
		}
	})
	d := start(t, c.Config)
	delivery, err := hubC.CreateOrder(hub.NewOrder{Locker: lockerID, Size: "S", Delivery: true})
	if err != nil {
		t.Fatal(err)
	}
	ordinary, err := hubC.CreateOrder(hub.NewOrder{Locker: lockerID, Size: "S"})
	if err != nil {
		t.Fatal(err)
	}
	until(t, "orders at the locker", func() bool { li, _ := hubC.Locker(lockerID); return li.OrdersRev >= 2 })

	// A technician handles no order.
	if res := d.scan("keypad", technician); res.Outcome != locker.OutcomeStaffOn || res.Reason != "technician" {
		t.Fatalf("technician badge: %+v", res)
	}
	if res := d.scan("keypad", delivery.Order.ID); res.Outcome != locker.OutcomeNothing || !strings.Contains(res.Reason, "technician badge handles no orders") {
		t.Fatalf("a technician loading an order: %+v", res)
	}
	if res := d.scan("keypad", locker.StaffCmdRetrieve); res.Outcome != locker.OutcomeNothing || !strings.Contains(res.Reason, "not allowed") {
		t.Fatalf("a technician's retrieval round: %+v", res)
	}
	if res := d.scan("keypad", "MAINT-c01"); res.Outcome != locker.OutcomeMaintOpen {
		t.Fatalf("a technician's maintenance open: %+v", res)
	}
	d.waitEvent(locker.EvMaintenanceOpen, map[string]any{"compartment": "C01", "by": "Wang (technician)"})
	d.sim("close", "C01")
	if res := d.scan("keypad", "OOS-B02"); res.Compartments == nil || res.Reason != "out of service" {
		t.Fatalf("out of service: %+v", res)
	}
	d.waitEvent(locker.EvCompartmentService, map[string]any{"compartment": "B02", "in_service": false, "by": "Wang (technician)"})
	d.scan("keypad", "INS-B02")
	d.waitEvent(locker.EvCompartmentService, map[string]any{"compartment": "B02", "in_service": true})
	d.scan("keypad", technician)

	// Staff loads record the badge's name.
	compD := loadOrder(t, d, delivery.Order.ID)
	d.waitEvent(locker.EvOrderLoaded, map[string]any{"order_id": delivery.Order.ID, "by": "staff #1"})
	compO := loadOrder(t, d, ordinary.Order.ID)

	// The volunteer collects the delivery order, not the reader's own.
	res := d.scan("front", volunteer)
	if res.Outcome != locker.OutcomeOpened || !slices.Equal(res.Compartments, []string{compD}) {
		t.Fatalf("volunteer badge: %+v (delivery in %s, ordinary in %s)", res, compD, compO)
	}
	d.waitEvent(locker.EvPickupCompleted, map[string]any{"order_id": delivery.Order.ID, "via": "badge", "by": "Li (community volunteer)"})
	d.sim("close", compD)
	if res := d.scan("front", volunteer); res.Outcome != locker.OutcomeNothing {
		t.Fatalf("volunteer badge with nothing to collect: %+v", res)
	}
	if d.compartment(compO).State != locker.CompLoaded {
		t.Fatalf("the ordinary order's compartment: %+v", d.compartment(compO))
	}

	// The central adds a staff badge, and revokes the technician's while
	// its session is on.
	const newStaff = "NEWSTAFF9"
	if _, err := hubC.Badges(lockerID, protocol.CmdBadges{Add: []protocol.BadgeSpec{{Name: "Zhao (staff)", Hash: lockertest.Key.Hash(newStaff), Role: "staff"}}}); err != nil {
		t.Fatal(err)
	}
	until(t, "the new badge at the locker", func() bool {
		var bs []locker.Badge
		d.call("GET", "/v1/badges", nil, &bs)
		return slices.ContainsFunc(bs, func(b locker.Badge) bool { return b.Name == "Zhao (staff)" && !b.Revoked })
	})
	if res := d.scan("keypad", newStaff); res.Outcome != locker.OutcomeStaffOn || res.Reason != "staff" {
		t.Fatalf("the central's new badge: %+v", res)
	}
	d.scan("keypad", newStaff)
	if res := d.scan("front", technician); res.Outcome != locker.OutcomeStaffOn {
		t.Fatalf("technician: %+v", res)
	}
	cmdID, err := hubC.Badges(lockerID, protocol.CmdBadges{Revoke: []protocol.BadgeRef{{Name: "Wang (technician)"}}})
	if err != nil {
		t.Fatal(err)
	}
	until(t, "the revocation answered", func() bool { rec, _ := hubC.Command(cmdID); return rec.Status == protocol.CmdDone })
	if st := d.status(); slices.Contains(st.StaffOn, "front") {
		t.Fatalf("the revoked badge's session goes on: %+v", st.StaffOn)
	}
	if res := d.scan("front", technician); res.Outcome != locker.OutcomeDenied || res.Reason != locker.DenyUnknown {
		t.Fatalf("a revoked badge: %+v", res)
	}
	// A restart reads the config (which still lists the badge): the
	// central's revocation stands.
	d.stop()
	d = start(t, c.Config)
	if res := d.scan("front", technician); res.Outcome != locker.OutcomeDenied {
		t.Fatalf("a revoked badge after a restart: %+v", res)
	}
}

// TestItemSensors runs on lock boards (the item-present channels B1/In):
// a load that leaves the compartment empty is reported; a reader who
// leaves a book inside is told, may scan again within the grace, and the
// compartment is not given to another order while the book lies there;
// a retrieval that leaves something behind is reported.
func TestItemSensors(t *testing.T) {
	hubC, c := centralAndCabinet(t, func(c *cabinet) { c.ItemSensors = true })
	boards := onLockBoards(t, c)
	serialtest.Plug(t, c.Front)
	serialtest.Plug(t, c.Returns)
	d := start(t, c.Config)
	channel := map[string]int{"A01": 1, "A02": 2, "A03": 3, "B01": 4, "B02": 5, "C01": 6}

	// A load with nothing put in.
	rep := d.addOrder(httpapi.AddOrderRequest{Size: "S", Assigned: true})
	if res := d.scan("keypad", staffBadge); res.Outcome != locker.OutcomeStaffOn {
		t.Fatalf("badge: %+v", res)
	}
	res := d.scan("keypad", rep.Order.ID)
	if res.Outcome != locker.OutcomeLoading {
		t.Fatalf("load: %+v", res)
	}
	empty := res.Compartments[0]
	boards.SetDoor(1, channel[empty], false)
	d.waitEvent(locker.EvLoadEmpty, map[string]any{"order_id": rep.Order.ID, "compartment": empty})
	until(t, "the central's alarm", func() bool {
		as, _ := hubC.OpenAlarms()
		return slices.ContainsFunc(as, func(a alarm.Alarm) bool { return a.Type == alarm.Items && a.Compartment == empty })
	})

	// A load with the books in, then a pickup that leaves one behind.
	rep2 := d.addOrder(httpapi.AddOrderRequest{Size: "M", Assigned: true})
	res = d.scan("keypad", rep2.Order.ID)
	if res.Outcome != locker.OutcomeLoading {
		t.Fatalf("load: %+v", res)
	}
	comp := res.Compartments[0]
	boards.SetItem(1, channel[comp], true)
	boards.SetDoor(1, channel[comp], false)
	d.waitEvent(locker.EvOrderLoaded, map[string]any{"order_id": rep2.Order.ID})
	d.scan("keypad", staffBadge)
	if d.count(locker.EvLoadEmpty, map[string]any{"order_id": rep2.Order.ID}) != 0 {
		t.Fatal("load.empty for a load with its books inside")
	}
	if res := d.scan("keypad", rep2.Code); res.Outcome != locker.OutcomeOpened {
		t.Fatalf("pickup: %+v", res)
	}
	boards.SetDoor(1, channel[comp], false)
	d.waitEvent(locker.EvPickupItemsLeft, map[string]any{"order_id": rep2.Order.ID, "compartment": comp})
	// While the book lies there, the compartment is not loaded again.
	rep3 := d.addOrder(httpapi.AddOrderRequest{Size: "M", Assigned: true})
	d.scan("keypad", staffBadge)
	if res := d.scan("keypad", rep3.Order.ID); res.Outcome == locker.OutcomeLoading && res.Compartments[0] == comp {
		t.Fatalf("a compartment with a book left inside was loaded again: %+v", res)
	} else if res.Outcome == locker.OutcomeLoading {
		boards.SetItem(1, channel[res.Compartments[0]], true)
		boards.SetDoor(1, channel[res.Compartments[0]], false)
		d.waitEvent(locker.EvOrderLoaded, map[string]any{"order_id": rep3.Order.ID})
	}
	d.scan("keypad", staffBadge)
	// The reader scans again within the grace and takes it.
	if res := d.scan("keypad", rep2.Code); res.Outcome != locker.OutcomeOpened || res.Reason != "reopen" {
		t.Fatalf("reopen for the book left inside: %+v", res)
	}
	boards.SetItem(1, channel[comp], false)
	boards.SetDoor(1, channel[comp], false)
	d.waitCount(locker.EvDoorClosed, map[string]any{"compartment": comp}, 3)
	if n := d.count(locker.EvPickupItemsLeft, map[string]any{"order_id": rep2.Order.ID}); n != 1 {
		t.Fatalf("%d pickup.items_left, want the one", n)
	}

	// The central cancels a loaded order; staff retrieve it but leave a
	// book behind.
	cr, err := hubC.CreateOrder(hub.NewOrder{Locker: lockerID, Size: "L"})
	if err != nil {
		t.Fatal(err)
	}
	until(t, "the order at the locker", func() bool { li, _ := hubC.Locker(lockerID); return li.OrdersRev >= 1 })
	d.scan("keypad", staffBadge)
	res = d.scan("keypad", cr.Order.ID)
	if res.Outcome != locker.OutcomeLoading {
		t.Fatalf("load: %+v", res)
	}
	big := res.Compartments[0]
	boards.SetItem(1, channel[big], true)
	boards.SetDoor(1, channel[big], false)
	d.waitEvent(locker.EvOrderLoaded, map[string]any{"order_id": cr.Order.ID})
	if _, err := hubC.CancelOrder(lockerID, cr.Order.ID); err != nil {
		t.Fatal(err)
	}
	until(t, "the cancel at the locker", func() bool { li, _ := hubC.Locker(lockerID); return li.OrdersRev >= 2 })
	if res := d.scan("keypad", locker.StaffCmdRetrieve); res.Outcome != locker.OutcomeRetrieving || res.Compartments[0] != big {
		t.Fatalf("retrieve: %+v", res)
	}
	boards.SetDoor(1, channel[big], false)
	d.waitEvent(locker.EvOrderRetrieved, map[string]any{"order_id": cr.Order.ID})
	d.waitEvent(locker.EvRetrieveItemsLeft, map[string]any{"order_id": cr.Order.ID, "compartment": big})
}

// TestReturnBinEmptied: staff empty the return bin through its service
// door; its closing records what was returned since the last emptying,
// the bin-full state and the central's alarm clear, and the staff view
// lists what was collected. A bin still full after the emptying keeps
// its alarm.
func TestReturnBinEmptied(t *testing.T) {
	hubC, c := centralAndCabinet(t, func(c *cabinet) { c.BinService = true })
	d := start(t, c.Config)
	for _, bc := range []string{"30012345678", "30012345679"} {
		if res := d.scan("returns", bc); res.Outcome != locker.OutcomeReturned {
			t.Fatalf("return %s: %+v", bc, res)
		}
		d.sim("close", locker.ReturnSlotID)
		d.waitEvent(locker.EvItemReturned, map[string]any{"barcode": bc})
	}
	d.sim("bin-full", "")
	d.waitEvent(locker.EvReturnBinFull, map[string]any{"source": "sensor"})
	until(t, "the bin alarm", func() bool {
		as, _ := hubC.OpenAlarms()
		return slices.ContainsFunc(as, func(a alarm.Alarm) bool { return a.Type == alarm.ReturnBinFull })
	})
	if res := d.scan("returns", "30012345670"); res.Outcome != locker.OutcomeRefused {
		t.Fatalf("a return into a full bin: %+v", res)
	}

	if res := d.scan("keypad", staffBadge); res.Outcome != locker.OutcomeStaffOn {
		t.Fatalf("badge: %+v", res)
	}
	if st := d.kioskState(); st.Bin == nil || st.Bin.Count != 2 {
		t.Fatalf("staff view of the bin: %+v", st.Bin)
	}
	if res := d.scan("keypad", locker.StaffCmdEmptyBin); res.Outcome != locker.OutcomeBinOpen {
		t.Fatalf("empty the bin: %+v", res)
	}
	d.waitEvent(locker.EvDoorOpened, map[string]any{"compartment": locker.ReturnBinID, "commanded": true})
	d.sim("bin-empty", "")
	d.sim("close", locker.ReturnBinID)
	e := d.waitEvent(locker.EvReturnBinEmptied, map[string]any{"count": 2.0, "by": "staff #1"})
	if items := e.Fields()["items"].([]any); len(items) != 2 || items[0] != "30012345678" {
		t.Fatalf("emptied: %+v", e.Fields())
	}
	if st := d.kioskState(); st.Bin == nil || st.Bin.Count != 0 || st.Bin.LastEmptied == nil || len(st.Bin.LastEmptied.Items) != 2 {
		t.Fatalf("staff view after the emptying: %+v", st.Bin)
	}
	until(t, "the bin alarm cleared", func() bool {
		as, _ := hubC.OpenAlarms()
		return !slices.ContainsFunc(as, func(a alarm.Alarm) bool { return a.Type == alarm.ReturnBinFull })
	})
	if res := d.scan("returns", "30012345670"); res.Outcome != locker.OutcomeReturned {
		t.Fatalf("a return after the emptying: %+v", res)
	}
	d.sim("close", locker.ReturnSlotID)

	// Emptied, but the sensor still reads full: the alarm stands.
	d.sim("bin-full", "")
	d.waitCount(locker.EvReturnBinFull, map[string]any{"source": "sensor"}, 2)
	if res := d.scan("keypad", locker.StaffCmdEmptyBin); res.Outcome != locker.OutcomeBinOpen {
		t.Fatalf("empty the bin again: %+v", res)
	}
	d.sim("close", locker.ReturnBinID)
	d.waitEvent(locker.EvReturnBinEmptied, map[string]any{"count": 1.0, "still_full": true})
	d.waitEvent(locker.EvReturnBinFull, map[string]any{"source": "after_emptying"})
	if res := d.scan("returns", "30012345671"); res.Outcome != locker.OutcomeRefused {
		t.Fatalf("a return into a bin still full: %+v", res)
	}
}
