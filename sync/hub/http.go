package hub

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/lockerd/lockerd/sync/hub/alarm"
	"github.com/lockerd/lockerd/sync/hub/auth"
	"github.com/lockerd/lockerd/sync/hub/circulation"
	"github.com/lockerd/lockerd/sync/hub/fleet"
	"github.com/lockerd/lockerd/sync/hub/webhook"
	"github.com/lockerd/lockerd/sync/protocol"
)

// maxBody bounds a request's body: an order with 50 items is a few KB.
const maxBody = 1 << 20

// Handler is the hub's HTTP API. Every /v1/ route needs a bearer token
// with its scope (401 without one or with a revoked one, 403 with the
// wrong scope, as JSON errors that never repeat the token); every
// state-changing request is written to the audit log, with who, what
// and from where. /healthz and /metrics need no token.
func (h *Hub) Handler() http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern, scope string, fn http.HandlerFunc) {
		mux.Handle(pattern, h.authorize(scope, fn))
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		reply(w, map[string]bool{"ok": true, "broker": h.Connected()}, nil)
	})
	mux.Handle("GET /metrics", h.metrics.handler())
	// Lockers fetch a release's binary without a token: its manifest,
	// signed, says what it must be; ranges let a download resume.
	mux.HandleFunc("GET /v1/releases/{version}/{arch}/binary", func(w http.ResponseWriter, r *http.Request) {
		p, err := h.fleet.ArtifactPath(r.PathValue("version"), r.PathValue("arch"))
		if err != nil {
			deny(w, http.StatusNotFound, err.Error())
			return
		}
		f, err := os.Open(p)
		if err != nil {
			deny(w, http.StatusNotFound, "no such release")
			return
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			deny(w, http.StatusInternalServerError, err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		http.ServeContent(w, r, "lockerd", st.ModTime(), f)
	})
	// A blank cabinet has no API token: its provisioning token, in the
	// body, is its credential (checked, used up and audited by Provision).
	mux.HandleFunc("POST /v1/provision", func(w http.ResponseWriter, r *http.Request) {
		from := h.clientAddr(r)
		if !h.provisions.Allow(from, time.Now()) {
			deny(w, http.StatusTooManyRequests, "too many provisioning attempts from this address: wait a minute")
			return
		}
		var req protocol.ProvisionRequest
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil {
			deny(w, http.StatusBadRequest, "want {locker, token, public_key}")
			return
		}
		rep, err := h.fleet.Provision(req, from, time.Now())
		var pe *fleet.ProvisionError
		if errors.As(err, &pe) {
			deny(w, pe.Status, pe.Msg)
			return
		}
		reply(w, rep, err)
	})
	mux.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		// Before the token: a route that does not exist says so only to
		// a caller with a token.
		if _, err := h.Authenticate(bearer(r)); err != nil {
			deny(w, http.StatusUnauthorized, err.Error())
			return
		}
		deny(w, http.StatusNotFound, "no such route: "+r.Method+" "+r.URL.Path)
	})
	h.routes(handle)
	return mux
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
func (h *Hub) authorize(scope string, next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, err := h.Authenticate(bearer(r))
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
				h.Audit(auth.AuditRec{Who: tok.Name, Action: r.Method + " " + r.URL.Path, From: h.clientAddr(r), Status: http.StatusForbidden})
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
			h.Audit(auth.AuditRec{Who: tok.Name, Action: r.Method + " " + r.URL.Path, Detail: fmt.Sprintf("%d bytes", r.ContentLength), From: h.clientAddr(r), Status: rec.status})
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
		h.Audit(auth.AuditRec{Who: tok.Name, Action: r.Method + " " + r.URL.Path, Detail: redact(raw), From: h.clientAddr(r), Status: rec.status})
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

// clientAddr is where a request came from (ClientAddr with the hub's
// BehindProxy).
func (h *Hub) clientAddr(r *http.Request) string { return ClientAddr(r, h.cfg.BehindProxy) }

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

// routes registers the API's routes with the scope each needs.
func (h *Hub) routes(handle func(pattern, scope string, fn http.HandlerFunc)) {
	handle("GET /v1/lockers", auth.ScopeRead, func(w http.ResponseWriter, r *http.Request) {
		ls, err := h.Lockers()
		reply(w, page(ls, limitOf(r), func(l LockerInfo) bool { return l.ID > r.URL.Query().Get("after") }), err)
	})
	handle("POST /v1/lockers", auth.ScopeAdmin, func(w http.ResponseWriter, r *http.Request) {
		var req struct{ ID string }
		if !read(w, r, &req) {
			return
		}
		reply(w, map[string]string{"id": req.ID}, h.AddLocker(req.ID, "api"))
	})
	handle("GET /v1/orders", auth.ScopeRead, func(w http.ResponseWriter, r *http.Request) {
		os, err := h.Orders(r.URL.Query().Get("locker"))
		after, _ := strconv.ParseUint(r.URL.Query().Get("after"), 10, 64)
		reply(w, page(os, limitOf(r), func(o OrderRec) bool { return o.Rev > after }), err)
	})
	handle("POST /v1/orders", auth.ScopeOrders, func(w http.ResponseWriter, r *http.Request) {
		var req NewOrder
		if !read(w, r, &req) {
			return
		}
		c, err := h.CreateOrder(req)
		w.Header().Set("Cache-Control", "no-store")
		reply(w, c, err)
	})
	handle("POST /v1/cancel", auth.ScopeOrders, func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Locker, OrderID string }
		if !read(w, r, &req) {
			return
		}
		rev, err := h.CancelOrder(req.Locker, req.OrderID)
		reply(w, map[string]any{"rev": rev}, err)
	})
	handle("POST /v1/snapshot", auth.ScopeOrders, func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Locker   string
			PartSize int
		}
		if !read(w, r, &req) {
			return
		}
		id, parts, err := h.Snapshot(req.Locker, req.PartSize)
		reply(w, map[string]any{"snap_id": id, "parts": parts}, err)
	})
	handle("POST /v1/open", auth.ScopeOpen, func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Locker, Compartment, Reason string }
		if !read(w, r, &req) {
			return
		}
		if !h.opens.Allow(Caller(r.Context()).ID, time.Now()) {
			deny(w, http.StatusTooManyRequests, fmt.Sprintf("too many remote opens for this token: at most %d at once, then one every %v", openBurst, openEvery))
			return
		}
		id, err := h.Open(req.Locker, req.Compartment, req.Reason)
		reply(w, map[string]any{"cmd_id": id}, err)
	})
	handle("POST /v1/badges", auth.ScopeAdmin, func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Locker string
			// Add may give a badge's Code instead of its Hash: it is
			// hashed here and never stored.
			Add    []struct{ Name, Role, Hash, Code string }
			Revoke []protocol.BadgeRef
		}
		if !read(w, r, &req) {
			return
		}
		ch := protocol.CmdBadges{Revoke: req.Revoke}
		for _, b := range req.Add {
			if b.Code != "" {
				hash, err := h.BadgeHash(b.Code)
				if err != nil {
					reply(w, nil, err)
					return
				}
				b.Hash = hash
			}
			ch.Add = append(ch.Add, protocol.BadgeSpec{Name: b.Name, Hash: b.Hash, Role: b.Role})
		}
		id, err := h.Badges(req.Locker, ch)
		reply(w, map[string]any{"cmd_id": id}, err)
	})
	handle("POST /v1/config", auth.ScopeAdmin, func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Locker, Config string
			Rollback       bool   // push an earlier version again
			To             uint64 // with Rollback: that version (0: the one applied before the last)
		}
		if !read(w, r, &req) {
			return
		}
		var v fleet.ConfigVersion
		var err error
		if req.Rollback {
			v, err = h.fleet.RollbackConfig(req.Locker, req.To, Caller(r.Context()).Name)
		} else {
			v, err = h.fleet.PushConfig(req.Locker, []byte(req.Config), Caller(r.Context()).Name, "")
		}
		reply(w, v, err)
	})
	handle("GET /v1/config", auth.ScopeRead, func(w http.ResponseWriter, r *http.Request) {
		hist, err := h.fleet.ConfigHistory(r.URL.Query().Get("locker"))
		reply(w, hist, err)
	})
	handle("PUT /v1/releases/{version}/{arch}", auth.ScopeAdmin, func(w http.ResponseWriter, r *http.Request) {
		body := http.MaxBytesReader(w, r.Body, fleet.MaxBinary+1)
		var m protocol.Manifest
		var err error
		if signed := r.Header.Get(fleet.ManifestHeader); signed != "" {
			// Signed with the release key, where it is kept.
			raw, derr := base64.StdEncoding.DecodeString(signed)
			if derr != nil || len(raw) > fleet.MaxManifest {
				reply(w, nil, fmt.Errorf("%s: want a base64 signed manifest of at most %d bytes", fleet.ManifestHeader, fleet.MaxManifest))
				return
			}
			m, err = h.fleet.AddSignedArtifact(r.PathValue("version"), r.PathValue("arch"), body, raw, Caller(r.Context()).Name)
		} else {
			m, err = h.fleet.AddArtifact(r.PathValue("version"), r.PathValue("arch"), body, r.URL.Query().Get("rollback") == "1", Caller(r.Context()).Name)
		}
		reply(w, m, err)
	})
	handle("GET /v1/releases", auth.ScopeRead, func(w http.ResponseWriter, r *http.Request) {
		rels, err := h.fleet.Releases()
		reply(w, rels, err)
	})
	handle("POST /v1/rollouts", auth.ScopeAdmin, func(w http.ResponseWriter, r *http.Request) {
		var req fleet.NewRollout
		if !read(w, r, &req) {
			return
		}
		ro, err := h.fleet.StartRollout(req, Caller(r.Context()).Name)
		reply(w, ro, err)
	})
	handle("GET /v1/rollouts", auth.ScopeRead, func(w http.ResponseWriter, r *http.Request) {
		ros, err := h.fleet.Rollouts()
		reply(w, ros, err)
	})
	handle("POST /v1/provision/tokens", auth.ScopeAdmin, func(w http.ResponseWriter, r *http.Request) {
		var req fleet.NewProvisionToken
		if !read(w, r, &req) {
			return
		}
		created, err := h.fleet.CreateProvisionToken(req, Caller(r.Context()).Name)
		reply(w, created, err)
	})
	handle("POST /v1/provision/revoke", auth.ScopeAdmin, func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Locker, Reason string }
		if !read(w, r, &req) {
			return
		}
		c, err := h.fleet.RevokeLocker(req.Locker, Caller(r.Context()).Name, req.Reason, time.Now())
		c.Hash = ""
		reply(w, c, err)
	})
	handle("GET /v1/provision/tokens", auth.ScopeAdmin, func(w http.ResponseWriter, r *http.Request) {
		toks, err := h.fleet.ProvisionTokens()
		reply(w, toks, err)
	})
	handle("GET /v1/commands/{id}", auth.ScopeRead, func(w http.ResponseWriter, r *http.Request) {
		rec, err := h.Command(r.PathValue("id"))
		reply(w, rec, err)
	})
	handle("GET /v1/events", auth.ScopeRead, func(w http.ResponseWriter, r *http.Request) {
		after, err := ParseCursor(r.URL.Query().Get("after"))
		if err != nil {
			reply(w, nil, err)
			return
		}
		evs, err := h.Events(r.URL.Query().Get("locker"), after, limitOf(r))
		reply(w, evs, err)
	})
	handle("GET /v1/alarms", auth.ScopeRead, func(w http.ResponseWriter, r *http.Request) {
		after, _ := strconv.ParseUint(r.URL.Query().Get("after"), 10, 64)
		var as []alarm.Alarm
		var err error
		switch r.URL.Query().Get("state") {
		case "":
			as, err = h.Alarms(after)
		case "open":
			as, err = h.OpenAlarms()
		default:
			err = errors.New("state: open, or none for every alarm")
		}
		reply(w, page(as, limitOf(r), func(a alarm.Alarm) bool { return a.Seq > after }), err)
	})
	handle("POST /v1/alarms/{seq}/ack", auth.ScopeOrders, func(w http.ResponseWriter, r *http.Request) {
		seq, _ := strconv.ParseUint(r.PathValue("seq"), 10, 64)
		a, err := h.AckAlarm(seq, Caller(r.Context()).Name)
		reply(w, a, err)
	})
	handle("POST /v1/alarms/{seq}/resolve", auth.ScopeOrders, func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Note string }
		if !read(w, r, &req) {
			return
		}
		seq, _ := strconv.ParseUint(r.PathValue("seq"), 10, 64)
		a, err := h.ResolveAlarm(seq, Caller(r.Context()).Name, req.Note)
		reply(w, a, err)
	})
	handle("GET /v1/circulation", auth.ScopeRead, func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		after, _ := strconv.ParseUint(q.Get("after"), 10, 64)
		cs, err := h.Circulation(circulation.CircFilter{Locker: q.Get("locker"), State: q.Get("state"), After: after, Limit: limitOf(r)})
		reply(w, cs, err)
	})
	handle("GET /v1/circulation/status", auth.ScopeRead, func(w http.ResponseWriter, r *http.Request) {
		st, err := h.ILSStatus()
		reply(w, st, err)
	})
	handle("POST /v1/circulation/{id}/retry", auth.ScopeOrders, func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
		if err != nil {
			reply(w, nil, fmt.Errorf("transaction id %q: want a number", r.PathValue("id")))
			return
		}
		c, err := h.RetryCirc(id)
		reply(w, c, err)
	})
	handle("POST /v1/circulation/{id}/resolve", auth.ScopeOrders, func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Note string }
		if !read(w, r, &req) {
			return
		}
		id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
		if err != nil {
			reply(w, nil, fmt.Errorf("transaction id %q: want a number", r.PathValue("id")))
			return
		}
		c, err := h.ResolveCirc(id, req.Note)
		reply(w, c, err)
	})
	handle("GET /v1/tokens", auth.ScopeAdmin, func(w http.ResponseWriter, r *http.Request) {
		ts, err := h.Tokens()
		reply(w, ts, err)
	})
	handle("POST /v1/tokens", auth.ScopeAdmin, func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Name   string   `json:"name"`
			Scopes []string `json:"scopes"`
		}
		if !read(w, r, &req) {
			return
		}
		secret, tok, err := h.CreateToken(req.Name, req.Scopes, Caller(r.Context()).Name)
		tok.Hash = ""
		w.Header().Set("Cache-Control", "no-store")
		reply(w, map[string]any{"token": secret, "record": tok}, err)
	})
	handle("POST /v1/tokens/{id}/revoke", auth.ScopeAdmin, func(w http.ResponseWriter, r *http.Request) {
		tok, err := h.RevokeToken(r.PathValue("id"))
		tok.Hash = ""
		reply(w, tok, err)
	})
	handle("GET /v1/webhooks", auth.ScopeAdmin, func(w http.ResponseWriter, r *http.Request) {
		ws, err := h.Webhooks()
		reply(w, ws, err)
	})
	handle("POST /v1/webhooks", auth.ScopeAdmin, func(w http.ResponseWriter, r *http.Request) {
		var req webhook.NewWebhook
		if !read(w, r, &req) {
			return
		}
		wh, err := h.AddWebhook(req)
		reply(w, wh, err)
	})
	handle("POST /v1/webhooks/{id}/remove", auth.ScopeAdmin, func(w http.ResponseWriter, r *http.Request) {
		reply(w, map[string]string{"removed": r.PathValue("id")}, h.RemoveWebhook(r.PathValue("id")))
	})
	handle("GET /v1/webhooks/failed", auth.ScopeAdmin, func(w http.ResponseWriter, r *http.Request) {
		ds, err := h.FailedDeliveries()
		reply(w, ds, err)
	})
	handle("POST /v1/webhooks/deliveries/{id}/redeliver", auth.ScopeAdmin, func(w http.ResponseWriter, r *http.Request) {
		id, _ := strconv.ParseUint(r.PathValue("id"), 10, 64)
		d, err := h.Redeliver(id)
		reply(w, d, err)
	})
	handle("GET /v1/users", auth.ScopeAdmin, func(w http.ResponseWriter, r *http.Request) {
		us, err := h.Users()
		reply(w, us, err)
	})
	handle("POST /v1/users", auth.ScopeAdmin, func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Name, Role, Password string }
		if !read(w, r, &req) {
			return
		}
		r.Body = http.NoBody
		u, err := h.AddUser(req.Name, req.Role, req.Password)
		reply(w, u, err)
	})
	handle("POST /v1/users/{name}/disable", auth.ScopeAdmin, func(w http.ResponseWriter, r *http.Request) {
		reply(w, map[string]string{"disabled": r.PathValue("name")}, h.DisableUser(r.PathValue("name")))
	})
	handle("GET /v1/audit", auth.ScopeAdmin, func(w http.ResponseWriter, r *http.Request) {
		after, _ := strconv.ParseUint(r.URL.Query().Get("after"), 10, 64)
		as, err := h.AuditLog(after, limitOf(r))
		if as == nil {
			as = []auth.AuditRec{}
		}
		reply(w, as, err)
	})
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

// ParseCursor reads an events cursor: "EPOCH.SEQ", or "SEQ" for the first
// store, or "" for the start.
func ParseCursor(s string) (Cursor, error) {
	if s == "" {
		return Cursor{}, nil
	}
	ep, seq, dotted := strings.Cut(s, ".")
	if !dotted {
		ep, seq = "1", s
	}
	e, err1 := strconv.ParseUint(ep, 10, 32)
	n, err2 := strconv.ParseUint(seq, 10, 64)
	if err1 != nil || err2 != nil {
		return Cursor{}, fmt.Errorf("after %q: want SEQ or EPOCH.SEQ", s)
	}
	return Cursor{Epoch: uint32(e), Seq: n}, nil
}

// String is the cursor as ParseCursor reads it.
func (c Cursor) String() string { return fmt.Sprintf("%d.%d", c.Epoch, c.Seq) }

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
