package orderpage

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"strings"
	"time"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/lockerd/lockerd/sync/hub"
	"github.com/lockerd/lockerd/sync/hub/api"
	"github.com/lockerd/lockerd/sync/hub/auth"
	"github.com/lockerd/lockerd/sync/hub/circulation"
	"github.com/lockerd/lockerd/sync/hub/notice"
	"github.com/lockerd/lockerd/sync/hub/stock"
)

// Hub is what the page needs of the central.
type Hub interface {
	Order(lockerID, orderID string) (hub.OrderRec, bool, error)
	CancelOrder(lockerID, orderID string) (uint64, error)
	ExtendOrder(lockerID, orderID string, by time.Duration) (hub.OrderRec, error)
}

// Config is a Page's.
type Config struct {
	Hub Hub
	// Readers and ILS serve the card + PIN sign-in (/r/); without an
	// ILS it says the library system cannot be asked.
	Readers Readers
	ILS     circulation.ILS
	// Shop lets a signed-in reader order from the stock, up to MaxBooks
	// books an order (default 5); nil: no ordering.
	Shop     Shop
	MaxBooks int
	// DeliveryLocker: where home deliveries are loaded for the couriers
	// (a volunteer's badge collects them); "" : readers cannot choose
	// home delivery.
	DeliveryLocker string
	Key            []byte         // the tokens' MAC key (32 bytes or more)
	Sealer         *notice.Sealer // opens the order's sealed code for its QR code
	Places         func(locker string) notice.Place
	// BaseURL is the page's address as readers reach it
	// (https://library.example.org/lockers): the notices' links.
	BaseURL string
	// Extend: how much longer "keep it" keeps an order (default 48 h);
	// Linger: how long after its last day the link still shows the order
	// (default 7 days).
	Extend, Linger time.Duration
	Audit          func(auth.AuditRec)
	BehindProxy    bool // readers' addresses from X-Forwarded-For (api.ClientAddr)
	Log            *slog.Logger
	Now            func() time.Time
}

// Page serves the readers' order pages.
type Page struct {
	cfg  Config
	bad  auth.RateLimiter // failed tokens per address
	tmpl *template.Template
}

// New makes the page.
func New(cfg Config) (*Page, error) {
	if len(cfg.Key) < 32 {
		return nil, errors.New("order page: a key of 32 bytes or more")
	}
	if cfg.MaxBooks <= 0 {
		cfg.MaxBooks = 5
	}
	if cfg.Extend <= 0 {
		cfg.Extend = 48 * time.Hour
	}
	if cfg.Linger <= 0 {
		cfg.Linger = 7 * 24 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Places == nil {
		cfg.Places = func(string) notice.Place { return notice.Place{} }
	}
	if cfg.Audit == nil {
		cfg.Audit = func(auth.AuditRec) {}
	}
	t, err := template.New("page").Parse(pageHTML)
	if err != nil {
		return nil, err
	}
	return &Page{cfg: cfg, tmpl: t, bad: auth.RateLimiter{Burst: 20, Every: 3 * time.Second}}, nil
}

// Link is an order's page link, valid until its last day and Linger
// beyond: the notices' Linker.
func (p *Page) Link(order, locker string, until time.Time) (string, error) {
	return Linker(p.cfg.Key, p.cfg.BaseURL, p.cfg.Linger)(order, locker, until)
}

// Linker makes the links of pages at baseURL with key ("" : none), valid
// linger beyond the order's last day: the notices' Linker, made before
// the page (which needs the hub the notices are part of).
func Linker(key []byte, baseURL string, linger time.Duration) notice.Linker {
	if linger <= 0 {
		linger = 7 * 24 * time.Hour
	}
	return func(order, locker string, until time.Time) (string, error) {
		if baseURL == "" {
			return "", nil
		}
		return strings.TrimSuffix(baseURL, "/") + "/o/" + Token(key, locker, order, until.Add(linger)), nil
	}
}

// Handler serves GET /o/{token} and POST /o/{token}/{keep,cancel}.
func (p *Page) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /o/{token}", func(w http.ResponseWriter, r *http.Request) { p.show(w, r, "") })
	mux.HandleFunc("POST /o/{token}/{action}", p.act)
	if p.cfg.Readers != nil {
		p.signinRoutes(mux)
	}
	return mux
}

// order opens the request's token and reads its order; it answers the
// request itself when it cannot.
func (p *Page) order(w http.ResponseWriter, r *http.Request) (hub.OrderRec, string, bool) {
	lang := language(r)
	from := api.ClientAddr(r, p.cfg.BehindProxy)
	if !p.bad.Has(from, p.cfg.Now()) {
		p.fail(w, lang, http.StatusTooManyRequests, words[lang].slow)
		return hub.OrderRec{}, lang, false
	}
	locker, id, err := Open(p.cfg.Key, r.PathValue("token"), p.cfg.Now())
	var o hub.OrderRec
	found := false
	if err == nil {
		o, found, err = p.cfg.Hub.Order(locker, id)
	}
	if err != nil || !found {
		if err == nil || errors.Is(err, ErrToken) {
			p.bad.Allow(from, p.cfg.Now()) // counted: a flood of made-up links is slowed
			p.fail(w, lang, http.StatusNotFound, words[lang].gone)
		} else {
			p.cfg.Log.Error("order page", "err", err)
			p.fail(w, lang, http.StatusServiceUnavailable, words[lang].later)
		}
		return hub.OrderRec{}, lang, false
	}
	return o, lang, true
}

func (p *Page) act(w http.ResponseWriter, r *http.Request) {
	o, lang, ok := p.order(w, r)
	if !ok {
		return
	}
	// The form's own field: a post made from another site has no page
	// to copy it from.
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if r.ParseForm() != nil || r.PostFormValue("k") != p.formKey(r.PathValue("token")) {
		p.fail(w, lang, http.StatusForbidden, words[lang].gone)
		return
	}
	action := r.PathValue("action")
	var err error
	switch action {
	case "keep":
		_, err = p.cfg.Hub.ExtendOrder(o.Locker, o.ID, p.cfg.Extend)
	case "cancel":
		if o.Status != "assigned" && o.Status != "ready" {
			err = fmt.Errorf("order %s is %s", o.ID, o.Status)
		} else {
			_, err = p.cfg.Hub.CancelOrder(o.Locker, o.ID)
		}
	default:
		http.NotFound(w, r)
		return
	}
	status := http.StatusOK
	if err != nil {
		status = http.StatusConflict
	}
	p.cfg.Audit(auth.AuditRec{Who: "reader:" + o.ID, Action: "order page: " + action, Target: o.Locker + "/" + o.ID,
		Detail: errText(err), From: api.ClientAddr(r, p.cfg.BehindProxy), Status: status})
	msg := words[lang].done[action]
	if err != nil {
		msg = words[lang].cannot
	}
	p.show(w, r, msg)
}

// view is what the template shows.
type view struct {
	Lang, Other, OtherName  string
	W                       text
	Order, State, StateText string
	Place, Address, Hours   string
	Door, LastDay           string
	QR                      template.URL
	Code                    string
	CanKeep, CanCancel      bool
	Token, Key, Message     string
	Failed                  bool
	Delivery                bool // home delivery: the address, no code, no door
}

func (p *Page) show(w http.ResponseWriter, r *http.Request, message string) {
	o, lang, ok := p.order(w, r)
	if !ok {
		return
	}
	wd := words[lang]
	v := view{Lang: lang, W: wd, Order: o.ID, State: o.Status, StateText: wd.states[o.Status], Token: r.PathValue("token"),
		Key: p.formKey(r.PathValue("token")), Message: message, Delivery: o.Delivery}
	v.Other, v.OtherName = "en", "English"
	if lang == "en" {
		v.Other, v.OtherName = "zh", "中文"
	}
	place := p.cfg.Places(o.Locker)
	v.Place, v.Address, v.Hours = place.Name.In(lang), place.Address.In(lang), place.Hours.In(lang)
	if v.Place == "" {
		v.Place = o.Locker
	}
	if len(o.Compartments) > 0 {
		v.Door = strings.Join(o.Compartments, ", ")
	}
	if !o.ExpiresAt.IsZero() {
		v.LastDay = wd.day(o.ExpiresAt.Local())
	}
	live := o.Status == "assigned" || o.Status == "ready"
	if o.Delivery {
		// The courier collects it: the reader sees where it goes, not a
		// code or a door; cancelled only before it is packed.
		v.StateText, v.Place, v.Address, v.Hours, v.Door, v.LastDay = wd.deliveryStates[o.Status], o.Address, "", "", "", ""
		v.CanCancel = o.Status == "assigned"
		p.render(w, v)
		return
	}
	if live && len(o.SealedCode) > 0 && p.cfg.Sealer != nil {
		if code, err := p.cfg.Sealer.Open(o.SealedCode); err == nil {
			if png, err := qrcode.Encode(code, qrcode.Medium, 256); err == nil {
				v.QR = template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png))
				v.Code = code
			}
		}
	}
	v.CanKeep = o.Status == "ready" && !o.Extended
	v.CanCancel = live
	p.render(w, v)
}

// render writes the page of v.
func (p *Page) render(w http.ResponseWriter, v view) {
	security(w)
	var b bytes.Buffer
	if err := p.tmpl.Execute(&b, v); err != nil {
		p.cfg.Log.Error("order page", "err", err)
		http.Error(w, "error", http.StatusInternalServerError)
		return
	}
	w.Write(b.Bytes())
}

func (p *Page) fail(w http.ResponseWriter, lang string, status int, msg string) {
	security(w)
	w.WriteHeader(status)
	var b bytes.Buffer
	p.tmpl.Execute(&b, view{Lang: lang, W: words[lang], Message: msg, Failed: true})
	w.Write(b.Bytes())
}

// formKey is the actions' form field for a token.
func (p *Page) formKey(token string) string { return b64.EncodeToString(mac(p.cfg.Key, "form:"+token)) }

// security are the page's headers: nothing loaded from elsewhere, no
// script, no referrer (the token is in the URL), nothing kept, no frame.
func security(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; img-src data:; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
}

// language is the reader's: ?lang=, else the browser's first of zh and
// en, else zh.
func language(r *http.Request) string {
	if l := r.URL.Query().Get("lang"); l == "en" || l == "zh" {
		return l
	}
	for _, part := range strings.Split(r.Header.Get("Accept-Language"), ",") {
		tag := strings.ToLower(strings.TrimSpace(strings.SplitN(part, ";", 2)[0]))
		switch {
		case strings.HasPrefix(tag, "zh"):
			return "zh"
		case strings.HasPrefix(tag, "en"):
			return "en"
		}
	}
	return "zh"
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// ForHub is the Config of hub h's parts the page calls; the caller adds
// the key, the sealer, the places and the rest.
func ForHub(h *hub.Hub) Config {
	return Config{Hub: h, Readers: h, Shop: hubShop{h.Stock(), h}}
}

// hubShop is the hub's stock, ordered from through the hub.
type hubShop struct {
	*stock.Service
	h *hub.Hub
}

func (s hubShop) CreateOrder(req hub.NewOrder) (hub.Created, error) { return s.h.CreateOrder(req) }
