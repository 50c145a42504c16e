package console_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	neturl "net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lockerd/lockerd/locker/lockertest"
	"github.com/lockerd/lockerd/sync/hub"
	"github.com/lockerd/lockerd/sync/hub/auth"
	"github.com/lockerd/lockerd/sync/hub/console"
	"github.com/lockerd/lockerd/sync/hub/hubtest"
	"github.com/lockerd/lockerd/sync/protocol"
)

// site is the console on a test server, with a user of each role.
func site(t *testing.T) (*httptest.Server, *hub.Hub) {
	t.Helper()
	key := ed25519.NewKeyFromSeed(make([]byte, 32))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	h, err := hub.New(hub.Config{Store: hubtest.BoltStore(t, filepath.Join(t.TempDir(), "hub.db")), SigningKey: key, PickupKey: lockertest.Key, Lockers: []string{"nb-1"}, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	for _, r := range auth.Roles {
		if _, err := h.Auth().AddUser(r+"-1", r, "password-"+r); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(console.New(console.ForHub(h), key.Seed(), false, log).Handler())
	t.Cleanup(srv.Close)
	return srv, h
}

type client struct {
	t    *testing.T
	srv  *httptest.Server
	http *http.Client
	csrf string
}

func newClient(t *testing.T, srv *httptest.Server) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: t, srv: srv, http: &http.Client{Jar: jar}}
}

func (c *client) call(method, path, body string, hdr map[string]string) (int, map[string]any) {
	c.t.Helper()
	req, _ := http.NewRequest(method, c.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	json.Unmarshal(raw, &out)
	return resp.StatusCode, out
}

func (c *client) signIn(user, pw string) int {
	code, out := c.call("POST", "/console/api/signin", `{"User":"`+user+`","Password":"`+pw+`"}`, nil)
	if code == 200 {
		c.csrf, _ = out["csrf"].(string)
	}
	return code
}

func TestConsoleSessionsAndRoles(t *testing.T) {
	srv, h := site(t)
	anon := newClient(t, srv)
	if code, _ := anon.call("GET", "/console/api/fleet", "", nil); code != 401 {
		t.Fatalf("fleet without a session: %d", code)
	}
	if code := anon.signIn("staff-1", "wrong-password"); code != 401 {
		t.Fatalf("wrong password: %d", code)
	}
	if code, _ := anon.call("POST", "/console/api/signin", `{"User":"staff-1","Password":"password-staff"}`, map[string]string{"Origin": "https://evil.example"}); code != 403 {
		t.Fatalf("a sign-in from another site: %d", code)
	}
	staff := newClient(t, srv)
	if code := staff.signIn("staff-1", "password-staff"); code != 200 {
		t.Fatalf("sign-in: %d", code)
	}
	u, _ := url(srv)
	for _, ck := range staff.http.Jar.Cookies(u) {
		if ck.Name == "lockerhub_session" && (strings.Contains(ck.Value, "password")) {
			t.Fatal("the password in the cookie")
		}
	}
	open := `{"Compartment":"A01","Reason":"reader called"}`
	if code, out := staff.call("POST", "/console/api/lockers/nb-1/open", open, nil); code != 403 || !strings.Contains(out["error"].(string), "CSRF") {
		t.Fatalf("open without the CSRF token: %d %v", code, out)
	}
	if code, _ := staff.call("POST", "/console/api/lockers/nb-1/open", open, map[string]string{"X-CSRF-Token": staff.csrf, "Sec-Fetch-Site": "cross-site"}); code != 403 {
		t.Fatalf("open from another site: %d", code)
	}
	if code, out := staff.call("POST", "/console/api/lockers/nb-1/open", open, map[string]string{"X-CSRF-Token": staff.csrf}); code != 200 {
		t.Fatalf("staff open: %d %v", code, out)
	}
	viewer := newClient(t, srv)
	viewer.signIn("viewer-1", "password-viewer")
	if code, _ := viewer.call("POST", "/console/api/lockers/nb-1/open", open, map[string]string{"X-CSRF-Token": viewer.csrf}); code != 403 {
		t.Fatalf("a viewer opened a door: %d", code)
	}
	if code, _ := viewer.call("GET", "/console/api/fleet", "", nil); code != 200 {
		t.Fatalf("a viewer's fleet: %d", code)
	}
	if code, _ := staff.call("GET", "/console/api/audit", "", nil); code != 403 {
		t.Fatalf("staff read the audit log: %d", code)
	}
	admin := newClient(t, srv)
	admin.signIn("admin-1", "password-admin")
	code, _ := admin.call("GET", "/console/api/audit", "", nil)
	if code != 200 {
		t.Fatalf("admin's audit: %d", code)
	}
	audit, _ := h.Auth().AuditLog(0, 0)
	found := false
	for _, a := range audit {
		if a.Who == "user:staff-1" && a.Action == "console: open" && strings.Contains(a.Detail, "reader called") {
			found = true
		}
		if strings.Contains(a.Detail, "password-") {
			t.Fatalf("a password in the audit log: %+v", a)
		}
	}
	if !found {
		t.Fatalf("the console's open is not audited: %+v", audit)
	}
	// A disabled user's session ends at once.
	if err := h.Auth().DisableUser("staff-1"); err != nil {
		t.Fatal(err)
	}
	if code, _ := staff.call("GET", "/console/api/fleet", "", nil); code != 401 {
		t.Fatalf("a disabled user's session: %d", code)
	}
	// A forged cookie is nobody.
	forged := newClient(t, srv)
	forged.http.Jar.SetCookies(u, []*http.Cookie{{Name: "lockerhub_session", Value: "eyJ1IjoiYWRtaW4tMSIsImUiOjk5OTk5OTk5OTksImMiOiJ4In0.AAAA"}})
	if code, _ := forged.call("GET", "/console/api/audit", "", nil); code != 401 {
		t.Fatalf("a forged cookie: %d", code)
	}
}

func TestSignInRateLimited(t *testing.T) {
	srv, _ := site(t)
	c := newClient(t, srv)
	last := 0
	for range 8 {
		last = c.signIn("admin-1", "not-the-password")
	}
	if last != 429 {
		t.Fatalf("eight wrong passwords in a row: last %d", last)
	}
	if code := c.signIn("admin-1", "password-admin"); code != 429 {
		t.Fatalf("right after, even the right password waits: %d", code)
	}
}

func TestConsolePagesAreSelfContained(t *testing.T) {
	srv, _ := site(t)
	resp, err := http.Get(srv.URL + "/console/")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	csp := resp.Header.Get("Content-Security-Policy")
	if resp.StatusCode != 200 || !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Fatalf("index: %d %q", resp.StatusCode, csp)
	}
	if strings.Contains(string(raw), "http://") || strings.Contains(string(raw), "https://") {
		t.Fatal("the page refers to another site")
	}
}

func url(srv *httptest.Server) (*neturl.URL, error) { return neturl.Parse(srv.URL + "/console/") }

// deskHolds is a fake hold lookup: item H1 is held for P1.
type deskHolds struct{ asked []protocol.ReqHold }

func (d *deskHolds) Scan(_ context.Context, lockerID string, req protocol.ReqHold) protocol.RespHold {
	d.asked = append(d.asked, req)
	if req.Item == "H1" {
		return protocol.RespHold{OK: true, Order: &protocol.Order{ID: "H-1", CodeHash: "secret-hash"}}
	}
	return protocol.RespHold{Reason: protocol.HoldNone, Message: "no hold waits for item " + req.Item}
}

// The readers' view: the orders to pull and load (home deliveries first,
// with their address; who made each), a held item scanned at the desk
// (staff only, audited, the visit the same for one user's day), and what
// readers were told.
func TestReadersView(t *testing.T) {
	key := ed25519.NewKeyFromSeed(make([]byte, 32))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	h, err := hub.New(hub.Config{Store: hubtest.BoltStore(t, filepath.Join(t.TempDir(), "hub.db")), SigningKey: key, PickupKey: lockertest.Key,
		Lockers: []string{"nb-1", "nb-2"}, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	for _, r := range []string{auth.RoleStaff, auth.RoleViewer} {
		h.Auth().AddUser(r+"-1", r, "password-"+r)
	}
	holds := &deskHolds{}
	desk := console.ForHub(h)
	desk.Holds = holds
	srv := httptest.NewServer(console.New(desk, key.Seed(), false, log).Handler())
	defer srv.Close()
	for _, o := range []hub.NewOrder{
		{Locker: "nb-1", ID: "A1", Items: []protocol.Item{{Barcode: "39000001", Title: "围城"}}, Source: "reader"},
		{Locker: "nb-2", ID: "D1", Delivery: true, Address: "鼓楼区中山路 8 号", Source: "reader"},
		{Locker: "nb-1", ID: "S1"},
	} {
		if _, err := h.CreateOrder(o); err != nil {
			t.Fatal(err)
		}
	}
	viewer := newClient(t, srv)
	viewer.signIn("viewer-1", "password-viewer")
	var pull []struct {
		Order, Source, Address string
		Delivery               bool
	}
	viewer.list("/console/api/pull", &pull)
	if len(pull) != 3 || pull[0].Order != "D1" || !pull[0].Delivery || pull[0].Address != "鼓楼区中山路 8 号" || pull[1].Source != "reader" || pull[2].Source != "staff" {
		t.Fatalf("pull list: %+v", pull)
	}
	var told []map[string]any
	if viewer.list("/console/api/notices", &told); told == nil {
		t.Fatal("notices: not a list")
	}
	scan := `{"Locker":"nb-1","Item":"H1"}`
	if code, _ := viewer.call("POST", "/console/api/holds", scan, map[string]string{"X-CSRF-Token": viewer.csrf}); code != 403 {
		t.Fatalf("a viewer scanned a hold: %d", code)
	}
	staff := newClient(t, srv)
	staff.signIn("staff-1", "password-staff")
	code, out := staff.call("POST", "/console/api/holds", scan, map[string]string{"X-CSRF-Token": staff.csrf})
	if code != 200 || out["ok"] != true || out["order"].(map[string]any)["code_hash"] != nil {
		t.Fatalf("the desk's scan: %d %v", code, out)
	}
	code, out = staff.call("POST", "/console/api/holds", `{"Locker":"nb-1","Item":"B9"}`, map[string]string{"X-CSRF-Token": staff.csrf})
	if code != 200 || out["reason"] != protocol.HoldNone || out["message"] == "" {
		t.Fatalf("a refusal: %d %v", code, out)
	}
	if code, _ := staff.call("POST", "/console/api/holds", `{"Locker":"nb-1","Item":"B9","Card":"`+strings.Repeat("2", 65)+`"}`, map[string]string{"X-CSRF-Token": staff.csrf}); code != 400 {
		t.Fatalf("an over-long card: %d", code)
	}
	if len(holds.asked) != 2 || holds.asked[0].Visit == "" || holds.asked[0].Visit != holds.asked[1].Visit || holds.asked[0].By != "user:staff-1" {
		t.Fatalf("asked %+v", holds.asked)
	}
	audit, _ := h.Auth().AuditLog(0, 0)
	n := 0
	for _, a := range audit {
		if a.Action == "console: hold scan" && a.Who == "user:staff-1" {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d hold scans audited", n)
	}
}

// list GETs a JSON list into out.
func (c *client) list(path string, out any) {
	c.t.Helper()
	resp, err := c.http.Get(c.srv.URL + path)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		c.t.Fatalf("GET %s: %d", path, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		c.t.Fatalf("GET %s: %v", path, err)
	}
}
