package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/locker/sse"
)

// Locker is what the API asks of the locker core; *locker.Locker is one.
type Locker interface {
	Status() (locker.Status, error)
	OrdersPage(after string, limit int) ([]locker.Order, error)
	CreateOrder(n locker.NewOrder) (locker.Order, string, error)
	Events(after uint64, limit int) ([]locker.Event, error)
	Subscribe() (<-chan locker.Event, func())
	Scan(ctx context.Context, device, text string) (locker.ScanResult, error)
	MaintenanceOpen(ctx context.Context, compartment, reason string) (locker.ScanResult, error)
	SetService(compartment string, inService bool, reason string) error
	Badges() ([]locker.Badge, error)
}

// Handler serves the API for one Locker.
type Handler struct {
	L   Locker
	Log *slog.Logger
	mux *http.ServeMux
}

// New builds the handler. Other routes under /v1/ (the simulator's) are
// mounted beside it by whoever assembles the daemon.
func New(l Locker, log *slog.Logger) *Handler {
	h := &Handler{L: l, Log: log, mux: http.NewServeMux()}
	h.mux.HandleFunc("GET /v1/status", h.status)
	h.mux.HandleFunc("GET /v1/orders", h.orders)
	h.mux.HandleFunc("GET /v1/badges", h.badges)
	h.mux.HandleFunc("POST /v1/orders", h.addOrder)
	h.mux.HandleFunc("GET /v1/events", h.events)
	h.mux.HandleFunc("GET /v1/events/stream", h.stream)
	h.mux.HandleFunc("POST /v1/scan", h.scan)
	h.mux.HandleFunc("POST /v1/open", h.open)
	h.mux.HandleFunc("POST /v1/service", h.service)
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// Error is the body of every non-2xx reply.
type Error struct {
	Error string `json:"error"`
}

func reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, code int, err error) { reply(w, code, Error{Error: err.Error()}) }

func readJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("bad request body: %w", err)
	}
	return nil
}

func (h *Handler) status(w http.ResponseWriter, r *http.Request) {
	st, err := h.L.Status()
	if err != nil {
		fail(w, http.StatusInternalServerError, err)
		return
	}
	reply(w, http.StatusOK, st)
}

// badges lists the badges known here (names, roles, revoked or not;
// hashes of badge codes, never the codes).
func (h *Handler) badges(w http.ResponseWriter, r *http.Request) {
	bs, err := h.L.Badges()
	if err != nil {
		fail(w, http.StatusInternalServerError, err)
		return
	}
	if bs == nil {
		bs = []locker.Badge{}
	}
	reply(w, http.StatusOK, bs)
}

// OrderView is an order as listed: the code hash is left out.
type OrderView struct {
	locker.Order
	CodeHash string `json:"code_hash,omitempty"`
}

// Orders are listed in pages: ?after=ORDER_ID&limit=N (at most 1000, 500
// by default), in id order.
const (
	defaultPage = 500
	maxPage     = 1000
)

func (h *Handler) orders(w http.ResponseWriter, r *http.Request) {
	limit, err := strconv.Atoi(r.URL.Query().Get("limit"))
	if err != nil || limit <= 0 {
		limit = defaultPage
	}
	os, err := h.L.OrdersPage(r.URL.Query().Get("after"), min(limit, maxPage))
	if err != nil {
		fail(w, http.StatusInternalServerError, err)
		return
	}
	out := make([]OrderView, len(os))
	for i, o := range os {
		out[i] = OrderView{Order: o}
	}
	reply(w, http.StatusOK, out)
}

// AddOrderRequest creates an order (lockerctl orders add).
type AddOrderRequest struct {
	ID          string        `json:"id,omitempty"`
	Size        string        `json:"size,omitempty"`
	Compartment string        `json:"compartment,omitempty"`
	Items       []locker.Item `json:"items,omitempty"`
	TTL         string        `json:"ttl,omitempty"` // Go duration, default 72h
	// Assigned registers the order for staff to load instead of ready.
	Assigned bool `json:"assigned,omitempty"`
}

// AddOrderReply carries the pickup code: the only time it is shown.
type AddOrderReply struct {
	Order locker.Order `json:"order"`
	Code  string       `json:"code"`
}

func (h *Handler) addOrder(w http.ResponseWriter, r *http.Request) {
	var req AddOrderRequest
	if err := readJSON(r, &req); err != nil {
		fail(w, http.StatusBadRequest, err)
		return
	}
	ttl := 72 * time.Hour
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil {
			fail(w, http.StatusBadRequest, fmt.Errorf("ttl: %w", err))
			return
		}
		ttl = d
	}
	o, code, err := h.L.CreateOrder(locker.NewOrder{ID: req.ID, Size: locker.Size(strings.ToUpper(req.Size)),
		Compartment: req.Compartment, Items: req.Items, TTL: ttl, Assigned: req.Assigned})
	if err != nil {
		fail(w, http.StatusConflict, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	reply(w, http.StatusCreated, AddOrderReply{Order: o, Code: code})
}

func (h *Handler) events(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	after, _ := strconv.ParseUint(q.Get("after"), 10, 64)
	limit, _ := strconv.Atoi(q.Get("limit"))
	if limit <= 0 || limit > 10000 {
		limit = 1000
	}
	evs, err := h.L.Events(after, limit)
	if err != nil {
		fail(w, http.StatusInternalServerError, err)
		return
	}
	if evs == nil {
		evs = []locker.Event{}
	}
	reply(w, http.StatusOK, evs)
}

// stream sends events as Server-Sent Events: first those still in the
// outbox after ?after=, then every event as it is committed. (The outbox
// loses events once the central library acks them; the stream does not.)
func (h *Handler) stream(w http.ResponseWriter, r *http.Request) {
	live, stop := h.L.Subscribe() // before reading the outbox: nothing falls between
	defer stop()
	after, _ := strconv.ParseUint(r.URL.Query().Get("after"), 10, 64)
	// Events already sent (from the outbox, then live) are skipped: the
	// live channel holds some of what the outbox read gave. Both callbacks
	// run on Serve's goroutine one after the other, then on the source's.
	message := func(e locker.Event) (sse.Message, bool) {
		if e.Seq <= after {
			return sse.Message{}, false
		}
		after = e.Seq
		return sse.Message{ID: strconv.FormatUint(e.Seq, 10), Data: e}, true
	}
	outbox := func(send func(sse.Message) error) error {
		for {
			evs, err := h.L.Events(after, 1000)
			if err != nil {
				return err
			}
			for _, e := range evs {
				if m, ok := message(e); ok {
					if err := send(m); err != nil {
						return err
					}
				}
			}
			if len(evs) < 1000 {
				return nil
			}
		}
	}
	sse.Serve(w, r, outbox, sse.From(live, message))
}

// ScanRequest injects a scan, as if read by the named scanner.
type ScanRequest struct {
	Scanner string `json:"scanner"`
	Text    string `json:"text"`
}

func (h *Handler) scan(w http.ResponseWriter, r *http.Request) {
	var req ScanRequest
	if err := readJSON(r, &req); err != nil {
		fail(w, http.StatusBadRequest, err)
		return
	}
	res, err := h.L.Scan(r.Context(), req.Scanner, req.Text)
	if err != nil {
		fail(w, http.StatusBadRequest, err)
		return
	}
	reply(w, http.StatusOK, res)
}

// OpenRequest is a technician's maintenance open.
type OpenRequest struct {
	Compartment string `json:"compartment"`
	Reason      string `json:"reason"`
}

func (h *Handler) open(w http.ResponseWriter, r *http.Request) {
	var req OpenRequest
	if err := readJSON(r, &req); err != nil {
		fail(w, http.StatusBadRequest, err)
		return
	}
	res, err := h.L.MaintenanceOpen(r.Context(), req.Compartment, req.Reason)
	if err != nil {
		fail(w, http.StatusBadRequest, err)
		return
	}
	reply(w, http.StatusOK, res)
}

// ServiceRequest takes a compartment out of service or back.
type ServiceRequest struct {
	Compartment string `json:"compartment"`
	InService   bool   `json:"in_service"`
	Reason      string `json:"reason,omitempty"`
}

func (h *Handler) service(w http.ResponseWriter, r *http.Request) {
	var req ServiceRequest
	if err := readJSON(r, &req); err != nil {
		fail(w, http.StatusBadRequest, err)
		return
	}
	if req.Reason == "" {
		req.Reason = "technician"
	}
	if err := h.L.SetService(req.Compartment, req.InService, req.Reason); err != nil {
		fail(w, http.StatusBadRequest, err)
		return
	}
	reply(w, http.StatusOK, req)
}

// Serve runs an HTTP server on ln's address until ctx ends.
func Serve(ctx context.Context, srv *http.Server, serve func() error) error {
	errc := make(chan error, 1)
	go func() { errc <- serve() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			return srv.Close() // what is still open after the grace period is cut
		}
		return nil
	}
}
