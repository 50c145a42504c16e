package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lockerd/lockerd/locker"
)

// fakeLocker is the API's Locker in memory.
type fakeLocker struct {
	orders    []locker.Order
	events    []locker.Event
	failStore bool
	created   []locker.NewOrder
	scans     []string
	service   []string
}

var errStore = errors.New("store failing")

func (f *fakeLocker) Status() (locker.Status, error) {
	if f.failStore {
		return locker.Status{}, errStore
	}
	return locker.Status{LockerID: "L1", OutboxDepth: len(f.events)}, nil
}
func (f *fakeLocker) OrdersPage(after string, limit int) ([]locker.Order, error) {
	if f.failStore {
		return nil, errStore
	}
	var out []locker.Order
	for _, o := range f.orders {
		if o.ID > after && len(out) < limit {
			out = append(out, o)
		}
	}
	return out, nil
}
func (f *fakeLocker) CreateOrder(n locker.NewOrder) (locker.Order, string, error) {
	if n.Compartment == "Z99" {
		return locker.Order{}, "", errors.New(`compartment "Z99" does not exist`)
	}
	f.created = append(f.created, n)
	return locker.Order{ID: "ORD-1", State: locker.OrderReady, CodeHash: "secret-hash"}, "CODE1234", nil
}
func (f *fakeLocker) Events(after uint64, limit int) ([]locker.Event, error) {
	var out []locker.Event
	for _, e := range f.events {
		if e.Seq > after && (limit == 0 || len(out) < limit) {
			out = append(out, e)
		}
	}
	return out, nil
}
func (f *fakeLocker) Subscribe() (<-chan locker.Event, func()) {
	return make(chan locker.Event), func() {}
}
func (f *fakeLocker) Scan(ctx context.Context, device, text string) (locker.ScanResult, error) {
	if device != "front" {
		return locker.ScanResult{}, fmt.Errorf("unknown scanner %q", device)
	}
	f.scans = append(f.scans, text)
	return locker.ScanResult{Outcome: locker.OutcomeDenied, Reason: locker.DenyUnknown}, nil
}
func (f *fakeLocker) MaintenanceOpen(ctx context.Context, id, reason string) (locker.ScanResult, error) {
	if id != "A01" {
		return locker.ScanResult{}, fmt.Errorf("unknown compartment %q", id)
	}
	return locker.ScanResult{Outcome: locker.OutcomeMaintOpen, Compartments: []string{id}}, nil
}
func (f *fakeLocker) SetService(id string, in bool, reason string) error {
	if id != "A01" {
		return fmt.Errorf("unknown compartment %q", id)
	}
	f.service = append(f.service, fmt.Sprintf("%s %v %s", id, in, reason))
	return nil
}

var _ Locker = (*fakeLocker)(nil)

// Every route: its status codes, bad JSON, unknown fields and
// compartments, and what each reply carries.
func TestRoutes(t *testing.T) {
	f := &fakeLocker{}
	for i := 1; i <= 1205; i++ {
		f.orders = append(f.orders, locker.Order{ID: fmt.Sprintf("ORD-%05d", i), CodeHash: "h"})
	}
	for i := 1; i <= 3; i++ {
		f.events = append(f.events, locker.Event{Seq: uint64(i), Type: locker.EvDoorClosed, Data: json.RawMessage(`{}`)})
	}
	h := New(f, slog.New(slog.NewTextHandler(io.Discard, nil)))
	tests := []struct {
		name, method, path, body string
		status                   int
		has, hasNot              string
	}{
		{"status", "GET", "/v1/status", "", 200, `"locker_id":"L1"`, ""},
		{"orders: first page of 500", "GET", "/v1/orders", "", 200, `"ORD-00500"`, `"ORD-00501"`},
		{"orders: a page after", "GET", "/v1/orders?after=ORD-01200&limit=3", "", 200, `"ORD-01203"`, `"ORD-01200"`},
		{"orders: limit capped at 1000", "GET", "/v1/orders?limit=5000", "", 200, `"ORD-01000"`, `"ORD-01001"`},
		{"orders: no code hash", "GET", "/v1/orders?limit=1", "", 200, `"ORD-00001"`, `code_hash`},
		{"add order", "POST", "/v1/orders", `{"size":"s","items":[{"barcode":"9787020002207"}],"ttl":"2h"}`, 201, `"code":"CODE1234"`, ""},
		{"add order: bad ttl", "POST", "/v1/orders", `{"ttl":"forever"}`, 400, `ttl`, ""},
		{"add order: bad JSON", "POST", "/v1/orders", `{"size":`, 400, `bad request body`, ""},
		{"add order: unknown field", "POST", "/v1/orders", `{"sise":"S"}`, 400, `unknown field`, ""},
		{"add order: unknown compartment", "POST", "/v1/orders", `{"compartment":"Z99"}`, 409, `does not exist`, ""},
		{"events", "GET", "/v1/events?after=1", "", 200, `"seq":2`, `"seq":1,`},
		{"scan", "POST", "/v1/scan", `{"scanner":"front","text":"ABCD1234"}`, 200, `"outcome":"denied"`, "ABCD1234"},
		{"scan: unknown scanner", "POST", "/v1/scan", `{"scanner":"back","text":"x"}`, 400, `unknown scanner`, ""},
		{"scan: bad JSON", "POST", "/v1/scan", `[]`, 400, `bad request body`, ""},
		{"open", "POST", "/v1/open", `{"compartment":"A01","reason":"test"}`, 200, `"outcome":"maintenance"`, ""},
		{"open: unknown compartment", "POST", "/v1/open", `{"compartment":"Z99","reason":"test"}`, 400, `unknown compartment`, ""},
		{"service", "POST", "/v1/service", `{"compartment":"A01","in_service":false}`, 200, `"reason":"technician"`, ""},
		{"service: unknown compartment", "POST", "/v1/service", `{"compartment":"Z99"}`, 400, `unknown compartment`, ""},
		{"unknown route", "GET", "/v1/nothing", "", 404, "", ""},
		{"wrong method", "DELETE", "/v1/orders", "", 405, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			body := rec.Body.String()
			if rec.Code != tt.status || !strings.Contains(body, tt.has) || tt.hasNot != "" && strings.Contains(body, tt.hasNot) {
				t.Fatalf("%s %s: %d %s", tt.method, tt.path, rec.Code, body)
			}
			if rec.Code >= 400 && rec.Code != 404 && rec.Code != 405 {
				var e Error
				if json.Unmarshal(rec.Body.Bytes(), &e) != nil || e.Error == "" {
					t.Fatalf("an error reply that is not {\"error\": ...}: %s", body)
				}
			}
		})
	}
	if len(f.created) != 1 || f.created[0].Size != locker.SizeS || f.created[0].TTL != 2*time.Hour {
		t.Fatalf("orders created: %+v", f.created)
	}
	if len(f.service) != 1 || f.service[0] != "A01 false technician" {
		t.Fatalf("service changes: %v", f.service)
	}
	// A failing store is a 500 with the error, never a crash.
	f.failStore = true
	for _, path := range []string{"/v1/status", "/v1/orders"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != 500 || !bytes.Contains(rec.Body.Bytes(), []byte("store failing")) {
			t.Fatalf("%s with a failing store: %d %s", path, rec.Code, rec.Body)
		}
	}
	// An order reply is never cached: it holds the pickup code.
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/orders", strings.NewReader(`{}`)))
	if rec.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("order reply cacheable: %q", rec.Header().Get("Cache-Control"))
	}
}

// Through the guard, as lockerd serves it: a request naming another host
// is refused before any route runs.
func TestRoutesBehindTheGuard(t *testing.T) {
	f := &fakeLocker{}
	h := New(f, slog.New(slog.NewTextHandler(io.Discard, nil)))
	srv := httptest.NewUnstartedServer(nil)
	g, err := NewGuard(h, GuardConfig{Listen: srv.Listener.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = g
	srv.Start()
	defer srv.Close()
	req, _ := http.NewRequest("POST", srv.URL+"/v1/scan", strings.NewReader(`{"scanner":"front","text":"X"}`))
	req.Host = "attacker.example"
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMisdirectedRequest || len(f.scans) != 0 {
		t.Fatalf("another Host: %d, %d scans", resp.StatusCode, len(f.scans))
	}
}

func (f *fakeLocker) Badges() ([]locker.Badge, error) { return nil, nil }
