package hub_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/lockerd/lockerd/sync/hub/api"
	"github.com/lockerd/lockerd/sync/hub/auth"
	"github.com/lockerd/lockerd/sync/hub/hubtest"
)

// Every route: without a token 401, with a revoked one 401, with a token
// lacking the route's scope 403, with the scope neither; the errors are
// JSON and never repeat the token. A state-changing request is audited.
func TestEveryRouteNeedsItsScope(t *testing.T) {
	h, _, _ := newHub(t)
	srv := httptest.NewServer(api.New(api.ForHub(h)))
	defer srv.Close()
	routes := []struct{ method, path, scope, body string }{
		{"GET", "/v1/lockers", auth.ScopeRead, ""},
		{"POST", "/v1/lockers", auth.ScopeAdmin, `{"ID":"nb-9"}`},
		{"GET", "/v1/orders?locker=nb-1", auth.ScopeRead, ""},
		{"POST", "/v1/orders", auth.ScopeOrders, `{"locker":"nb-1"}`},
		{"POST", "/v1/cancel", auth.ScopeOrders, `{"Locker":"nb-1","OrderID":"x"}`},
		{"POST", "/v1/snapshot", auth.ScopeOrders, `{"Locker":"nb-1"}`},
		{"POST", "/v1/open", auth.ScopeOpen, `{"Locker":"nb-1","Compartment":"A01","Reason":"test"}`},
		{"GET", "/v1/commands/x", auth.ScopeRead, ""},
		{"GET", "/v1/events?locker=nb-1", auth.ScopeRead, ""},
		{"GET", "/v1/alarms", auth.ScopeRead, ""},
		{"GET", "/v1/circulation", auth.ScopeRead, ""},
		{"POST", "/v1/circulation/1/retry", auth.ScopeOrders, ""},
		{"POST", "/v1/circulation/1/resolve", auth.ScopeOrders, `{"Note":"x"}`},
		{"GET", "/v1/tokens", auth.ScopeAdmin, ""},
		{"POST", "/v1/tokens", auth.ScopeAdmin, `{"name":"x","scopes":["read"]}`},
		{"POST", "/v1/tokens/nobody/revoke", auth.ScopeAdmin, ""},
		{"GET", "/v1/audit", auth.ScopeAdmin, ""},
		{"POST", "/v1/alarms/1/ack", auth.ScopeOrders, ""},
		{"POST", "/v1/alarms/1/resolve", auth.ScopeOrders, `{"Note":"x"}`},
		{"GET", "/v1/webhooks", auth.ScopeAdmin, ""},
		{"POST", "/v1/webhooks", auth.ScopeAdmin, `{"url":"http://127.0.0.1:1/","events":["order.loaded"],"secret":"0123456789abcdef"}`},
		{"POST", "/v1/webhooks/x/remove", auth.ScopeAdmin, ""},
		{"GET", "/v1/webhooks/failed", auth.ScopeAdmin, ""},
		{"POST", "/v1/webhooks/deliveries/1/redeliver", auth.ScopeAdmin, ""},
		{"GET", "/v1/nothing-here", auth.ScopeRead, ""},
	}
	// A token for each scope but the route's (read only when the route
	// needs more: every token reads).
	tokens := map[string]string{}
	for _, s := range auth.Scopes {
		tokens[s] = hubtest.Token(t, h, s)
	}
	revoked, rec, err := h.Auth().CreateToken("gone", []string{auth.ScopeAdmin}, "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Auth().RevokeToken(rec.ID); err != nil {
		t.Fatal(err)
	}
	call := func(method, path, body, token string) (int, string) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(raw)
	}
	for _, r := range routes {
		t.Run(r.method+" "+r.path, func(t *testing.T) {
			for _, tc := range []struct {
				name, token string
				want        int
			}{
				{"no token", "", 401},
				{"revoked", revoked, 401},
				{"not a token", "lht_abc_def", 401},
			} {
				code, body := call(r.method, r.path, r.body, tc.token)
				if code != tc.want || !strings.HasPrefix(body, `{"error":`) || tc.token != "" && strings.Contains(body, tc.token) {
					t.Fatalf("%s: %d %s", tc.name, code, body)
				}
			}
			for s, tok := range tokens {
				code, body := call(r.method, r.path, r.body, tok)
				allowed := s == auth.ScopeAdmin || s == r.scope || r.scope == auth.ScopeRead
				if allowed && (code == 401 || code == 403) || !allowed && code != 403 {
					t.Fatalf("scope %s: %d %s", s, code, body)
				}
				if strings.Contains(body, tok) {
					t.Fatalf("the token came back in %s", body)
				}
			}
		})
	}
	audit, err := h.Auth().AuditLog(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var opened bool
	for _, a := range audit {
		if a.Action == "POST /v1/open" && a.Status == 200 && strings.Contains(a.Detail, `"Reason":"test"`) && a.From == "127.0.0.1" && strings.HasPrefix(a.Who, "test-") {
			opened = true
		}
		if strings.Contains(a.Detail, "lht_") {
			t.Fatalf("a token in the audit log: %+v", a)
		}
	}
	if !opened {
		t.Fatalf("the remote open is not in the audit log: %+v", audit)
	}
}

// A remote open needs a reason, and a token opens at most a few doors in
// a row.
func TestRemoteOpenBounds(t *testing.T) {
	h, _, _ := newHub(t)
	c := hubtest.Serve(t, h, auth.ScopeOpen)
	if _, err := c.Open("nb-1", "A01", " "); err == nil || !strings.Contains(err.Error(), "needs a reason") {
		t.Fatalf("open without a reason: %v", err)
	}
	var refused error
	for i := 0; i < 10 && refused == nil; i++ {
		_, refused = c.Open("nb-1", "A01", "reader called")
	}
	if refused == nil || !strings.Contains(refused.Error(), "too many remote opens") {
		t.Fatalf("ten opens in a row: %v", refused)
	}
	// Another token is not held back by the first one's.
	other := hubtest.Serve(t, h, auth.ScopeOpen)
	if _, err := other.Open("nb-1", "A01", "reader called"); err != nil {
		t.Fatal(err)
	}
}

// The first admin token is written once, 0600, when the hub has none.
func TestBootstrapToken(t *testing.T) {
	h, _, _ := newHub(t)
	file := t.TempDir() + "/admin.token"
	created, err := h.Auth().BootstrapToken(file)
	if err != nil || !created {
		t.Fatalf("bootstrap: %v %v", created, err)
	}
	raw, _ := os.ReadFile(file)
	if tok, err := h.Auth().Authenticate(strings.TrimSpace(string(raw))); err != nil || !tok.Allows(auth.ScopeAdmin) {
		t.Fatalf("bootstrap token: %+v %v", tok, err)
	}
	if info, _ := os.Stat(file); info.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", info.Mode())
	}
	if created, err := h.Auth().BootstrapToken(file + "2"); created || err != nil {
		t.Fatalf("a second bootstrap: %v %v", created, err)
	}
	ts, _ := h.Auth().Tokens()
	for _, tk := range ts {
		if tk.Hash != "" {
			t.Fatal("a token's hash listed")
		}
	}
}
