package main

import (
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lockerd/lockerd/cmd/internal/hubproc"
	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/locker/lockertest"
	"github.com/lockerd/lockerd/sync/brokertest"
	"github.com/lockerd/lockerd/sync/hub"
	"github.com/lockerd/lockerd/sync/hub/circulation"
	"github.com/lockerd/lockerd/sync/hub/hubclient"
	"github.com/lockerd/lockerd/sync/protocol"
	"github.com/lockerd/lockerd/sync/sip2"
	"github.com/lockerd/lockerd/sync/sip2/sip2test"
)

// TestCirculationEndToEnd: the real lockerd and lockerhub binaries, a
// real broker and a fake ILS speaking SIP2. Orders for two readers are
// loaded and picked up, and books returned, while (a) everything is up,
// (b) the ILS is down, (c) the locker is cut off from the broker, and
// (d) lockerhub is SIGKILLed while a checkout is on the wire. When all is
// back, every checkout and checkin has reached the ILS exactly once (the
// fake counts), with the event's time and no-block where due; a blocked
// reader's loan is a refusal and a book on hold elsewhere an exception.
func TestCirculationEndToEnd(t *testing.T) {
	mq := brokertest.StartMosquitto(t, brokertest.MosquittoOptions{})
	ils := sip2test.Start(t,
		[]sip2test.Patron{{ID: "P1", Name: "Li Wei"}, {ID: "P2", Name: "Zhang Min"}, {ID: "PX", Blocked: true}},
		[]sip2test.Item{{Barcode: "39000001", Title: "西游记"}, {Barcode: "39000002"}, {Barcode: "39000003"}, {Barcode: "39000004"}, {Barcode: "39000005"}, {Barcode: "39000006"},
			{Barcode: "39000099", Alert: "02", Screen: "Hold for North branch"}})

	dir := t.TempDir()
	key, pub := newKey(t)
	os.WriteFile(filepath.Join(dir, "central.key"), []byte(hex.EncodeToString(key.Seed())+"\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "pickup.key"), []byte(hex.EncodeToString(lockertest.Key)+"\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "sip2.pw"), []byte("secret\n"), 0o600)
	addr := fmt.Sprintf("127.0.0.1:%d", brokertest.FreePort(t))
	conf := filepath.Join(dir, "lockerhub.yaml")
	os.WriteFile(conf, []byte(fmt.Sprintf(`store: {path: hub.db}
http: {listen: %q}
mqtt: {broker: %q}
keys: {signing_key_file: central.key, pickup_key_file: pickup.key}
lockers: [%s]
sip2:
  address: %q
  user: locker
  password_file: sip2.pw
  institution: FAKE
  location: COMMUNITY-3
  timeout: 2s
  heartbeat: 5s
  locations: {%s: COMMUNITY-3}
`, addr, mq.URL, lockerID, ils.Addr, lockerID)), 0o600)
	bin := hubproc.Build(t)
	hp := hubproc.New(t, "lockerhub", bin, conf, addr, filepath.Join(dir, "lockerhub.log"))
	hp.Start()
	api := hubclient.New(addr)
	api.Token = hp.Token()

	c := newCabinet(t, "0s", withMQTT(mq.URL, pub, ""))
	d := start(t, c.Config)
	lockerInfo := func() hub.LockerInfo {
		ls, _ := api.Lockers()
		for _, l := range ls {
			if l.ID == lockerID {
				return l
			}
		}
		return hub.LockerInfo{}
	}
	until(t, "locker online at the hub", func() bool { return lockerInfo().Online })

	type order struct{ id, code string }
	place := func(patron string, items ...string) order {
		t.Helper()
		var its []protocol.Item
		for _, it := range items {
			its = append(its, protocol.Item{Barcode: it})
		}
		cr, err := api.CreateOrder(hub.NewOrder{Locker: lockerID, Patron: patron, Items: its})
		if err != nil {
			t.Fatal(err)
		}
		until(t, "order "+cr.Order.ID+" at the locker", func() bool { return lockerInfo().OrdersRev >= cr.Order.Rev })
		loadOrder(t, d, cr.Order.ID)
		return order{cr.Order.ID, cr.Code}
	}
	pickUp := func(o order) locker.Event {
		t.Helper()
		res := d.scan("keypad", o.code)
		if res.Outcome != locker.OutcomeOpened {
			t.Fatalf("pickup of %s: %+v", o.id, res)
		}
		e := d.waitEvent(locker.EvPickupCompleted, map[string]any{"order_id": o.id})
		d.sim("close", res.Compartments[0])
		return e
	}
	giveBack := func(barcode string) {
		t.Helper()
		if res := d.scan("returns", barcode); res.Outcome != locker.OutcomeReturned {
			t.Fatalf("return of %s: %+v", barcode, res)
		}
	}
	circ := func(state string) []circulation.CircRec {
		cs, err := api.Circulation(circulation.CircFilter{State: state})
		if err != nil {
			t.Fatal(err)
		}
		return cs
	}
	find := func(item, code string) sip2test.Transaction {
		for _, tr := range ils.Transactions() {
			if tr.Item == item && tr.Code == code {
				return tr
			}
		}
		t.Fatalf("the ILS never got %s for %s", code, item)
		return sip2test.Transaction{}
	}

	// (a) Online.
	o1 := place("P1", "39000001", "39000002")
	pickUp(o1)
	giveBack("39000001")
	until(t, "O1's loans and B1's return at the ILS", func() bool {
		return ils.Checkouts("P1", "39000001") == 1 && ils.Checkouts("P1", "39000002") == 1 && ils.Checkins("39000001") == 1
	})
	if tr := find("39000001", "09"); tr.Location != "COMMUNITY-3" {
		t.Fatalf("checkin's location %q", tr.Location)
	}

	// (b) The ILS is down: the locker goes on, the hub queues.
	ils.Down()
	o2 := place("P2", "39000003")
	pickUp(o2)
	giveBack("39000099")
	until(t, "queued while the ILS is down", func() bool { return len(circ(circulation.CircQueued)) == 2 })
	if err := ils.Up(); err != nil {
		t.Fatal(err)
	}
	until(t, "the queue drained into the ILS", func() bool { return ils.Checkouts("P2", "39000003") == 1 && ils.Checkins("39000099") == 1 })
	if tr := find("39000003", "11"); !tr.NoBlock {
		t.Fatalf("a loan recorded while the ILS was down went without no-block: %+v", tr)
	}

	// (c) The locker is offline from the broker.
	o3 := place("P1", "39000004")
	o4 := place("PX", "39000005")
	mq.Stop()
	e3 := pickUp(o3)
	pickUp(o4)
	giveBack("39000002")
	mq.Start()
	until(t, "the locker's replay reached the ILS", func() bool {
		return ils.Checkouts("P1", "39000004") == 1 && ils.Checkins("39000002") == 1 && len(circ(circulation.CircRefused)) == 1
	})
	if tr := find("39000004", "11"); !tr.NoBlock || tr.Date != sip2.FormatDate(e3.TS) {
		t.Fatalf("an offline pickup's loan: %+v, want no-block and the event's time %s", tr, sip2.FormatDate(e3.TS))
	}

	// (d) lockerhub is killed with a checkout on the wire.
	o5 := place("P2", "39000006")
	ils.SetFaults(sip2test.Faults{Delay: 3e9})
	pickUp(o5)
	until(t, "B6's checkout sending", func() bool {
		for _, c := range circ(circulation.CircSending) {
			if c.Item == "39000006" {
				return true
			}
		}
		return false
	})
	hp.Kill()
	until(t, "the ILS acted on the checkout whose reply nobody read", func() bool { return ils.Checkouts("P2", "39000006") == 1 })
	ils.SetFaults(sip2test.Faults{})
	hp.Start()
	until(t, "B6's checkout done after the restart", func() bool {
		for _, c := range circ(circulation.CircDone) {
			if c.Item == "39000006" {
				return true
			}
		}
		return false
	})

	// Exactly once, everything.
	for _, pi := range [][2]string{{"P1", "39000001"}, {"P1", "39000002"}, {"P2", "39000003"}, {"P1", "39000004"}, {"P2", "39000006"}} {
		if n := ils.Checkouts(pi[0], pi[1]); n != 1 {
			t.Errorf("%s checked out to %s %d times", pi[1], pi[0], n)
		}
	}
	for _, item := range []string{"39000001", "39000099", "39000002"} {
		if n := ils.Checkins(item); n != 1 {
			t.Errorf("%s checked in %d times", item, n)
		}
	}
	if r := circ(circulation.CircRefused); len(r) != 1 || r[0].Patron != "PX" || r[0].Screen != "Patron blocked" {
		t.Fatalf("refusals: %+v", r)
	}
	ex := circ(circulation.CircException)
	if len(ex) != 1 || ex[0].Item != "39000099" || ex[0].AlertType != "02" {
		t.Fatalf("exceptions: %+v", ex)
	}
	orders, err := api.Orders(lockerID)
	if err != nil {
		t.Fatal(err)
	}
	if o := orders[0]; o.ID != o1.id || len(o.Loans) != 2 || !o.Loans[0].OK || o.Loans[0].Due == "" {
		t.Fatalf("O1's loans: %+v", o.Loans)
	}
	// What the staff see.
	tokenFile := filepath.Join(dir, "admin.token")
	out, err := exec.Command(bin, "-hub", addr, "-token-file", tokenFile, "circ", "list", "--state", "exception").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "39000099") || !strings.Contains(string(out), "Hold for North branch") {
		t.Fatalf("circ list: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "-hub", addr, "-token-file", tokenFile, "circ", "resolve", fmt.Sprint(ex[0].ID), "--note", "sent to North").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "resolved") {
		t.Fatalf("circ resolve: %v\n%s", err, out)
	}
}
