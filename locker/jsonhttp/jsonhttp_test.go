package jsonhttp

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A JSON body goes out with its headers; a reply decodes; the server's
// error message comes back as the error; a reply without one names the
// status; an unreachable server is named.
func TestDo(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in map[string]string
		json.NewDecoder(r.Body).Decode(&in)
		switch r.URL.Path {
		case "/echo":
			if r.Header.Get("Content-Type") != "application/json" || r.Header.Get("Authorization") != "Bearer t" {
				w.WriteHeader(400)
				return
			}
			json.NewEncoder(w).Encode(map[string]string{"got": in["a"]})
		case "/refused":
			w.WriteHeader(409)
			w.Write([]byte(`{"error":"order exists"}`))
		default:
			w.WriteHeader(500)
		}
	}))
	defer srv.Close()
	var out map[string]string
	h := http.Header{"Authorization": {"Bearer t"}}
	if err := Do(srv.Client(), "test", "POST", srv.URL+"/echo", h, map[string]string{"a": "b"}, &out); err != nil || out["got"] != "b" {
		t.Fatalf("echo: %v %v", out, err)
	}
	if err := Do(srv.Client(), "test", "POST", srv.URL+"/refused", nil, nil, nil); err == nil || err.Error() != "order exists" {
		t.Fatalf("refused: %v", err)
	}
	if err := Do(srv.Client(), "test", "GET", srv.URL+"/broken", nil, nil, nil); err == nil || !strings.Contains(err.Error(), "500") {
		t.Fatalf("broken: %v", err)
	}
	srv.Close()
	if err := Do(http.DefaultClient, "the hub at x", "GET", srv.URL+"/echo", nil, nil, nil); err == nil || !strings.Contains(err.Error(), "the hub at x not reachable") {
		t.Fatalf("unreachable: %v", err)
	}
}
