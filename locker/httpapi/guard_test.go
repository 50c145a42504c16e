package httpapi

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGuard(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	g, err := NewGuard(ok, GuardConfig{Listen: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8480}, ConfiguredHost: "localhost", Token: "t0k"})
	if err != nil {
		t.Fatal(err)
	}
	const served = http.StatusTeapot
	tests := []struct {
		name, method, path, host string
		hdr                      map[string]string
		want                     int
	}{
		{"read", "GET", "/v1/orders", "127.0.0.1:8480", nil, served},
		{"read as localhost", "GET", "/v1/orders", "LOCALHOST:8480", nil, served},
		{"read via a rebound name", "GET", "/v1/orders", "evil.example:8480", nil, http.StatusMisdirectedRequest},
		{"read on another port", "GET", "/v1/orders", "127.0.0.1:80", nil, http.StatusMisdirectedRequest},
		{"no host", "GET", "/", "", nil, http.StatusMisdirectedRequest},
		{"lockerctl open", "POST", "/v1/open", "127.0.0.1:8480", map[string]string{"Content-Type": "application/json", "Authorization": "Bearer t0k"}, served},
		{"open without token", "POST", "/v1/open", "127.0.0.1:8480", map[string]string{"Content-Type": "application/json"}, http.StatusUnauthorized},
		{"open with a wrong token", "POST", "/v1/open", "127.0.0.1:8480", map[string]string{"Content-Type": "application/json", "Authorization": "Bearer t0x"}, http.StatusUnauthorized},
		{"open as text/plain (form, no-cors fetch)", "POST", "/v1/open", "127.0.0.1:8480", map[string]string{"Content-Type": "text/plain", "Authorization": "Bearer t0k"}, http.StatusUnsupportedMediaType},
		{"open as a form", "POST", "/v1/open", "127.0.0.1:8480", map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Authorization": "Bearer t0k"}, http.StatusUnsupportedMediaType},
		{"open without content type", "POST", "/v1/open", "127.0.0.1:8480", map[string]string{"Authorization": "Bearer t0k"}, http.StatusUnsupportedMediaType},
		{"kiosk code from the kiosk page", "POST", "/kiosk/code", "127.0.0.1:8480", map[string]string{"Content-Type": "application/json; charset=utf-8", "Origin": "http://127.0.0.1:8480", "Sec-Fetch-Site": "same-origin"}, served},
		{"kiosk code from another site", "POST", "/kiosk/code", "127.0.0.1:8480", map[string]string{"Content-Type": "application/json", "Origin": "http://127.0.0.2:9000", "Sec-Fetch-Site": "same-site"}, http.StatusForbidden},
		{"kiosk code, cross-site fetch metadata only", "POST", "/kiosk/code", "127.0.0.1:8480", map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"kiosk code, null origin", "POST", "/kiosk/code", "127.0.0.1:8480", map[string]string{"Content-Type": "application/json", "Origin": "null"}, http.StatusForbidden},
		{"kiosk code, https origin of the same host", "POST", "/kiosk/code", "127.0.0.1:8480", map[string]string{"Content-Type": "application/json", "Origin": "https://127.0.0.1:8480"}, http.StatusForbidden},
		{"kiosk code via a rebound name", "POST", "/kiosk/code", "rebind.test:8480", map[string]string{"Content-Type": "application/json", "Origin": "http://rebind.test:8480"}, http.StatusMisdirectedRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.path, strings.NewReader(`{}`))
			r.Host = tt.host
			for k, v := range tt.hdr {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			g.ServeHTTP(w, r)
			if w.Code != tt.want {
				t.Fatalf("%s %s Host %q: %d %s, want %d", tt.method, tt.path, tt.host, w.Code, w.Body, tt.want)
			}
		})
	}
}

func TestToken(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state", "api.token")
	tok, err := NewToken(p)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(p)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", info.Mode(), err)
	}
	got, err := ReadToken(p)
	if err != nil || got != tok {
		t.Fatalf("ReadToken = %q, %v", got, err)
	}
	if again, _ := NewToken(p); again == tok {
		t.Fatal("a new boot kept the old token")
	}
	os.WriteFile(p, []byte("short\n"), 0o600)
	if _, err := ReadToken(p); err == nil {
		t.Fatal("a file without a token was read as one")
	}
}
