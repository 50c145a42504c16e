package orderpage

import (
	"bytes"
	"context"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lockerd/lockerd/sync/hub"
	"github.com/lockerd/lockerd/sync/hub/auth"
	"github.com/lockerd/lockerd/sync/hub/notice"
	"github.com/lockerd/lockerd/sync/hub/stock"
	"github.com/lockerd/lockerd/sync/protocol"
	"github.com/lockerd/lockerd/sync/sip2"
)

// A signed-in reader orders from the library's stock for this service:
// searches it (title, author, ISBN; Chinese too), ticks up to MaxBooks
// books, chooses the locker to collect them at, and gives an e-mail
// address to be told at. The order is made for the reader's card and
// reaches the lockers' order lists for staff to pull and load; loaded,
// the reader is told (notices). A book in a live order here, or that the
// library system says is not on the shelf (lent, on hold), is shown as
// unavailable and cannot be ordered.

// Shop is what ordering from the stock needs of the central.
type Shop interface {
	Search(query string, limit int) ([]stock.Item, error)
	Item(barcode string) (stock.Item, bool, error)
	CreateOrder(req hub.NewOrder) (hub.Created, error)
}

const searchShown = 20

type shopItem struct {
	stock.Item
	Available bool
}

func (s *signin) shopRoutes(mux *http.ServeMux) {
	shop := template.Must(template.New("shop").Parse(shopHTML))
	mux.HandleFunc("GET /r/stock", func(w http.ResponseWriter, r *http.Request) {
		card, ok := s.signedIn(w, r)
		if !ok {
			return
		}
		s.shopPage(w, r, shop, card, http.StatusOK, "")
	})
	mux.HandleFunc("POST /r/order", func(w http.ResponseWriter, r *http.Request) {
		card, ok := s.signedIn(w, r)
		if !ok {
			return
		}
		wd := words[language(r)]
		r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
		if r.ParseForm() != nil {
			s.shopPage(w, r, shop, card, http.StatusBadRequest, wd.orderBad)
			return
		}
		if status, msg := s.order(r, card); msg != "" {
			s.shopPage(w, r, shop, card, status, msg)
			return
		}
		http.Redirect(w, r, "./?lang="+language(r), http.StatusSeeOther)
	})
}

// order makes the reader's order from the form; it returns what to say
// when it does not.
func (s *signin) order(r *http.Request, card string) (int, string) {
	lang := language(r)
	wd := words[lang]
	picked := slices.Compact(slices.Sorted(slices.Values(r.PostForm["book"])))
	locker, email := r.PostFormValue("locker"), strings.TrimSpace(r.PostFormValue("email"))
	address := strings.Join(strings.Fields(r.PostFormValue("address")), " ") // one line: it goes into a notice
	delivery := locker == "delivery" && s.p.cfg.DeliveryLocker != ""
	if delivery {
		locker = s.p.cfg.DeliveryLocker
	}
	lockers := s.lockers()
	switch {
	case len(picked) == 0 || len(picked) > s.p.cfg.MaxBooks:
		return http.StatusBadRequest, wd.PickUpTo(s.p.cfg.MaxBooks)
	case !slices.Contains(lockers, locker):
		return http.StatusBadRequest, wd.orderBad
	case delivery && (address == "" || utf8.RuneCountInString(address) > 300):
		return http.StatusBadRequest, wd.addressBad
	case !delivery:
		address = ""
	}
	contact := notice.Contact{Email: email, Lang: lang}
	if contact.Check() != nil {
		return http.StatusBadRequest, wd.emailBad
	}
	busy := s.inOrders()
	var items []protocol.Item
	for _, b := range picked {
		it, found, err := s.p.cfg.Shop.Item(b)
		if err != nil || !found || busy[b] || !s.onShelf(r.Context(), b) {
			return http.StatusConflict, wd.unavailable
		}
		items = append(items, protocol.Item{Barcode: it.Barcode, Title: it.Title})
	}
	cr, err := s.p.cfg.Shop.CreateOrder(hub.NewOrder{Locker: locker, Patron: card, Items: items, Contact: contact,
		Delivery: delivery, Address: address, Source: "reader"})
	status := http.StatusSeeOther
	if err != nil {
		s.p.cfg.Log.Warn("reader's order", "err", err)
		status = http.StatusConflict
	}
	s.p.cfg.Audit(auth.AuditRec{Who: "reader", Action: "order page: order from the stock", Target: locker + "/" + cr.Order.ID,
		Detail: strings.Join(picked, ","), From: s.from(r), Status: status})
	if err != nil {
		return status, wd.later
	}
	return 0, ""
}

func (s *signin) shopPage(w http.ResponseWriter, r *http.Request, t *template.Template, card string, status int, msg string) {
	lang := language(r)
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	var shown []shopItem
	if q != "" {
		found, err := s.p.cfg.Shop.Search(q, searchShown)
		if err != nil {
			s.p.cfg.Log.Error("stock search", "err", err)
		}
		busy := s.inOrders()
		for _, it := range found {
			shown = append(shown, shopItem{it, !busy[it.Barcode] && s.onShelf(r.Context(), it.Barcode)})
		}
	}
	type place struct{ ID, Name string }
	var places []place
	for _, id := range s.lockers() {
		places = append(places, place{id, s.p.cfg.Places(id).Name.In(lang)})
	}
	security(w)
	w.WriteHeader(status)
	var b bytes.Buffer
	t.Execute(&b, map[string]any{"Lang": lang, "W": words[lang], "Q": q, "Items": shown, "Searched": q != "", "Places": places,
		"Max": s.p.cfg.MaxBooks, "Message": msg, "Delivery": s.p.cfg.DeliveryLocker != ""})
	w.Write(b.Bytes())
}

// lockers are the lockers a reader may choose (those served), by id.
func (s *signin) lockers() []string {
	known, _ := s.p.cfg.Readers.KnownLockers()
	var ids []string
	for _, k := range known {
		ids = append(ids, k.ID)
	}
	slices.Sort(ids)
	return ids
}

// inOrders are the barcodes in live orders (assigned or ready) here.
func (s *signin) inOrders() map[string]bool {
	busy := map[string]bool{}
	for _, id := range s.lockers() {
		os, _ := s.p.cfg.Readers.Orders(id)
		for _, o := range os {
			if o.Status == "assigned" || o.Status == "ready" {
				for _, it := range o.Items {
					busy[it.Barcode] = true
				}
			}
		}
	}
	return busy
}

// onShelf asks the library system whether a book is on the shelf (SIP2
// 17: available); without one, or when it does not answer in time, the
// stock's own word is taken.
func (s *signin) onShelf(ctx context.Context, barcode string) bool {
	if s.p.cfg.ILS == nil {
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	info, err := s.p.cfg.ILS.ItemInformation(ctx, barcode)
	return err != nil || info.Status == sip2.StatusAvailable
}

// signedIn is the signed-in reader's card, within their share of the
// central's and the library system's time; otherwise it answers the
// request itself (to the sign-in form, or too many).
func (s *signin) signedIn(w http.ResponseWriter, r *http.Request) (string, bool) {
	card, ok := s.card(r)
	if !ok {
		http.Redirect(w, r, "./?lang="+language(r), http.StatusSeeOther)
		return "", false
	}
	if !s.acts.Allow(card, s.p.cfg.Now()) {
		s.p.fail(w, language(r), http.StatusTooManyRequests, words[language(r)].slow)
		return "", false
	}
	return card, true
}
