package console_test

import (
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
