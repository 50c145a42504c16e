package sim

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The simulator's routes: faults by name, each refusal a 400 with the
// API's {"error": ...}; a body is bounded; without simulated hardware
// every route is a 404.
func TestRoutes(t *testing.T) {
	hw, err := New(Config{Doors: []Door{{ID: "A01", Lock: "L1", Sensor: "D1"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer hw.Close()
	mux := http.NewServeMux()
	Mount(mux, hw, slog.New(slog.NewTextHandler(io.Discard, nil)))
	none := http.NewServeMux()
	Mount(none, nil, nil)
	tests := []struct {
		name   string
		mux    *http.ServeMux
		method string
		path   string
		body   string
		status int
		has    string
	}{
		{"state", mux, "GET", "/v1/sim", "", 200, `"A01"`},
		{"outputs", mux, "GET", "/v1/sim/outputs", "", 200, "{"},
		{"jam", mux, "POST", "/v1/sim", `{"action":"jam","door":"A01"}`, 200, `"A01"`},
		{"unknown action", mux, "POST", "/v1/sim", `{"action":"explode"}`, 400, `unknown action`},
		{"unknown door", mux, "POST", "/v1/sim", `{"action":"open","door":"Z9"}`, 400, `"error"`},
		{"unknown field", mux, "POST", "/v1/sim", `{"action":"jam","dor":"A01"}`, 400, `unknown field`},
		{"bad JSON", mux, "POST", "/v1/sim", `{"action":`, 400, `bad request body`},
		{"oversized body", mux, "POST", "/v1/sim", `{"action":"` + strings.Repeat("x", 1<<17) + `"}`, 400, `bad request body`},
		{"not simulated", none, "GET", "/v1/sim", "", 404, `hardware is not simulated`},
		{"not simulated: fault", none, "POST", "/v1/sim", `{"action":"jam"}`, 404, `hardware is not simulated`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			tt.mux.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body)))
			if rec.Code != tt.status || !strings.Contains(rec.Body.String(), tt.has) {
				t.Fatalf("%d %s", rec.Code, rec.Body.String())
			}
		})
	}
}
