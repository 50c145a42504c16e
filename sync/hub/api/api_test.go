package api_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockerd/lockerd/sync/hub"
	"github.com/lockerd/lockerd/sync/hub/api"
	"github.com/lockerd/lockerd/sync/hub/auth"
	"github.com/lockerd/lockerd/sync/protocol"
)

// The API's fast tests: every route group on a fake. The API on a real
// hub is tested in sync/hub and cmd/lockerhub.

// fakeAuth knows three tokens; it records what is audited. The Auth
// methods the tests do not call are the embedded nil interface's.
type fakeAuth struct {
	api.Auth
	mu     sync.Mutex
	audits []auth.AuditRec
}

var tokens = map[string]auth.Token{
	"lht_admin": {ID: "t1", Name: "admin", Scopes: []string{auth.ScopeAdmin}},
	"lht_read":  {ID: "t2", Name: "reader"},
	"lht_open":  {ID: "t3", Name: "opener", Scopes: []string{auth.ScopeOpen}},
}

func (a *fakeAuth) Authenticate(bearer string) (auth.Token, error) {
	switch tok, ok := tokens[bearer]; {
	case bearer == "":
		return auth.Token{}, auth.ErrNoToken
	case !ok:
		return auth.Token{}, auth.ErrBadToken
	default:
		return tok, nil
	}
}

func (a *fakeAuth) Audit(r auth.AuditRec) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.audits = append(a.audits, r)
}

func (a *fakeAuth) AddUser(name, role, password string) (auth.User, error) {
	return auth.User{Name: name, Role: role}, nil
}

func (a *fakeAuth) last() auth.AuditRec {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.audits) == 0 {
		return auth.AuditRec{}
	}
	return a.audits[len(a.audits)-1]
}

// fakeCore serves n lockers and opens any door.
type fakeCore struct {
	api.Core
	n     int
	opens int
}

func (c *fakeCore) Connected() bool { return true }

func (c *fakeCore) Partitions() int  { return 32 }
func (c *fakeCore) Subscribed() bool { return true }

func (c *fakeCore) Lockers() ([]hub.LockerInfo, error) {
	out := make([]hub.LockerInfo, c.n)
	for i := range out {
		out[i].ID = fmt.Sprintf("L%04d", i)
	}
	return out, nil
}

func (c *fakeCore) Open(lockerID, compartment, reason string) (string, error) {
	c.opens++
	return "cmd-1", nil
}

type fakeFleet struct {
	api.Fleet
	from []string
}

func (f *fakeFleet) Provision(req protocol.ProvisionRequest, from string, now time.Time) (protocol.ProvisionReply, error) {
	f.from = append(f.from, from)
	return protocol.ProvisionReply{}, errors.New("no")
}

func newAPI(behindProxy bool) (*httptest.Server, *fakeAuth, *fakeCore, *fakeFleet) {
	a, c, f := &fakeAuth{}, &fakeCore{n: 1500}, &fakeFleet{}
	srv := httptest.NewServer(api.New(api.Config{Core: c, Auth: a, Fleet: f, BehindProxy: behindProxy}))
	return srv, a, c, f
}

func do(t *testing.T, srv *httptest.Server, method, path, token, body string, hdr ...string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 64<<10)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, sb.String(), resp.Header
}

// Who may call what: 401 without a token or with an unknown one, 403
// with the wrong scope (audited when it would have changed something),
// 404 for a route that does not exist only with a token; no token ever
// repeated in an answer.
func TestAuthorize(t *testing.T) {
	srv, a, _, _ := newAPI(false)
	defer srv.Close()
	cases := []struct {
		name, method, path, token string
		status                    int
		audited                   bool
	}{
		{"health needs no token", "GET", "/healthz", "", 200, false},
		{"no token", "GET", "/v1/lockers", "", 401, false},
		{"unknown token", "GET", "/v1/lockers", "lht_forged", 401, false},
		{"read scope reads", "GET", "/v1/lockers", "lht_read", 200, false},
		{"read scope cannot add users", "POST", "/v1/users", "lht_read", 403, true},
		{"no route, no token", "GET", "/v1/nothing", "", 401, false},
		{"no route, a token", "GET", "/v1/nothing", "lht_read", 404, false},
		{"admin adds a user", "POST", "/v1/users", "lht_admin", 200, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := len(a.audits)
			status, body, hdr := do(t, srv, c.method, c.path, c.token, `{"name":"li","role":"staff","password":"hunter2hunter2"}`)
			if status != c.status {
				t.Fatalf("status %d (%s), want %d", status, body, c.status)
			}
			if status == 401 && hdr.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if c.token != "" && strings.Contains(body, c.token) {
				t.Errorf("the token is repeated: %s", body)
			}
			if got := len(a.audits) > before; got != c.audited {
				t.Errorf("audited %v, want %v", got, c.audited)
			}
		})
	}
	if d := a.last().Detail; !strings.Contains(d, "(redacted)") || strings.Contains(d, "hunter2") {
		t.Fatalf("the audit log has the password: %s", d)
	}
}

// Every list is paged (500 by default, at most 1000), from ?after= on;
// every body is bounded.
func TestBounds(t *testing.T) {
	srv, _, _, _ := newAPI(false)
	defer srv.Close()
	for _, c := range []struct {
		query string
		n     int
		first string
	}{{"", 500, "L0000"}, {"?limit=2000", 1000, "L0000"}, {"?limit=3", 3, "L0000"}, {"?after=L1490", 9, "L1491"}} {
		status, body, _ := do(t, srv, "GET", "/v1/lockers"+c.query, "lht_read", "")
		if n := strings.Count(body, `"id"`); status != 200 || n != c.n || !strings.Contains(body[:40], c.first) {
			t.Errorf("%q: %d lockers from %.30s (status %d), want %d from %s", c.query, n, body, status, c.n, c.first)
		}
	}
	big := `{"name":"` + strings.Repeat("x", 2<<20) + `"}`
	if status, _, _ := do(t, srv, "POST", "/v1/users", "lht_admin", big); status != http.StatusRequestEntityTooLarge {
		t.Fatalf("a 2 MiB body: %d", status)
	}
}

// Remote opens are rate limited per token, provisioning attempts per
// address (the proxy's X-Forwarded-For only behind one).
func TestRateLimits(t *testing.T) {
	srv, _, core, fl := newAPI(true)
	defer srv.Close()
	var statuses []int
	for range 7 {
		s, _, _ := do(t, srv, "POST", "/v1/open", "lht_open", `{"Locker":"L1","Compartment":"A01","Reason":"stuck"}`)
		statuses = append(statuses, s)
	}
	if core.opens != 5 || statuses[5] != http.StatusTooManyRequests {
		t.Fatalf("opens: %d sent, statuses %v", core.opens, statuses)
	}
	for i := range 7 {
		s, _, _ := do(t, srv, "POST", "/v1/provision", "", `{"token":"lhp_x_y"}`, "X-Forwarded-For", "1.2.3.4, 10.0.0.7")
		if want := map[bool]int{true: 400, false: 429}[i < 5]; s != want {
			t.Fatalf("provision attempt %d: %d, want %d", i+1, s, want)
		}
	}
	if s, _, _ := do(t, srv, "POST", "/v1/provision", "", `{"token":"lhp_x_y"}`, "X-Forwarded-For", "10.0.0.8"); s != 400 {
		t.Fatalf("another address: %d", s)
	}
	if len(fl.from) != 6 || fl.from[0] != "10.0.0.7" || fl.from[5] != "10.0.0.8" {
		t.Fatalf("provisioning seen from %v", fl.from)
	}
}
