package hub

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Handler is the hub's local HTTP API (loopback), used by the lockerhub
// command line.
func (h *Hub) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/lockers", func(w http.ResponseWriter, r *http.Request) {
		ls, err := h.Lockers()
		reply(w, page(ls, limitOf(r), func(l LockerInfo) bool { return l.ID > r.URL.Query().Get("after") }), err)
	})
	mux.HandleFunc("POST /v1/lockers", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ ID string }
		if !read(w, r, &req) {
			return
		}
		reply(w, map[string]string{"id": req.ID}, h.AddLocker(req.ID, "api"))
	})
	mux.HandleFunc("GET /v1/orders", func(w http.ResponseWriter, r *http.Request) {
		os, err := h.Orders(r.URL.Query().Get("locker"))
		after, _ := strconv.ParseUint(r.URL.Query().Get("after"), 10, 64)
		reply(w, page(os, limitOf(r), func(o OrderRec) bool { return o.Rev > after }), err)
	})
	mux.HandleFunc("POST /v1/orders", func(w http.ResponseWriter, r *http.Request) {
		var req NewOrder
		if !read(w, r, &req) {
			return
		}
		c, err := h.CreateOrder(req)
		w.Header().Set("Cache-Control", "no-store")
		reply(w, c, err)
	})
	mux.HandleFunc("POST /v1/cancel", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Locker, OrderID string }
		if !read(w, r, &req) {
			return
		}
		rev, err := h.CancelOrder(req.Locker, req.OrderID)
		reply(w, map[string]any{"rev": rev}, err)
	})
	mux.HandleFunc("POST /v1/snapshot", func(w http.ResponseWriter, r *http.Request) {
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
	mux.HandleFunc("POST /v1/open", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Locker, Compartment, Reason string }
		if !read(w, r, &req) {
			return
		}
		id, err := h.Open(req.Locker, req.Compartment, req.Reason)
		reply(w, map[string]any{"cmd_id": id}, err)
	})
	mux.HandleFunc("GET /v1/commands/{id}", func(w http.ResponseWriter, r *http.Request) {
		rec, err := h.Command(r.PathValue("id"))
		reply(w, rec, err)
	})
	mux.HandleFunc("GET /v1/events", func(w http.ResponseWriter, r *http.Request) {
		after, err := ParseCursor(r.URL.Query().Get("after"))
		if err != nil {
			reply(w, nil, err)
			return
		}
		evs, err := h.Events(r.URL.Query().Get("locker"), after, limitOf(r))
		reply(w, evs, err)
	})
	mux.HandleFunc("GET /v1/alarms", func(w http.ResponseWriter, r *http.Request) {
		after, _ := strconv.ParseUint(r.URL.Query().Get("after"), 10, 64)
		as, err := h.Alarms(after)
		reply(w, page(as, limitOf(r), func(Alarm) bool { return true }), err)
	})
	mux.HandleFunc("GET /v1/circulation", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		after, _ := strconv.ParseUint(q.Get("after"), 10, 64)
		cs, err := h.Circulation(CircFilter{Locker: q.Get("locker"), State: q.Get("state"), After: after, Limit: limitOf(r)})
		reply(w, cs, err)
	})
	mux.HandleFunc("POST /v1/circulation/{id}/retry", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
		if err != nil {
			reply(w, nil, fmt.Errorf("transaction id %q: want a number", r.PathValue("id")))
			return
		}
		c, err := h.RetryCirc(id)
		reply(w, c, err)
	})
	mux.HandleFunc("POST /v1/circulation/{id}/resolve", func(w http.ResponseWriter, r *http.Request) {
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
	mux.Handle("GET /metrics", h.metrics.handler())
	return mux
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
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(v); err != nil {
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
