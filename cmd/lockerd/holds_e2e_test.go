package main

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/sync/brokertest"
	"github.com/lockerd/lockerd/sync/hub"
	"github.com/lockerd/lockerd/sync/hub/circulation"
	"github.com/lockerd/lockerd/sync/protocol"
	"github.com/lockerd/lockerd/sync/sip2/sip2test"
)

// TestHoldToPickupInABrowser: the library system's holds become a locker
// order at a staff scan, and the reader takes the books home. A fake ILS
// holds two books for a reader at this locker's pickup point and one for
// another pickup point. Staff badge in, scan the first: the central asks
// the ILS (SIP2 17, 63), makes the order, and the door opens for loading;
// the second book of the same reader goes in through the same door; the
// third is refused with its reason. Door closed: the reader's e-mail
// (a real SMTP server) has the code and the page's link; the page, in
// headless Chromium, shows the order ready with its QR code; the code at
// the locker opens the door; both loans reach the ILS (11 Checkout, each
// once); the page says picked up. With the ILS down, a scan is queued and
// becomes an order when it is back.
func TestHoldToPickupInABrowser(t *testing.T) {
	mq := brokertest.StartMosquitto(t, brokertest.MosquittoOptions{})
	ils := sip2test.Start(t, []sip2test.Patron{{ID: "21000001", PIN: "1234", Name: "Li Wei", Email: "li.wei@example.org", Language: "019"},
		{ID: "21000002", Name: "Zhang Min", Email: "zhang@example.org"}},
		[]sip2test.Item{{Barcode: "39001234", Title: "三体", HoldFor: "21000001", Pickup: "GULOU"},
			{Barcode: "39001235", Title: "活着", HoldFor: "21000001", Pickup: "GULOU"},
			{Barcode: "39009999", Title: "围城", HoldFor: "21000002", Pickup: "SOUTH"},
			{Barcode: "39005555", Title: "边城", HoldFor: "21000002", Pickup: "GULOU"}})
	session := startSession(t, ils.Addr)
	key, pub := newKey(t)
	h, mail, _ := startReaderSide(t, hub.Config{Brokers: []string{mq.URL}, SigningKey: key,
		Circulation: circulation.Circulation{ILS: session, Locations: map[string]string{lockerID: "GULOU"}}}, session)

	c := newCabinet(t, "0s", withMQTT(mq.URL, pub, ""))
	d := start(t, c.Config)
	until(t, "locker online", func() bool { li, _ := h.Locker(lockerID); return li.Online })
	until(t, "the ILS session up", func() bool { return session.State().Up })

	// Staff at the cabinet with the books from the hold shelf.
	scanned := time.Now()
	if res := d.scan("keypad", staffBadge); res.Outcome != locker.OutcomeStaffOn {
		t.Fatalf("badge: %+v", res)
	}
	first := d.scan("keypad", "39001234")
	if first.Outcome != locker.OutcomeLoading || len(first.Compartments) != 1 {
		t.Fatalf("the first held book: %+v", first)
	}
	door := first.Compartments[0]
	if res := d.scan("keypad", "39001235"); res.Outcome != locker.OutcomeLoading || res.OrderID != first.OrderID || res.Compartments[0] != door {
		t.Fatalf("the same reader's second book, the door still open: %+v (want %s, %s)", res, first.OrderID, door)
	}
	if res := d.scan("keypad", "39009999"); res.Outcome != locker.OutcomeNothing || res.Reason != protocol.HoldElsewhere || !strings.Contains(res.Message, "SOUTH") {
		t.Fatalf("a hold for another pickup point: %+v", res)
	}
	if res := d.scan("keypad", "NOSUCHITEM"); res.Reason != protocol.HoldUnknownItem {
		t.Fatalf("an unknown item: %+v", res)
	}
	d.sim("close", door)
	d.waitEvent(locker.EvOrderLoaded, map[string]any{"order_id": first.OrderID, "compartment": door})
	d.scan("keypad", staffBadge)

	o, found, err := h.Order(lockerID, first.OrderID)
	if err != nil || !found || o.Patron != "21000001" || len(o.Items) != 2 || o.Contact.Email != "li.wei@example.org" || o.Contact.Lang != "zh" {
		t.Fatalf("the order made for the hold: %+v", o)
	}
	refused, _ := h.Circulation(circulation.CircFilter{State: circulation.CircRefused})
	if len(refused) != 2 || refused[0].Kind != circulation.CircHold || refused[0].Item != "39009999" || refused[0].LastError != protocol.HoldElsewhere {
		t.Fatalf("the refusals for the console: %+v", refused)
	}

	untilWithin(t, "the e-mail", 30*time.Second, func() bool { return len(mail.Mails()) == 1 })
	toldIn := time.Since(scanned)
	m := mail.Mails()[0]
	body := string(m.Data)
	code := regexp.MustCompile(`取书码: (\S+)`).FindStringSubmatch(body)
	link := regexp.MustCompile(`查看订单: (http://\S+)`).FindStringSubmatch(body)
	if code == nil || link == nil || !strings.Contains(body, "三体") || m.To[0] != "li.wei@example.org" {
		t.Fatalf("the e-mail to %v:\n%s", m.To, body)
	}
	t.Logf("from the first scan to the e-mail received: %v", toldIn.Round(time.Millisecond))

	ctx, _ := browser(t, 390, 844)
	do(t, ctx, "the order page from the e-mail", chromedp.Navigate(link[1]+"?lang=en"), chromedp.WaitVisible(chromedp.CSS(".state.ready")))
	if txt := get(t, ctx, "the page's text", chromedp.Evaluate[string](`document.body.innerText`)); !strings.Contains(txt, "Ready: collect it") || !strings.Contains(txt, code[1]) {
		t.Fatalf("the page says:\n%s", txt)
	}
	if w := get(t, ctx, "the QR code drawn", chromedp.Evaluate[int](`document.querySelector('img.qr').naturalWidth`)); w < 100 {
		t.Fatalf("QR code %d pixels wide", w)
	}

	res := d.scan("keypad", code[1])
	if res.Outcome != locker.OutcomeOpened || res.Compartments[0] != door {
		t.Fatalf("the code from the e-mail at the locker: %+v", res)
	}
	d.sim("close", door)
	untilWithin(t, "both loans at the library system", 30*time.Second, func() bool {
		return ils.Checkouts("21000001", "39001234") == 1 && ils.Checkouts("21000001", "39001235") == 1
	})
	do(t, ctx, "the page again", chromedp.Navigate(link[1]+"?lang=en"), chromedp.WaitVisible(chromedp.CSS(".state.picked_up")))
	if txt := get(t, ctx, "the page's text", chromedp.Evaluate[string](`document.body.innerText`)); !strings.Contains(txt, "Picked up") || strings.Contains(txt, code[1]) {
		t.Fatalf("after the pickup the page says:\n%s", txt)
	}

	// The library system down: the scan is queued at the locker, and the
	// order comes down once the bridge can ask.
	ils.Down()
	d.scan("keypad", staffBadge)
	if res := d.scan("keypad", "39005555"); res.Outcome != locker.OutcomeQueued {
		t.Fatalf("a scan with the library system down: %+v", res)
	}
	d.waitEvent(locker.EvHoldScanQueued, map[string]any{"item": "39005555"})
	d.scan("keypad", staffBadge)
	if err := ils.Up(); err != nil {
		t.Fatal(err)
	}
	untilWithin(t, "the queued scan's order at the locker", 30*time.Second, func() bool {
		os, _ := h.Orders(lockerID)
		for _, o := range os {
			if len(o.Items) == 1 && o.Items[0].Barcode == "39005555" && o.Patron == "21000002" {
				li, _ := h.Locker(lockerID)
				return li.OrdersRev >= o.Rev
			}
		}
		return false
	})
}
