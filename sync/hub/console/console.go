package console

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lockerd/lockerd/sync/hub"
	"github.com/lockerd/lockerd/sync/hub/alarm"
	"github.com/lockerd/lockerd/sync/hub/api"
	"github.com/lockerd/lockerd/sync/hub/auth"
	"github.com/lockerd/lockerd/sync/hub/circulation"
	"github.com/lockerd/lockerd/sync/hub/notice"
	"github.com/lockerd/lockerd/sync/protocol"
)

//go:embed assets
var assets embed.FS

// Hub is what the console needs of the central, a small interface per
// part (ForHub: each is *hub.Hub's).
type Hub struct {
	Accounts
	Cabinets
	AlarmBoard
	CircQueue
	Told Told
	// Holds looks up a held item scanned at the desk (sync/hub/requests;
	// nil: the console has no scan form).
	Holds Holds
}

// ForHub is the console's Hub of hub h (Holds is set by whoever runs the
// requests service).
func ForHub(h *hub.Hub) Hub { return Hub{h.Auth(), h, h, h, h.Notices(), nil} }

// Told is what readers were told (sync/hub/notice): a page after a
// notice id, or one order's.
type Told interface {
	List(order string, after uint64, limit int) ([]notice.Notice, error)
}

// Holds finds whose hold a scanned item is and makes its order.
type Holds interface {
	Scan(ctx context.Context, lockerID string, req protocol.ReqHold) protocol.RespHold
}

// Accounts are the console's users, their sign-in, and the audit log.
type Accounts interface {
	SignIn(name, password string) (auth.User, error)
	ActiveUser(name string) (auth.User, bool)
	AuditLog(after uint64, limit int) ([]auth.AuditRec, error)
	Audit(a auth.AuditRec)
}

// Cabinets are the lockers, their orders and doors, as staff see them.
type Cabinets interface {
	Lockers() ([]hub.LockerInfo, error)
	KnownLockers() ([]hub.KnownLocker, error)
	Locker(id string) (hub.LockerInfo, error)
	Orders(lockerID string) ([]hub.OrderRec, error)
	RecentEvents(lockerID string, n int) ([]hub.StoredEvent, error)
	Open(lockerID, compartment, reason string) (string, error)
	Service(lockerID, compartment string, inService bool) (string, error)
	CreateOrder(req hub.NewOrder) (hub.Created, error)
	CancelOrder(lockerID, orderID string) (uint64, error)
}

// AlarmBoard is the alarms staff acknowledge and resolve.
type AlarmBoard interface {
	OpenAlarms() ([]alarm.Alarm, error)
	AckAlarm(seq uint64, by string) (alarm.Alarm, error)
	ResolveAlarm(seq uint64, by, note string) (alarm.Alarm, error)
}

// CircQueue is the SIP2 bridge's queue as staff work it.
type CircQueue interface {
	Circulation(f circulation.CircFilter) ([]circulation.CircRec, error)
	RetryCirc(id uint64) (circulation.CircRec, error)
	ResolveCirc(id uint64, note string) (circulation.CircRec, error)
}

// Console serves the web console under /console/.
type Console struct {
	h           Hub
	key         []byte // signs session cookies
	behindProxy bool
	log         *slog.Logger
	signins     *auth.RateLimiter // per address and per user name
	now         func() time.Time
}

// New makes the console. key signs its session cookies (derive it from
// the central's signing key, which every replica shares).
func New(h Hub, key []byte, behindProxy bool, log *slog.Logger) *Console {
	if log == nil {
		log = slog.Default()
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("lockerhub console sessions v1"))
	return &Console{h: h, key: mac.Sum(nil), behindProxy: behindProxy, log: log.With("component", "console"), now: time.Now,
		signins: &auth.RateLimiter{Burst: 5, Every: 12 * time.Second}}
}

const (
	cookieName  = "lockerhub_session"
	sessionLife = 12 * time.Hour
	maxBody     = 64 << 10
)

// session is what the cookie carries (signed, not secret).
type session struct {
	User string `json:"u"`
	Exp  int64  `json:"e"`
	CSRF string `json:"c"`
}

func (c *Console) sign(s session) string {
	raw, _ := json.Marshal(s)
	body := base64.RawURLEncoding.EncodeToString(raw)
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte(body))
	return body + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (c *Console) parse(v string) (session, bool) {
	body, sig, ok := strings.Cut(v, ".")
	if !ok || len(v) > 1024 {
		return session{}, false
	}
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte(body))
	want := base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	if !hmac.Equal([]byte(sig), []byte(want)) {
		return session{}, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(body)
	var s session
	if err != nil || json.Unmarshal(raw, &s) != nil || c.now().Unix() > s.Exp {
		return session{}, false
	}
	return s, true
}

// Handler serves the console's pages and its JSON calls.
func (c *Console) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(assets, "assets")
	files := http.FileServerFS(static)
	mux.Handle("GET /console/", http.StripPrefix("/console/", files))
	mux.HandleFunc("POST /console/api/signin", c.signIn)
	mux.HandleFunc("POST /console/api/signout", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := c.sameOrigin(r); !ok {
			fail(w, http.StatusForbidden, "cross-site request refused")
			return
		}
		http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/console/", MaxAge: -1, HttpOnly: true, Secure: c.secure(r), SameSite: http.SameSiteStrictMode})
		reply(w, map[string]bool{"ok": true}, nil)
	})
	get := func(path, role string, fn func(w http.ResponseWriter, r *http.Request, u auth.User)) {
		mux.Handle("GET "+path, c.authed(role, false, fn))
	}
	post := func(path, role string, fn func(w http.ResponseWriter, r *http.Request, u auth.User)) {
		mux.Handle("POST "+path, c.authed(role, true, fn))
	}
	get("/console/api/session", auth.RoleViewer, func(w http.ResponseWriter, r *http.Request, u auth.User) {
		s, _ := c.session(r)
		reply(w, map[string]string{"user": u.Name, "role": u.Role, "csrf": s.CSRF}, nil)
	})
	get("/console/api/fleet", auth.RoleViewer, c.fleet)
	get("/console/api/lockers/{id}", auth.RoleViewer, c.locker)
	post("/console/api/lockers/{id}/open", auth.RoleStaff, func(w http.ResponseWriter, r *http.Request, u auth.User) {
		var req struct{ Compartment, Reason string }
		if !read(w, r, &req) {
			return
		}
		id, err := c.h.Open(r.PathValue("id"), req.Compartment, req.Reason)
		c.audit(r, u, "console: open", r.PathValue("id")+"/"+req.Compartment, "reason: "+req.Reason, err)
		reply(w, map[string]string{"cmd_id": id}, err)
	})
	post("/console/api/lockers/{id}/service", auth.RoleStaff, func(w http.ResponseWriter, r *http.Request, u auth.User) {
		var req struct {
			Compartment string
			InService   bool
		}
		if !read(w, r, &req) {
			return
		}
		id, err := c.h.Service(r.PathValue("id"), req.Compartment, req.InService)
		c.audit(r, u, "console: service", r.PathValue("id")+"/"+req.Compartment, fmt.Sprintf("in service: %v", req.InService), err)
		reply(w, map[string]string{"cmd_id": id}, err)
	})
	post("/console/api/alarms/{seq}/{action}", auth.RoleStaff, func(w http.ResponseWriter, r *http.Request, u auth.User) {
		var req struct{ Note string }
		if !read(w, r, &req) {
			return
		}
		seq, _ := strconv.ParseUint(r.PathValue("seq"), 10, 64)
		var a alarm.Alarm
		var err error
		switch r.PathValue("action") {
		case "ack":
			a, err = c.h.AckAlarm(seq, "user:"+u.Name)
		case "resolve":
			a, err = c.h.ResolveAlarm(seq, "user:"+u.Name, req.Note)
		default:
			fail(w, http.StatusNotFound, "no such action")
			return
		}
		c.audit(r, u, "console: alarm "+r.PathValue("action"), fmt.Sprint(seq), req.Note, err)
		reply(w, a, err)
	})
	get("/console/api/orders", auth.RoleViewer, c.orders)
	post("/console/api/orders", auth.RoleStaff, func(w http.ResponseWriter, r *http.Request, u auth.User) {
		var req hub.NewOrder
		if !read(w, r, &req) {
			return
		}
		cr, err := c.h.CreateOrder(req)
		c.audit(r, u, "console: order add", req.Locker+"/"+cr.Order.ID, "patron "+req.Patron, err)
		w.Header().Set("Cache-Control", "no-store")
		reply(w, cr, err)
	})
	post("/console/api/orders/cancel", auth.RoleStaff, func(w http.ResponseWriter, r *http.Request, u auth.User) {
		var req struct{ Locker, Order string }
		if !read(w, r, &req) {
			return
		}
		rev, err := c.h.CancelOrder(req.Locker, req.Order)
		c.audit(r, u, "console: order cancel", req.Locker+"/"+req.Order, "", err)
		reply(w, map[string]uint64{"rev": rev}, err)
	})
	get("/console/api/circulation", auth.RoleViewer, func(w http.ResponseWriter, r *http.Request, u auth.User) {
		cs, err := c.h.Circulation(circulation.CircFilter{State: r.URL.Query().Get("state"), Locker: r.URL.Query().Get("locker")})
		reply(w, cs, err)
	})
	post("/console/api/circulation/{id}/{action}", auth.RoleStaff, func(w http.ResponseWriter, r *http.Request, u auth.User) {
		var req struct{ Note string }
		if !read(w, r, &req) {
			return
		}
		id, _ := strconv.ParseUint(r.PathValue("id"), 10, 64)
		var rec circulation.CircRec
		var err error
		switch r.PathValue("action") {
		case "retry":
			rec, err = c.h.RetryCirc(id)
		case "resolve":
			rec, err = c.h.ResolveCirc(id, req.Note)
		default:
			fail(w, http.StatusNotFound, "no such action")
			return
		}
		c.audit(r, u, "console: circulation "+r.PathValue("action"), fmt.Sprint(id), req.Note, err)
		reply(w, rec, err)
	})
	get("/console/api/pull", auth.RoleViewer, c.pull)
	get("/console/api/notices", auth.RoleViewer, func(w http.ResponseWriter, r *http.Request, u auth.User) {
		after, _ := strconv.ParseUint(r.URL.Query().Get("after"), 10, 64)
		order := r.URL.Query().Get("order")
		if len(order) > 64 {
			fail(w, http.StatusBadRequest, "order: up to 64 characters")
			return
		}
		ns, err := c.h.Told.List(order, after, 200)
		if ns == nil {
			ns = []notice.Notice{}
		}
		reply(w, ns, err)
	})
	post("/console/api/holds", auth.RoleStaff, func(w http.ResponseWriter, r *http.Request, u auth.User) {
		var req struct{ Locker, Item, Card string }
		if !read(w, r, &req) {
			return
		}
		if c.h.Holds == nil {
			fail(w, http.StatusServiceUnavailable, "holds are not looked up here")
			return
		}
		if len(req.Locker) > 64 || len(req.Item) > 64 || len(req.Card) > 64 || strings.TrimSpace(req.Item) == "" {
			fail(w, http.StatusBadRequest, "locker, item and card: up to 64 characters each; an item is required")
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		// The desk's visit: one per user and day, so that one reader's
		// items scanned together share a code.
		visit := fmt.Sprintf("desk-%x", sha256.Sum256([]byte(u.Name+c.now().Format("2006-01-02"))))[:21]
		ans := c.h.Holds.Scan(ctx, req.Locker, protocol.ReqHold{Item: strings.TrimSpace(req.Item), Card: strings.TrimSpace(req.Card), By: "user:" + u.Name, Visit: visit})
		detail := "item " + req.Item
		if !ans.OK {
			detail += ": " + ans.Reason
		} else {
			detail += ": order " + ans.Order.ID
		}
		c.audit(r, u, "console: hold scan", req.Locker, detail, nil)
		if ans.Order != nil {
			ans.Order.CodeHash = ""
		}
		reply(w, ans, nil)
	})
	get("/console/api/audit", auth.RoleAdmin, func(w http.ResponseWriter, r *http.Request, u auth.User) {
		after, _ := strconv.ParseUint(r.URL.Query().Get("after"), 10, 64)
		as, err := c.h.AuditLog(after, 500)
		if as == nil {
			as = []auth.AuditRec{}
		}
		reply(w, as, err)
	})
	return securityHeaders(mux)
}

// securityHeaders: no framing, no sniffing, scripts and styles from the
// console itself only.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		next.ServeHTTP(w, r)
	})
}

func (c *Console) secure(r *http.Request) bool {
	return r.TLS != nil || c.behindProxy && r.Header.Get("X-Forwarded-Proto") == "https"
}

// sameOrigin refuses what a browser says came from another site.
func (c *Console) sameOrigin(r *http.Request) (string, bool) {
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" && s != "same-origin" && s != "none" {
		return "", false
	}
	if o := r.Header.Get("Origin"); o != "" {
		host := strings.TrimPrefix(strings.TrimPrefix(o, "https://"), "http://")
		if host != r.Host {
			return "", false
		}
	}
	return r.Host, true
}

func (c *Console) session(r *http.Request) (session, bool) {
	ck, err := r.Cookie(cookieName)
	if err != nil {
		return session{}, false
	}
	return c.parse(ck.Value)
}

// authed checks the session (and, for a change, the CSRF token and the
// origin) and the user's role, which is read from the store each time: a
// user disabled or demoted loses what they lost at once.
func (c *Console) authed(role string, change bool, fn func(http.ResponseWriter, *http.Request, auth.User)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, ok := c.session(r)
		if !ok {
			fail(w, http.StatusUnauthorized, "sign in first")
			return
		}
		u, ok := c.h.ActiveUser(s.User)
		if !ok {
			fail(w, http.StatusUnauthorized, "sign in first")
			return
		}
		if change {
			if _, ok := c.sameOrigin(r); !ok {
				fail(w, http.StatusForbidden, "cross-site request refused")
				return
			}
			if tok := r.Header.Get("X-CSRF-Token"); tok == "" || !hmac.Equal([]byte(tok), []byte(s.CSRF)) {
				fail(w, http.StatusForbidden, "missing or wrong CSRF token: reload the page")
				return
			}
		}
		if !auth.RoleAllows(u.Role, role) {
			fail(w, http.StatusForbidden, fmt.Sprintf("a %s may not do this (needs %s)", u.Role, role))
			return
		}
		fn(w, r, u)
	})
}

func (c *Console) signIn(w http.ResponseWriter, r *http.Request) {
	if _, ok := c.sameOrigin(r); !ok || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		fail(w, http.StatusForbidden, "cross-site request refused")
		return
	}
	var req struct{ User, Password string }
	if !read(w, r, &req) {
		return
	}
	from := api.ClientAddr(r, c.behindProxy)
	if !c.signins.Allow("ip:"+from, c.now()) || !c.signins.Allow("user:"+req.User, c.now()) {
		fail(w, http.StatusTooManyRequests, "too many sign-in attempts: wait a minute")
		return
	}
	u, err := c.h.SignIn(req.User, req.Password)
	if err != nil {
		c.log.Warn("console sign-in refused", "user", req.User, "from", from)
		c.h.Audit(auth.AuditRec{Who: "user:" + req.User, Action: "console: sign-in refused", From: from, Status: http.StatusUnauthorized})
		fail(w, http.StatusUnauthorized, auth.ErrSignIn.Error())
		return
	}
	csrf := make([]byte, 18)
	rand.Read(csrf)
	s := session{User: u.Name, Exp: c.now().Add(sessionLife).Unix(), CSRF: base64.RawURLEncoding.EncodeToString(csrf)}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: c.sign(s), Path: "/console/", MaxAge: int(sessionLife.Seconds()),
		HttpOnly: true, Secure: c.secure(r), SameSite: http.SameSiteStrictMode})
	c.h.Audit(auth.AuditRec{Who: "user:" + u.Name, Action: "console: sign-in", From: from, Status: http.StatusOK})
	reply(w, map[string]string{"user": u.Name, "role": u.Role, "csrf": s.CSRF}, nil)
}

func (c *Console) audit(r *http.Request, u auth.User, action, target, detail string, err error) {
	status := http.StatusOK
	if err != nil {
		status = http.StatusBadRequest
		detail = strings.TrimSpace(detail + " (" + err.Error() + ")")
	}
	c.h.Audit(auth.AuditRec{Who: "user:" + u.Name, Action: action, Target: target, Detail: detail, From: api.ClientAddr(r, c.behindProxy), Status: status})
}

// FleetRow is one locker in the fleet view.
type FleetRow struct {
	ID         string         `json:"id"`
	Online     bool           `json:"online"`
	LastSeen   time.Time      `json:"last_seen"`
	OutboxLag  uint64         `json:"outbox_lag"` // events recorded, not yet acknowledged
	Alarms     int            `json:"alarms"`
	Critical   int            `json:"critical"`
	Free       map[string]int `json:"free"`
	Version    string         `json:"version,omitempty"`
	Telemetry  bool           `json:"telemetry"`
	DoorsOpen  []string       `json:"doors_open,omitempty"`
	OutOfServ  []string       `json:"out_of_service,omitempty"`
	BinFull    bool           `json:"bin_full"`
	OrdersRev  uint64         `json:"orders_rev"`
	EventsSeen uint64         `json:"events"`
}

func (c *Console) fleet(w http.ResponseWriter, r *http.Request, _ auth.User) {
	ls, err := c.h.Lockers()
	if err != nil {
		reply(w, nil, err)
		return
	}
	as, _ := c.h.OpenAlarms()
	rows := []FleetRow{}
	for _, l := range ls {
		li, err := c.h.Locker(l.ID)
		if err != nil {
			continue
		}
		row := FleetRow{ID: l.ID, Online: l.Online, LastSeen: l.LastSeen, Version: l.Version, OrdersRev: l.OrdersRev, EventsSeen: l.Events, Free: map[string]int{}}
		if l.OutboxHead > l.Acked {
			row.OutboxLag = l.OutboxHead - l.Acked
		}
		var tele protocol.Telemetry
		if len(li.Telemetry) > 0 && json.Unmarshal(li.Telemetry, &tele) == nil {
			row.Telemetry, row.Free, row.DoorsOpen, row.OutOfServ, row.BinFull = true, tele.Data.Free, tele.Data.DoorsOpen, tele.Data.OutOfServ, tele.Data.BinFull
			row.OutboxLag = uint64(tele.Data.OutboxDepth)
		}
		for _, a := range as {
			if a.Locker == l.ID {
				row.Alarms++
				if a.Severity == alarm.Critical {
					row.Critical++
				}
			}
		}
		rows = append(rows, row)
	}
	reply(w, rows, nil)
}

func (c *Console) locker(w http.ResponseWriter, r *http.Request, u auth.User) {
	id := r.PathValue("id")
	li, err := c.h.Locker(id)
	if err != nil {
		reply(w, nil, err)
		return
	}
	var tele protocol.Telemetry
	if len(li.Telemetry) > 0 {
		json.Unmarshal(li.Telemetry, &tele)
	}
	li.Telemetry, li.LastAck = nil, nil
	orders, _ := c.h.Orders(id)
	events, _ := c.h.RecentEvents(id, 30)
	as, _ := c.h.OpenAlarms()
	mine := []alarm.Alarm{}
	for _, a := range as {
		if a.Locker == id {
			mine = append(mine, a)
		}
	}
	live := []hub.OrderRec{}
	for _, o := range orders {
		if o.Status == "assigned" || o.Status == "ready" {
			o.CodeHash = ""
			live = append(live, o)
		}
	}
	slices.Reverse(events)
	reply(w, map[string]any{"locker": li, "compartments": tele.Data.Compartments, "telemetry": tele.Data, "orders": live,
		"events": events, "alarms": mine, "can_act": auth.RoleAllows(u.Role, auth.RoleStaff)}, nil)
}

// orders searches every locker's orders by order id, patron or item
// barcode (q, at least 2 characters), or lists a locker's.
func (c *Console) orders(w http.ResponseWriter, r *http.Request, _ auth.User) {
	q := strings.ToLower(strings.TrimSpace(r.URL.Query().Get("q")))
	only := r.URL.Query().Get("locker")
	ls, err := c.h.Lockers()
	if err != nil {
		reply(w, nil, err)
		return
	}
	out := []hub.OrderRec{}
	for _, l := range ls {
		if only != "" && l.ID != only {
			continue
		}
		os, _ := c.h.Orders(l.ID)
		for _, o := range os {
			if q != "" && !matches(o, q) {
				continue
			}
			o.CodeHash = ""
			out = append(out, o)
			if len(out) >= 500 {
				reply(w, out, nil)
				return
			}
		}
	}
	reply(w, out, nil)
}

// pullItem is an order staff pull from the shelves and load: where it
// goes, who made it, its books, a home delivery's address.
type pullItem struct {
	Locker   string          `json:"locker"`
	Order    string          `json:"order"`
	Source   string          `json:"source"`
	Patron   string          `json:"patron,omitempty"`
	Items    []protocol.Item `json:"items"`
	Delivery bool            `json:"delivery,omitempty"`
	Address  string          `json:"address,omitempty"`
	Expires  time.Time       `json:"expires"`
	NoSpace  bool            `json:"no_space,omitempty"`
}

// pull lists the orders waiting to be loaded, every locker's served
// (seen yet or not; 500 at most), home deliveries first.
func (c *Console) pull(w http.ResponseWriter, r *http.Request, _ auth.User) {
	ls, err := c.h.KnownLockers()
	if err != nil {
		reply(w, nil, err)
		return
	}
	out := []pullItem{}
	for _, l := range ls {
		os, _ := c.h.Orders(l.ID)
		for _, o := range os {
			if o.Status != "assigned" || len(out) >= 500 {
				continue
			}
			out = append(out, pullItem{Locker: o.Locker, Order: o.ID, Source: cmp.Or(o.Source, "staff"), Patron: o.Patron, Items: o.Items,
				Delivery: o.Delivery, Address: o.Address, Expires: o.ExpiresAt, NoSpace: !o.NoSpace.IsZero()})
		}
	}
	slices.SortStableFunc(out, func(a, b pullItem) int {
		if a.Delivery != b.Delivery {
			return map[bool]int{true: -1, false: 1}[a.Delivery]
		}
		return cmp.Compare(a.Locker, b.Locker)
	})
	reply(w, out, nil)
}

func matches(o hub.OrderRec, q string) bool {
	if strings.Contains(strings.ToLower(o.ID), q) || strings.Contains(strings.ToLower(o.Patron), q) {
		return true
	}
	for _, it := range o.Items {
		if strings.Contains(strings.ToLower(it.Barcode), q) || strings.Contains(strings.ToLower(it.Title), q) {
			return true
		}
	}
	return false
}

func read(w http.ResponseWriter, r *http.Request, v any) bool {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err == nil && len(raw) > 0 {
		err = json.Unmarshal(raw, v)
	}
	if err != nil {
		fail(w, http.StatusBadRequest, "bad request: "+err.Error())
		return false
	}
	return true
}

func reply(w http.ResponseWriter, v any, err error) {
	if err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
