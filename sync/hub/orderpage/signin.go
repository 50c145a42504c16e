package orderpage

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"encoding/binary"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/lockerd/lockerd/sync/hub"
	"github.com/lockerd/lockerd/sync/hub/api"
	"github.com/lockerd/lockerd/sync/hub/auth"
	"github.com/lockerd/lockerd/sync/hub/circulation"
)

// A reader without the notice at hand signs in with library card and PIN
// (SIP2 Patron Status, asked of the library system: the PIN is never
// stored or logged) and sees their orders, each linking to its page. A
// session is a cookie MACed with the page key, for 30 minutes, on /r/
// only. Sign-ins are limited per address and per card, so that a PIN
// cannot be guessed here faster than at the library's own desk.

const (
	session      = 30 * time.Minute
	cookieName   = "lockerhub_reader"
	signinTimout = 5 * time.Second
)

// Readers is what the sign-in needs of the central besides Hub: the
// lockers served and their orders (a reader's are found among them).
type Readers interface {
	KnownLockers() ([]hub.KnownLocker, error)
	Orders(lockerID string) ([]hub.OrderRec, error)
}

// signin serves /r/: the form, the sign-in, the reader's orders.
type signin struct {
	p              *Page
	byAddr, byCard auth.RateLimiter
	// acts bounds what a signed-in reader asks of the central and the
	// library system (a search asks SIP2 17 for each book shown).
	acts       auth.RateLimiter
	form, list *template.Template
}

func (p *Page) signinRoutes(mux *http.ServeMux) {
	s := &signin{p: p, byAddr: auth.RateLimiter{Burst: 10, Every: 30 * time.Second}, byCard: auth.RateLimiter{Burst: 5, Every: time.Minute},
		acts: auth.RateLimiter{Burst: 20, Every: 3 * time.Second},
		form: template.Must(template.New("form").Parse(signinHTML)), list: template.Must(template.New("list").Parse(ordersHTML))}
	mux.HandleFunc("GET /r/", func(w http.ResponseWriter, r *http.Request) {
		if card, ok := s.card(r); ok {
			if !s.acts.Allow(card, s.p.cfg.Now()) {
				s.p.fail(w, language(r), http.StatusTooManyRequests, words[language(r)].slow)
				return
			}
			s.orders(w, r, card)
			return
		}
		s.show(w, r, http.StatusOK, "")
	})
	mux.HandleFunc("POST /r/signin", s.signIn)
	if p.cfg.Shop != nil {
		s.shopRoutes(mux)
	}
	mux.HandleFunc("POST /r/signout", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: cookieName, Path: "/r/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode})
		http.Redirect(w, r, "./?lang="+language(r), http.StatusSeeOther)
	})
}

func (s *signin) show(w http.ResponseWriter, r *http.Request, status int, msg string) {
	lang := language(r)
	security(w)
	w.WriteHeader(status)
	var b bytes.Buffer
	s.form.Execute(&b, map[string]any{"Lang": lang, "W": words[lang], "Message": msg})
	w.Write(b.Bytes())
}

func (s *signin) signIn(w http.ResponseWriter, r *http.Request) {
	wd := words[language(r)]
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if r.ParseForm() != nil {
		s.show(w, r, http.StatusBadRequest, wd.signinBad)
		return
	}
	card, pin := strings.TrimSpace(r.PostFormValue("card")), r.PostFormValue("pin")
	now, from := s.p.cfg.Now(), s.from(r)
	if !s.byAddr.Allow(from, now) || !s.byCard.Allow(strings.ToUpper(card), now) {
		s.show(w, r, http.StatusTooManyRequests, wd.slow)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), signinTimout)
	defer cancel()
	c := circulation.CheckCard(ctx, s.p.cfg.ILS, card, pin)
	audit := auth.AuditRec{Who: "reader", Action: "order page: sign-in", From: from, Detail: c.Outcome, Status: http.StatusUnauthorized}
	switch c.Outcome {
	case circulation.CardOK:
		audit.Status = http.StatusSeeOther
		s.p.cfg.Audit(audit)
		http.SetCookie(w, &http.Cookie{Name: cookieName, Value: s.cookie(c.Card, now.Add(session)), Path: "/r/", MaxAge: int(session.Seconds()),
			HttpOnly: true, Secure: strings.HasPrefix(s.p.cfg.BaseURL, "https://"), SameSite: http.SameSiteLaxMode})
		http.Redirect(w, r, "./?lang="+language(r), http.StatusSeeOther)
		return
	case circulation.CardNoILS, circulation.CardUnreachable:
		s.p.cfg.Audit(audit)
		s.show(w, r, http.StatusServiceUnavailable, wd.later)
		return
	}
	s.p.cfg.Audit(audit)
	s.show(w, r, http.StatusUnauthorized, wd.signinBad)
}

// cookie is a session's value: the card and its expiry, MACed.
func (s *signin) cookie(card string, until time.Time) string {
	var exp [8]byte
	binary.BigEndian.PutUint64(exp[:], uint64(until.Unix()))
	body := b64.EncodeToString(append(exp[:], card...))
	return body + "." + b64.EncodeToString(mac(s.p.cfg.Key, "reader:"+body))
}

// card is the signed-in reader's card, from a valid, unexpired cookie.
func (s *signin) card(r *http.Request) (string, bool) {
	c, err := r.Cookie(cookieName)
	if err != nil || len(c.Value) > 300 {
		return "", false
	}
	body, sig, ok := strings.Cut(c.Value, ".")
	got, err := b64.DecodeString(sig)
	if !ok || err != nil || !hmac.Equal(got, mac(s.p.cfg.Key, "reader:"+body)) {
		return "", false
	}
	raw, err := b64.DecodeString(body)
	if err != nil || len(raw) < 9 || s.p.cfg.Now().Unix() > int64(binary.BigEndian.Uint64(raw[:8])) {
		return "", false
	}
	return string(raw[8:]), true
}

// orders lists the reader's orders, newest last, each with its page's
// link.
func (s *signin) orders(w http.ResponseWriter, r *http.Request, card string) {
	lang := language(r)
	wd := words[lang]
	type row struct{ ID, State, StateText, Place, Link string }
	var rows []row
	known, err := s.p.cfg.Readers.KnownLockers()
	for _, k := range known {
		os, oerr := s.p.cfg.Readers.Orders(k.ID)
		if oerr != nil {
			err = oerr
			break
		}
		for _, o := range os {
			if o.Patron == "" || !strings.EqualFold(o.Patron, card) {
				continue
			}
			tok := Token(s.p.cfg.Key, o.Locker, o.ID, o.ExpiresAt.Add(s.p.cfg.Linger))
			rw := row{ID: o.ID, State: o.Status, StateText: wd.states[o.Status],
				Place: cmp.Or(s.p.cfg.Places(o.Locker).Name.In(lang), o.Locker), Link: "../o/" + tok + "?lang=" + lang}
			if o.Delivery {
				rw.StateText, rw.Place = wd.deliveryStates[o.Status], o.Address
			}
			rows = append(rows, rw)
		}
	}
	if err != nil {
		s.p.cfg.Log.Error("reader's orders", "err", err)
		s.show(w, r, http.StatusServiceUnavailable, wd.later)
		return
	}
	slices.Reverse(rows)
	security(w)
	var b bytes.Buffer
	s.list.Execute(&b, map[string]any{"Lang": lang, "W": wd, "Orders": rows, "Shop": s.p.cfg.Shop != nil})
	w.Write(b.Bytes())
}

func (s *signin) from(r *http.Request) string { return api.ClientAddr(r, s.p.cfg.BehindProxy) }
