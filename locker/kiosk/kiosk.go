package kiosk

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"sort"
	"time"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/locker/sse"
)

//go:embed assets
var assets embed.FS

// Config is what the page shows besides live state.
type Config struct {
	LockerID    string
	Site        string
	OrderURL    string // the library's ordering page, shown as a QR code
	HelpText    string // where to go when this locker cannot serve
	DefaultLang string // zh-CN or en
	Columns     int    // cabinet drawing width when positions are not given
	IdleTimeout time.Duration
	Positions   map[string][2]int // compartment id → row, col (1-based), from the config
	HasReturn   bool
}

// Handler serves the kiosk page and its API under / and /kiosk/.
// Locker is what the kiosk asks of the locker core; *locker.Locker is one.
type Locker interface {
	LiveStatus() (locker.Status, error)
	StoreHealthy() bool
	Orders() ([]locker.Order, error)
	Bin() (locker.BinState, error)
	Scan(ctx context.Context, device, text string) (locker.ScanResult, error)
	EnterPIN(ctx context.Context, pin string) locker.ScanResult
	Subscribe() (<-chan locker.Event, func())
	SubscribeNotices() (<-chan locker.Notice, func())
}

type Handler struct {
	cfg Config
	l   Locker
	log *slog.Logger
	qr  []byte
	mux *http.ServeMux
}

// New builds the kiosk handler; the order-page QR code is rendered once.
func New(cfg Config, l Locker, log *slog.Logger) (*Handler, error) {
	h := &Handler{cfg: cfg, l: l, log: log, mux: http.NewServeMux()}
	if cfg.OrderURL != "" {
		png, err := qrcode.Encode(cfg.OrderURL, qrcode.Medium, 320)
		if err != nil {
			return nil, fmt.Errorf("kiosk QR code: %w", err)
		}
		h.qr = png
	}
	static, err := fs.Sub(assets, "assets")
	if err != nil {
		return nil, err
	}
	files := http.FileServerFS(static)
	h.mux.Handle("GET /kiosk/assets/", http.StripPrefix("/kiosk/assets/", files))
	h.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		http.ServeFileFS(w, r, static, "index.html")
	})
	h.mux.HandleFunc("GET /kiosk/config", h.config)
	h.mux.HandleFunc("GET /kiosk/qr.png", h.qrPNG)
	h.mux.HandleFunc("GET /kiosk/state", h.state)
	h.mux.HandleFunc("POST /kiosk/code", h.code)
	h.mux.HandleFunc("POST /kiosk/pin", h.pin)
	h.mux.HandleFunc("GET /kiosk/stream", h.stream)
	return h, nil
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The page is self-contained: it may load nothing from elsewhere.
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'")
	h.mux.ServeHTTP(w, r)
}

func reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// Cell is one compartment in the cabinet drawing.
type Cell struct {
	ID   string      `json:"id"`
	Size locker.Size `json:"size"`
	Row  int         `json:"row"`
	Col  int         `json:"col"`
}

// PageConfig is GET /kiosk/config.
type PageConfig struct {
	LockerID      string `json:"locker_id"`
	Site          string `json:"site"`
	DefaultLang   string `json:"default_lang"`
	HelpText      string `json:"help_text"`
	HasOrderQR    bool   `json:"has_order_qr"`
	HasReturn     bool   `json:"has_return"`
	IdleTimeoutMS int64  `json:"idle_timeout_ms"`
	Columns       int    `json:"columns"`
	Cells         []Cell `json:"cells"`
}

// layout places compartments: configured positions first, the rest in
// order, left to right, in rows of Columns.
func (h *Handler) layout(comps []locker.CompartmentStatus) ([]Cell, int) {
	cols := max(h.cfg.Columns, 1)
	taken := map[[2]int]bool{}
	var cells []Cell
	for _, c := range comps {
		if p, ok := h.cfg.Positions[c.ID]; ok && p[0] > 0 && p[1] > 0 {
			cells = append(cells, Cell{ID: c.ID, Size: c.Size, Row: p[0], Col: p[1]})
			taken[p] = true
			cols = max(cols, p[1])
		}
	}
	next := 0
	for _, c := range comps {
		if p, ok := h.cfg.Positions[c.ID]; ok && p[0] > 0 && p[1] > 0 {
			continue
		}
		for {
			pos := [2]int{next/cols + 1, next%cols + 1}
			next++
			if !taken[pos] {
				cells = append(cells, Cell{ID: c.ID, Size: c.Size, Row: pos[0], Col: pos[1]})
				taken[pos] = true
				break
			}
		}
	}
	sort.Slice(cells, func(i, j int) bool {
		if cells[i].Row != cells[j].Row {
			return cells[i].Row < cells[j].Row
		}
		return cells[i].Col < cells[j].Col
	})
	return cells, cols
}

func (h *Handler) config(w http.ResponseWriter, r *http.Request) {
	st, err := h.l.LiveStatus()
	if err != nil {
		reply(w, http.StatusInternalServerError, map[string]string{"error": "store"})
		return
	}
	cells, cols := h.layout(st.Compartments)
	reply(w, http.StatusOK, PageConfig{LockerID: h.cfg.LockerID, Site: h.cfg.Site, DefaultLang: h.cfg.DefaultLang,
		HelpText: h.cfg.HelpText, HasOrderQR: h.qr != nil, HasReturn: h.cfg.HasReturn,
		IdleTimeoutMS: h.cfg.IdleTimeout.Milliseconds(), Columns: cols, Cells: cells})
}

func (h *Handler) qrPNG(w http.ResponseWriter, r *http.Request) {
	if h.qr == nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Write(h.qr)
}

// StaffItem is one line of the staff view.
type StaffItem struct {
	OrderID     string      `json:"order_id"`
	Size        locker.Size `json:"size,omitempty"`
	Compartment string      `json:"compartment,omitempty"`
}

// State is GET /kiosk/state: can the locker serve, and the staff view.
type State struct {
	Serving    bool                               `json:"serving"`
	Reason     string                             `json:"reason,omitempty"` // store | no_compartment | hardware
	Staff      bool                               `json:"staff"`
	ToLoad     []StaffItem                        `json:"to_load,omitempty"`
	ToRetrieve []StaffItem                        `json:"to_retrieve,omitempty"`
	Doors      map[string]bool                    `json:"doors"`             // open doors
	Unknown    []string                           `json:"unknown,omitempty"` // doors that cannot be read now
	States     map[string]locker.CompartmentState `json:"states"`
	// Bin is the return bin for the staff: items in it, and what the last
	// emptying collected.
	Bin *locker.BinState `json:"bin,omitempty"`
}

func (h *Handler) readState() State {
	st, err := h.l.LiveStatus()
	if err != nil {
		h.log.Error("kiosk state", "err", err)
		return State{Reason: "store"}
	}
	s := State{Staff: len(st.StaffOn) > 0, Doors: map[string]bool{}, States: map[string]locker.CompartmentState{}}
	inService := false
	for _, c := range st.Compartments {
		s.States[c.ID] = c.Effective
		if c.DoorOpen {
			s.Doors[c.ID] = true
		}
		if c.DoorUnknown {
			s.Unknown = append(s.Unknown, c.ID)
		}
		if !c.OutOfService {
			inService = true
			// A door that cannot be read sits behind a lock board that
			// does not answer: it cannot be opened either.
			if !c.DoorUnknown {
				s.Serving = true
			}
		}
	}
	switch {
	case !inService:
		s.Reason = "no_compartment"
	case !s.Serving:
		s.Reason = "hardware"
	}
	if !h.l.StoreHealthy() {
		s.Serving, s.Reason = false, "store"
	}
	if s.Staff {
		orders, err := h.l.Orders()
		if err != nil {
			return State{Reason: "store"}
		}
		if h.cfg.HasReturn {
			bin, err := h.l.Bin()
			if err != nil {
				return State{Reason: "store"}
			}
			s.Bin = &bin
		}
		for _, o := range orders {
			switch {
			case o.State == locker.OrderAssigned:
				s.ToLoad = append(s.ToLoad, StaffItem{OrderID: o.ID, Size: o.Size, Compartment: o.Assigned})
			case o.NeedsRetrieval():
				for _, c := range o.Compartments {
					s.ToRetrieve = append(s.ToRetrieve, StaffItem{OrderID: o.ID, Compartment: c})
				}
			}
		}
	}
	return s
}

func (h *Handler) state(w http.ResponseWriter, r *http.Request) {
	reply(w, http.StatusOK, h.readState())
}

// code takes a code typed on the on-screen keypad. The reply says what
// happened, never the code.
func (h *Handler) code(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Code string `json:"code"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil {
		reply(w, http.StatusBadRequest, map[string]string{"error": "bad request"})
		return
	}
	res, err := h.l.Scan(r.Context(), locker.KeypadDevice, req.Code)
	if err != nil {
		// The screen says the locker could not serve; the cause (a path,
		// a store error) is for the log only.
		h.log.Error("keypad code not handled", "err", err)
		reply(w, http.StatusInternalServerError, map[string]string{"error": "could not be served"})
		return
	}
	reply(w, http.StatusOK, res)
}

// pin takes the PIN typed for the library card scanned last. The reply
// says what happened, never the PIN.
func (h *Handler) pin(w http.ResponseWriter, r *http.Request) {
	var req struct {
		PIN string `json:"pin"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1024)).Decode(&req); err != nil {
		reply(w, http.StatusBadRequest, map[string]string{"error": "bad request"})
		return
	}
	reply(w, http.StatusOK, h.l.EnterPIN(r.Context(), req.PIN))
}

// stream sends Server-Sent Events: "evt" for each event committed from now
// on, "notice" for live notices (staff sessions).
func (h *Handler) stream(w http.ResponseWriter, r *http.Request) {
	events, stopE := h.l.Subscribe()
	defer stopE()
	notices, stopN := h.l.SubscribeNotices()
	defer stopN()
	sse.Serve(w, r, nil,
		sse.From(events, func(e locker.Event) (sse.Message, bool) { return sse.Message{Kind: "evt", Data: e}, true }),
		sse.From(notices, func(n locker.Notice) (sse.Message, bool) { return sse.Message{Kind: "notice", Data: n}, true }))
}
