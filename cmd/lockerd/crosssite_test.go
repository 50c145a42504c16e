package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/locker/httpapi"
)

// attackPage is what a web page on another site (here another loopback
// address) tries against lockerd's API and kiosk: open a door (fetch
// without CORS, and a text/plain form, the classic JSON CSRF), type a
// pickup code on the kiosk's behalf, and read the orders.
const attackPage = `<!doctype html><html><body>
<iframe name="sink"></iframe>
<form id="f" method="POST" action="http://API/v1/open" enctype="text/plain" target="sink">
<input name='{"compartment":"A02","reason":"' value='csrf"}'></form>
<script>
window.results = (async () => {
  const out = {};
  const post = (path, body, headers) => fetch("http://API" + path, {method: "POST", mode: "no-cors", body, headers})
    .then(() => "sent", (e) => "error: " + e);
  out.open = await post("/v1/open", JSON.stringify({compartment: "A01", reason: "csrf"}));
  out.code = await post("/kiosk/code", JSON.stringify({code: "CODE"}));
  out.scan = await post("/v1/scan", JSON.stringify({scanner: "front", text: "CODE"}));
  out.codeJSON = await fetch("http://API/kiosk/code", {method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({code: "CODE"})}).then((r) => "status " + r.status, (e) => "error: " + e);
  out.orders = await fetch("http://API/v1/orders").then((r) => r.text(), (e) => "error: " + e);
  document.getElementById("f").submit();
  await new Promise((r) => document.querySelector("iframe").onload = r);
  return JSON.stringify(out);
})();
</script></body></html>`

// TestCrossSiteRequestsRefused runs the attack in a real Chromium: a page
// served from another loopback address, and a DNS-rebinding name that
// resolves to 127.0.0.1, get no door opened and no order read, while the
// kiosk page (same origin) and lockerctl (with the API token) keep
// working.
func TestCrossSiteRequestsRefused(t *testing.T) {
	c := newCabinet(t, "0s")
	d := start(t, c.Config)
	rep := d.addOrder(httpapi.AddOrderRequest{Size: "S", Compartment: "A03"})
	_, port, _ := net.SplitHostPort(d.api)

	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	page := strings.NewReplacer("API", d.api, "CODE", rep.Code).Replace(attackPage)
	evil := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, page)
	})}
	go evil.Serve(ln)
	defer evil.Close()

	// rebind.test stands for an attacker's name whose DNS answer turned
	// into 127.0.0.1 after its page loaded.
	ctx, _ := browser(t, 800, 480, chromedp.Flag("host-resolver-rules", "MAP rebind.test 127.0.0.1"))
	do(t, ctx, "attack page", chromedp.Navigate("http://"+ln.Addr().String()+"/"))
	out := get(t, ctx, "attack results", chromedp.Evaluate[string](`window.results`, chromedp.EvalAwaitPromise))
	t.Logf("cross-site page: %s", out)
	var res map[string]string
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("attack page results %q: %v", out, err)
	}
	if strings.Contains(res["orders"], rep.Order.ID) {
		t.Fatalf("a cross-site page read the orders: %s", res["orders"])
	}
	if !strings.HasPrefix(res["codeJSON"], "error") {
		t.Fatalf("a cross-site JSON request got through: %s", res["codeJSON"])
	}

	// The rebinding site: its page is now served by lockerd under the
	// attacker's name. The Host check answers nothing but a refusal.
	rebound := "http://rebind.test:" + port
	do(t, ctx, "rebound read", chromedp.Navigate(rebound+"/v1/orders"))
	body := get(t, ctx, "rebound body", chromedp.Text(chromedp.CSS("body")))
	if strings.Contains(body, rep.Order.ID) || !strings.Contains(body, "127.0.0.1") {
		t.Fatalf("a rebinding site read %q", body)
	}
	body = get(t, ctx, "rebound post", chromedp.Evaluate[string](`fetch("/kiosk/code", {method: "POST", headers: {"Content-Type": "application/json"},
		body: JSON.stringify({code: "`+rep.Code+`"})}).then((r) => "status " + r.status)`, chromedp.EvalAwaitPromise))
	if body != "status 421" {
		t.Fatalf("a rebinding site's same-origin POST: %s", body)
	}

	// Nothing opened.
	for _, comp := range []string{"A01", "A02", "A03"} {
		if st := d.compartment(comp); st.DoorOpen {
			t.Fatalf("door %s opened by a web page", comp)
		}
	}
	if n := d.count(locker.EvMaintenanceOpen, nil) + d.count(locker.EvPickupCompleted, nil); n != 0 {
		t.Fatalf("%d doors opened by a web page", n)
	}

	// The kiosk page itself still works: a code typed there opens the door.
	do(t, ctx, "kiosk page", chromedp.Navigate("http://"+d.api+"/"))
	body = get(t, ctx, "kiosk code", chromedp.Evaluate[string](`fetch("/kiosk/code", {method: "POST", headers: {"Content-Type": "application/json"},
		body: JSON.stringify({code: "`+rep.Code+`"})}).then((r) => r.json()).then((j) => j.outcome)`, chromedp.EvalAwaitPromise))
	if body != string(locker.OutcomeOpened) {
		t.Fatalf("the kiosk page's own code: %s", body)
	}
	// lockerctl's client, with the token, still acts; without it, it may only read.
	if err := d.call("POST", "/v1/service", httpapi.ServiceRequest{Compartment: "A02", InService: false, Reason: "test"}, nil); err != nil {
		t.Fatalf("lockerctl with the token: %v", err)
	}
	bare := httpapi.NewClient(d.api)
	if _, err := bare.Status(); err != nil {
		t.Fatalf("reading without the token: %v", err)
	}
	if _, err := bare.Open("A01", "no token"); err == nil || !strings.Contains(err.Error(), "token") {
		t.Fatalf("open without the token: %v", err)
	}
}
