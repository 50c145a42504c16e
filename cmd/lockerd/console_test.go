package main

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/sync/brokertest"
	"github.com/lockerd/lockerd/sync/hub"
	"github.com/lockerd/lockerd/sync/hub/alarm"
	"github.com/lockerd/lockerd/sync/hub/auth"
	"github.com/lockerd/lockerd/sync/hub/console"
	"github.com/lockerd/lockerd/sync/protocol"
)

// TestConsoleInABrowser drives lockerhub's web console in headless
// Chromium against a real lockerd: sign in; the fleet shows the locker go
// offline and come back; a door forced at the locker raises an alarm that
// is acknowledged from the page; a remote open with a reason opens the
// sim door and lands in the audit log; a viewer has no open button and
// the API refuses them; a change without the CSRF token, or without a
// session, is refused. Screenshots of each screen with make screenshots.
func TestConsoleInABrowser(t *testing.T) {
	mq := brokertest.StartMosquitto(t, brokertest.MosquittoOptions{})
	key, _ := newKey(t)
	hubC := startCentral(t, mq.URL, key, nil, "lockerhub")
	for _, u := range [][3]string{{"staff-1", auth.RoleStaff, "password-staff"}, {"viewer-1", auth.RoleViewer, "password-viewer"}, {"admin-1", auth.RoleAdmin, "password-admin"}} {
		if _, err := hubC.Auth().AddUser(u[0], u[1], u[2]); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(console.New(console.ForHub(hubC.Hub), key.Seed(), false, nil).Handler())
	defer srv.Close()
	if _, err := hubC.CreateOrder(hub.NewOrder{Locker: lockerID, ID: "ORD-DEMO-1", Patron: "21000001"}); err != nil {
		t.Fatal(err)
	}
	if _, err := hubC.CreateOrder(hub.NewOrder{Locker: lockerID, ID: "ORD-HOME-1", Patron: "21000002", Delivery: true, Source: "reader",
		Address: "鼓楼区中山路 8 号 3 单元 501", Items: []protocol.Item{{Barcode: "39000001", Title: "围城"}}}); err != nil {
		t.Fatal(err)
	}
	c := newCabinet(t, "0s", withMQTT(mq.URL, hubC.Pub, ""))
	d := start(t, c.Config)
	until(t, "locker online with its compartments reported", func() bool {
		li, _ := hubC.Locker(lockerID)
		return li.Online && len(li.Telemetry) > 0
	})

	ctx, _ := browser(t, 1280, 800)
	signIn := func(user, pw string) {
		t.Helper()
		do(t, ctx, "sign-in page", chromedp.Navigate(srv.URL+"/console/#/fleet"), chromedp.WaitVisible(chromedp.CSS(`body[data-view="signin"] #signin-user`)))
		get(t, ctx, "empty sign-in form", chromedp.Evaluate[bool](`document.querySelector('#signin-form').reset(), true`))
		do(t, ctx, "sign in as "+user, chromedp.SendKeys(chromedp.CSS("#signin-user"), user), chromedp.SendKeys(chromedp.CSS("#signin-password"), pw),
			chromedp.Click(chromedp.CSS(`#signin-form button[type=submit]`)), chromedp.WaitVisible(chromedp.CSS(`tr[data-locker="e2e-01"]`)))
	}
	do(t, ctx, "sign-in page", chromedp.Navigate(srv.URL+"/console/"), chromedp.WaitVisible(chromedp.CSS("#signin-user")))
	shot(t, ctx, "console-signin")
	signIn("staff-1", "password-staff")
	do(t, ctx, "fleet: online", chromedp.WaitVisible(chromedp.CSS(`tr[data-locker="e2e-01"][data-online="true"]`)))
	// Every control has a name a screen reader can say.
	unnamed := get(t, ctx, "controls without a label", chromedp.Evaluate[[]string](`[...document.querySelectorAll('input, select, button')]
		.filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim())
		.map(e => e.id || e.outerHTML.slice(0, 60))`))
	if len(unnamed) > 0 {
		t.Fatalf("controls without a label: %v", unnamed)
	}
	shot(t, ctx, "console-fleet")

	// The locker goes away and comes back.
	d.stop()
	do(t, ctx, "fleet: offline", chromedp.WaitVisible(chromedp.CSS(`tr[data-locker="e2e-01"][data-online="false"]`)))
	d = start(t, c.Config)
	do(t, ctx, "fleet: online again", chromedp.WaitVisible(chromedp.CSS(`tr[data-locker="e2e-01"][data-online="true"]`)))

	// A forced door: an alarm, acknowledged from the page.
	d.sim("open", "C01")
	d.waitEvent(locker.EvDoorForced, map[string]any{"compartment": "C01"})
	do(t, ctx, "locker page", chromedp.Navigate(srv.URL+"/console/#/locker/e2e-01"),
		chromedp.WaitVisible(chromedp.CSS(`#cabinet [data-comp="C01"]`)), chromedp.WaitVisible(chromedp.CSS(`li[data-alarm][data-state="open"] button[data-action="ack"]`)))
	shot(t, ctx, "console-locker")
	do(t, ctx, "acknowledge", chromedp.Click(chromedp.CSS(`li[data-alarm][data-state="open"] button[data-action="ack"]`)),
		chromedp.WaitVisible(chromedp.CSS(`li[data-alarm][data-state="acknowledged"]`)))
	as, _ := hubC.OpenAlarms()
	if len(as) != 1 || as[0].Type != alarm.DoorForced || as[0].State != alarm.Acknowledged || as[0].AckBy != "user:staff-1" {
		t.Fatalf("alarms after the acknowledge: %+v", as)
	}
	d.sim("close", "C01")

	// A remote open with a reason, confirmed.
	do(t, ctx, "remote open", chromedp.SetValue(chromedp.CSS("#open-comp"), "A02"), chromedp.SendKeys(chromedp.CSS("#open-reason"), "reader called support"),
		chromedp.Click(chromedp.CSS("#open-go")), chromedp.WaitVisible(chromedp.CSS("#confirm-yes")))
	shot(t, ctx, "console-open-confirm")
	do(t, ctx, "confirm", chromedp.Click(chromedp.CSS("#confirm-yes")))
	d.waitEvent(locker.EvMaintenanceOpen, map[string]any{"compartment": "A02"})
	d.waitEvent(locker.EvDoorOpened, map[string]any{"compartment": "A02"})
	d.sim("close", "A02")
	audit, _ := hubC.Auth().AuditLog(0, 0)
	opened := false
	for _, a := range audit {
		if a.Who == "user:staff-1" && a.Action == "console: open" && a.Target == "e2e-01/A02" && a.Status == 200 {
			opened = true
		}
	}
	if !opened {
		t.Fatalf("the open is not in the audit log: %+v", audit)
	}

	// Refusals, asked from the signed-in page itself.
	status := func(js string) int {
		t.Helper()
		return get(t, ctx, js, chromedp.Evaluate[int](js, chromedp.EvalAwaitPromise))
	}
	openJS := `fetch('/console/api/lockers/e2e-01/open', {method: 'POST', headers: {'Content-Type': 'application/json'%s}, credentials: '%s', body: JSON.stringify({Compartment: 'A03', Reason: 'x'})}).then(r => r.status)`
	if code := status(fmt.Sprintf(openJS, "", "same-origin")); code != 403 {
		t.Fatalf("a change without the CSRF token: %d", code)
	}
	if code := status(fmt.Sprintf(openJS, ", 'X-CSRF-Token': me.csrf", "omit")); code != 401 {
		t.Fatalf("a change without a session: %d", code)
	}

	// Other screens.
	do(t, ctx, "orders", chromedp.Navigate(srv.URL+"/console/#/orders"), chromedp.WaitVisible(chromedp.CSS(`tr[data-order="ORD-DEMO-1"]`)))
	shot(t, ctx, "console-orders")
	do(t, ctx, "circulation", chromedp.Navigate(srv.URL+"/console/#/circulation"), chromedp.WaitVisible(chromedp.CSS("#circ-table")))
	shot(t, ctx, "console-circulation")
	do(t, ctx, "readers' orders", chromedp.Navigate(srv.URL+"/console/#/readers"), chromedp.WaitVisible(chromedp.CSS(`tr[data-pull="ORD-HOME-1"]`)))
	if txt := get(t, ctx, "the pull list", chromedp.Text(chromedp.CSS(`tr[data-pull="ORD-HOME-1"]`))); !strings.Contains(txt, "鼓楼区中山路 8 号 3 单元 501") || !strings.Contains(txt, "围城") {
		t.Fatalf("the home delivery in the pull list: %q", txt)
	}
	shot(t, ctx, "console-readers")

	// A viewer: no open button, and the API says no.
	do(t, ctx, "sign out", chromedp.Click(chromedp.CSS("#signout")), chromedp.WaitVisible(chromedp.CSS("#signin-user")))
	signIn("viewer-1", "password-viewer")
	do(t, ctx, "viewer's locker page", chromedp.Navigate(srv.URL+"/console/#/locker/e2e-01"),
		chromedp.WaitVisible(chromedp.CSS(`#view-locker[data-rendered-for="viewer-1"] #cabinet [data-comp="A01"]`)))
	hidden := get(t, ctx, "open form hidden", chromedp.Evaluate[bool](`document.querySelector('#open-form').hidden && !document.querySelector('li[data-alarm] button')`))
	if !hidden {
		t.Fatal("a viewer sees the open button")
	}
	if code := status(fmt.Sprintf(openJS, ", 'X-CSRF-Token': me.csrf", "same-origin")); code != 403 {
		t.Fatalf("a viewer's open: %d", code)
	}

	// The admin's audit log, and the fleet on a phone, in English.
	do(t, ctx, "sign out", chromedp.Click(chromedp.CSS("#signout")), chromedp.WaitVisible(chromedp.CSS("#signin-user")))
	signIn("admin-1", "password-admin")
	do(t, ctx, "audit", chromedp.Navigate(srv.URL+"/console/#/audit"), chromedp.WaitVisible(chromedp.CSS(`#audit-table tr[data-audit]`)))
	shot(t, ctx, "console-audit")
	phone, _ := browser(t, 375, 812)
	ctx = phone
	do(t, ctx, "phone", chromedp.Navigate(srv.URL+"/console/"), chromedp.WaitVisible(chromedp.CSS("#signin-user")),
		chromedp.SendKeys(chromedp.CSS("#signin-user"), "admin-1"), chromedp.SendKeys(chromedp.CSS("#signin-password"), "password-admin"),
		chromedp.Click(chromedp.CSS(`#signin-form button[type=submit]`)), chromedp.WaitVisible(chromedp.CSS(`tr[data-locker="e2e-01"]`)))
	heading := get(t, ctx, "fleet heading", chromedp.Evaluate[string](`document.querySelector('#view-fleet h2').textContent`))
	if heading != "Fleet" && heading != "柜机总览" {
		t.Fatalf("fleet heading %q", heading)
	}
	do(t, ctx, "language switch", chromedp.Click(chromedp.CSS("#lang")), chromedp.WaitVisible(chromedp.CSS(`tr[data-locker="e2e-01"]`)))
	after := get(t, ctx, "heading after the switch", chromedp.Text(chromedp.CSS("#view-fleet h2")))
	if after == heading {
		t.Fatalf("the language switch changed nothing: %q", after)
	}
	shot(t, ctx, "console-fleet-phone")
}
