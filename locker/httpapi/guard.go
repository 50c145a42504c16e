package httpapi

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// Guard keeps what a web browser can do to lockerd's API and kiosk to the
// kiosk page itself. The kiosk's Chromium runs on the same machine as the
// API, so any page it (or another browser on the Pi) shows could send
// requests to 127.0.0.1; and a site that rebinds its DNS name to 127.0.0.1
// could read the replies. So:
//
//   - every request must name the API in its Host header (a rebinding
//     site's requests carry the site's name);
//   - a request that changes state (any method but GET/HEAD/OPTIONS) must
//     not come from another site (Sec-Fetch-Site, Origin) and must carry
//     a JSON body (Content-Type: application/json, which a page on another
//     site can only send after a CORS preflight that lockerd never
//     grants; a form or a no-cors fetch cannot);
//   - the admin routes (state-changing /v1/: open, scan, orders, service,
//     sim) need the per-boot token, which lockerctl reads from a file only
//     lockerd's user and root can read; the kiosk's own route
//     (/kiosk/code, /kiosk/pin) does not.
type Guard struct {
	next  http.Handler
	hosts map[string]bool
	token string
}

// GuardConfig is what Guard checks against.
type GuardConfig struct {
	// Listen is the address actually listened on (its port is the one
	// Host headers must name).
	Listen net.Addr
	// ConfiguredHost is api.listen's host ("localhost", "127.0.0.1"), also
	// accepted in Host headers.
	ConfiguredHost string
	// Token is the per-boot admin token ("" turns the token check off).
	Token string
}

// NewGuard wraps next.
func NewGuard(next http.Handler, cfg GuardConfig) (*Guard, error) {
	_, port, err := net.SplitHostPort(cfg.Listen.String())
	if err != nil {
		return nil, fmt.Errorf("guard: listen address %s: %w", cfg.Listen, err)
	}
	g := &Guard{next: next, hosts: map[string]bool{}, token: cfg.Token}
	for _, h := range []string{"127.0.0.1", "localhost", "[::1]", cfg.ConfiguredHost} {
		if h == "" {
			continue
		}
		if strings.Contains(h, ":") && !strings.HasPrefix(h, "[") {
			h = "[" + h + "]"
		}
		g.hosts[strings.ToLower(h)+":"+port] = true
	}
	return g, nil
}

func refuse(w http.ResponseWriter, code int, msg string) {
	reply(w, code, Error{Error: msg})
}

func (g *Guard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !g.hosts[strings.ToLower(r.Host)] {
		refuse(w, http.StatusMisdirectedRequest, "this is lockerd's local API: address it as 127.0.0.1:PORT")
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		g.next.ServeHTTP(w, r)
		return
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		refuse(w, http.StatusForbidden, "cross-site request refused")
		return
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		host, ok := strings.CutPrefix(strings.ToLower(origin), "http://")
		if !ok || !g.hosts[host] {
			refuse(w, http.StatusForbidden, "cross-site request refused")
			return
		}
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		refuse(w, http.StatusUnsupportedMediaType, "want Content-Type: application/json")
		return
	}
	if g.token != "" && strings.HasPrefix(r.URL.Path, "/v1/") {
		got, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if subtle.ConstantTimeCompare([]byte(got), []byte(g.token)) != 1 {
			refuse(w, http.StatusUnauthorized, "this route needs lockerd's API token (lockerctl reads it from api.token_file: run it as root, or give -token-file)")
			return
		}
	}
	g.next.ServeHTTP(w, r)
}

// NewToken makes a per-boot admin token and writes it to path (mode 0600,
// replaced atomically), for lockerctl.
func NewToken(path string) (string, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	tok := hex.EncodeToString(raw)
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", fmt.Errorf("api token: %w", err)
	}
	f, err := os.CreateTemp(dir, ".api.token-*")
	if err != nil {
		return "", fmt.Errorf("api token: %w", err)
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return "", fmt.Errorf("api token: %w", err)
	}
	if _, err := f.WriteString(tok + "\n"); err != nil {
		f.Close()
		return "", fmt.Errorf("api token: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("api token: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return "", fmt.Errorf("api token: %w", err)
	}
	return tok, nil
}

// ReadToken reads the token lockerd wrote to path.
func ReadToken(path string) (string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("lockerd's API token: %w", err)
	}
	tok := strings.TrimSpace(string(raw))
	if len(tok) != 64 {
		return "", errors.New("lockerd's API token: " + path + " does not hold one")
	}
	return tok, nil
}
