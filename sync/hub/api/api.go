package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/lockerd/lockerd/sync/hub"
	"github.com/lockerd/lockerd/sync/hub/auth"
)

// Config is the API's: the part of the central each route group calls.
type Config struct {
	Core        Core
	Alarms      Alarms
	Circulation Circulation
	Fleet       Fleet
	Auth        Auth
	Webhooks    Webhooks
	Notices     Notices // nil: no notice routes
	Stock       Stock   // nil: no stock routes
	// Metrics serves /metrics (Prometheus text; no token).
	Metrics http.Handler
	// BehindProxy: the API is reached through a reverse proxy, whose
	// X-Forwarded-For names the client in the audit log.
	BehindProxy bool
}

// ForHub is the Config of hub h: every route group served by the part of
// the hub that owns it.
func ForHub(h *hub.Hub) Config {
	return Config{Core: h, Alarms: h, Circulation: h, Fleet: h.Fleet(), Auth: h.Auth(), Webhooks: h, Notices: h.Notices(), Stock: h.Stock(), Metrics: h.MetricsHandler()}
}

// Bounds of a request.
const (
	// maxBody bounds a request's body: an order with 50 items is a few KB.
	maxBody = 1 << 20
	// Remote opens per token: 5 at once, then one every 6 s (10 a
	// minute). Provisioning attempts per address: 5, then one every 12 s.
	openBurst      = 5
	openEvery      = 6 * time.Second
	provisionBurst = 5
	provisionEvery = 12 * time.Second
)

// server is the API of one hub replica.
type server struct {
	cfg        Config
	opens      auth.RateLimiter // remote opens per token
	provisions auth.RateLimiter // provisioning attempts per address
}

// New is the API's handler. Every /v1/ route needs a bearer token with
// its scope (401 without one or with a revoked one, 403 with the wrong
// scope, as JSON errors that never repeat the token); every
// state-changing request is written to the audit log, with who, what and
// from where. /healthz, /metrics, a release's binary and a cabinet's
// provisioning need no token.
func New(cfg Config) http.Handler {
	s := &server{cfg: cfg, opens: auth.RateLimiter{Burst: openBurst, Every: openEvery},
		provisions: auth.RateLimiter{Burst: provisionBurst, Every: provisionEvery}}
	mux := http.NewServeMux()
	handle := func(pattern, scope string, fn http.HandlerFunc) {
		mux.Handle(pattern, s.authorize(scope, fn))
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		// partitions: the share of the lockers this replica stores (of 32);
		// subscribed: it hears every one of them (mqtt.subscribe_owned).
		reply(w, map[string]any{"ok": true, "broker": cfg.Core.Connected(), "partitions": cfg.Core.Partitions(),
			"subscribed": cfg.Core.Subscribed()}, nil)
	})
	if cfg.Metrics != nil {
		mux.Handle("GET /metrics", cfg.Metrics)
	}
	mux.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		// Before the token: a route that does not exist says so only to
		// a caller with a token.
		if _, err := cfg.Auth.Authenticate(bearer(r)); err != nil {
			deny(w, http.StatusUnauthorized, err.Error())
			return
		}
		deny(w, http.StatusNotFound, "no such route: "+r.Method+" "+r.URL.Path)
	})
	s.coreRoutes(handle)
	s.alarmRoutes(handle)
	s.circulationRoutes(handle)
	s.fleetRoutes(mux, handle)
	s.authRoutes(handle)
	s.webhookRoutes(handle)
	if cfg.Notices != nil {
		s.noticeRoutes(handle)
	}
	if cfg.Stock != nil {
		s.stockRoutes(handle)
	}
	return mux
}

type ctxKey struct{}

// Caller is the token a request came with (the zero auth.Token when none).
func Caller(ctx context.Context) auth.Token {
	t, _ := ctx.Value(ctxKey{}).(auth.Token)
	return t
}

// bearer is the request's bearer token ("" when none).
func bearer(r *http.Request) string {
	v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return ""
	}
	return strings.TrimSpace(v)
}

func deny(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="lockerhub"`)
	}
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// authorize checks the request's token for scope and, for a request that
// changes state, writes it to the audit log once answered.
func (s *server) authorize(scope string, next http.HandlerFunc) http.Handler {
	audit := s.cfg.Auth.Audit
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, err := s.cfg.Auth.Authenticate(bearer(r))
		if errors.Is(err, auth.ErrNoToken) || errors.Is(err, auth.ErrBadToken) {
			deny(w, http.StatusUnauthorized, err.Error())
			return
		}
		if err != nil {
			deny(w, http.StatusServiceUnavailable, "the hub's store cannot be read")
			return
		}
		if !tok.Allows(scope) {
			deny(w, http.StatusForbidden, fmt.Sprintf("token %q lacks the scope %q", tok.Name, scope))
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				// A refused attempt to change something is audited too.
				audit(auth.AuditRec{Who: tok.Name, Action: r.Method + " " + r.URL.Path, From: s.clientAddr(r), Status: http.StatusForbidden})
			}
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, tok))
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			next(w, r)
			return
		}
		if r.Method == http.MethodPut {
			// An upload (a release's binary): streamed to its handler,
			// which bounds it; audited without its body.
			rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
			next(rec, r)
			audit(auth.AuditRec{Who: tok.Name, Action: r.Method + " " + r.URL.Path, Detail: fmt.Sprintf("%d bytes", r.ContentLength), From: s.clientAddr(r), Status: rec.status})
			return
		}
		raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			deny(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes", maxBody))
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(raw))
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next(rec, r)
		audit(auth.AuditRec{Who: tok.Name, Action: r.Method + " " + r.URL.Path, Detail: redact(raw), From: s.clientAddr(r), Status: rec.status})
	})
}

// redact is a request body for the audit log: a password or secret in it
// is replaced.
func redact(raw []byte) string {
	var m map[string]any
	if json.Unmarshal(raw, &m) != nil {
		return string(raw)
	}
	for k := range m {
		switch strings.ToLower(k) {
		case "password", "secret", "token":
			m[k] = "(redacted)"
		}
	}
	out, _ := json.Marshal(m)
	return string(out)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) { s.status = code; s.ResponseWriter.WriteHeader(code) }

// clientAddr is where a request came from (ClientAddr with BehindProxy).
func (s *server) clientAddr(r *http.Request) string { return ClientAddr(r, s.cfg.BehindProxy) }

// ClientAddr is where a request came from: behind a proxy, the address
// the proxy appended last to X-Forwarded-For (the one it saw); else the
// connection's.
func ClientAddr(r *http.Request, behindProxy bool) string {
	if behindProxy {
		if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
			parts := strings.Split(xff, ",")
			return strings.TrimSpace(parts[len(parts)-1])
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// Pages: every list is served at most maxPage entries at a time (?limit=
// for fewer), from ?after= on.
const (
	defaultPage = 500
	maxPage     = 1000
)

func limitOf(r *http.Request) int {
	n, err := strconv.Atoi(r.URL.Query().Get("limit"))
	if err != nil || n <= 0 {
		return defaultPage
	}
	return min(n, maxPage)
}

// page returns up to limit entries of list (in its order) for which after
// holds, and never nil (an empty JSON list, not null).
func page[T any](list []T, limit int, after func(T) bool) []T {
	out := []T{}
	for _, v := range list {
		if len(out) >= limit {
			break
		}
		if after(v) {
			out = append(out, v)
		}
	}
	return out
}

func read(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody)).Decode(v); err != nil {
		reply(w, nil, fmt.Errorf("bad request: %w", err))
		return false
	}
	return true
}

func reply(w http.ResponseWriter, v any, err error) {
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
		return
	}
	json.NewEncoder(w).Encode(v)
}

// afterSeq is the request's ?after= as a number (0 when none).
func afterSeq(r *http.Request) uint64 {
	n, _ := strconv.ParseUint(r.URL.Query().Get("after"), 10, 64)
	return n
}

// pathID is the route's {name} as a number.
func pathID(r *http.Request, name, what string) (uint64, error) {
	id, err := strconv.ParseUint(r.PathValue(name), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s %q: want a number", what, r.PathValue(name))
	}
	return id, nil
}
