package orderpage_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lockerd/lockerd/sync/hub"
	"github.com/lockerd/lockerd/sync/hub/auth"
	"github.com/lockerd/lockerd/sync/hub/circulation"
	"github.com/lockerd/lockerd/sync/hub/orderpage"
	"github.com/lockerd/lockerd/sync/protocol"
	"github.com/lockerd/lockerd/sync/sip2"
)

// fakeILS knows one reader (21000001, PIN 1234) and counts the checks.
type fakeILS struct {
	circulation.ILS // the rest is not called
	asked           atomic.Int32
}

func (f *fakeILS) PatronStatus(_ context.Context, patron, pin string) (sip2.PatronInfo, error) {
	f.asked.Add(1)
	if patron != "21000001" {
		return sip2.PatronInfo{}, nil
	}
	return sip2.PatronInfo{Valid: true, PINOK: pin == "1234", Name: "Li Wei"}, nil
}

type readers struct{ *fakeHub }

func (r readers) KnownLockers() ([]hub.KnownLocker, error) {
	return []hub.KnownLocker{{ID: "gulou-1"}}, nil
}

func (r readers) Orders(locker string) ([]hub.OrderRec, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []hub.OrderRec
	for _, o := range r.orders {
		if o.Locker == locker {
			out = append(out, o)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no lockers")
	}
	return out, nil
}

// A reader signs in with card and PIN (asked of the library system) and
// sees their orders only, each linking to its page; a wrong PIN is
// refused, a flood of them slowed before the library system is asked
// again; the session ends at sign-out.
func TestSignIn(t *testing.T) {
	f, _, _, _, _ := rig(t)
	f.orders["gulou-1/ORD-1"] = func() hub.OrderRec { o := f.orders["gulou-1/ORD-1"]; o.Patron = "21000001"; return o }()
	f.orders["gulou-1/ORD-3"] = hub.OrderRec{Order: protocol.Order{ID: "ORD-3", ExpiresAt: time.Now().Add(time.Hour)}, Locker: "gulou-1", Status: "ready", Patron: "29999999"}
	ils := &fakeILS{}
	var audit []auth.AuditRec
	var mu sync.Mutex
	p, err := orderpage.New(orderpage.Config{Hub: f, Readers: readers{f}, ILS: ils, Key: key,
		Audit: func(a auth.AuditRec) { mu.Lock(); audit = append(audit, a); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	do := browse(t, httptestServer(t, p.Handler()))
	if code, body := do("GET", "/r/?lang=en", nil); code != 200 || !strings.Contains(body, "Library card number") {
		t.Fatalf("the form: %d", code)
	}
	if code, body := do("POST", "/r/signin?lang=en", url.Values{"card": {"21000001"}, "pin": {"9999"}}); code != http.StatusUnauthorized || !strings.Contains(body, "Wrong card number or PIN") {
		t.Fatalf("a wrong PIN: %d", code)
	}
	code, body := do("POST", "/r/signin?lang=en", url.Values{"card": {"21000001"}, "pin": {"1234"}})
	if code != 200 || !strings.Contains(body, "My orders") || !strings.Contains(body, "ORD-1") || strings.Contains(body, "ORD-3") {
		t.Fatalf("signed in: %d\n%s", code, body)
	}
	link := body[strings.Index(body, `href="../o/`)+len(`href="..`):]
	link = link[:strings.Index(link, `"`)]
	if code, page := do("GET", strings.ReplaceAll(link, "&amp;", "&"), nil); code != 200 || !strings.Contains(page, "Ready: collect it") {
		t.Fatalf("the order's page from the list: %d", code)
	}
	if code, body := do("POST", "/r/signout?lang=en", url.Values{}); code != 200 || !strings.Contains(body, "Library card number") {
		t.Fatalf("signed out: %d", code)
	}
	// A PIN flood on one card: slowed, and the library system not asked
	// for each.
	before := ils.asked.Load()
	slowed := 0
	for range 20 {
		if code, _ := do("POST", "/r/signin", url.Values{"card": {"21000001"}, "pin": {"0000"}}); code == http.StatusTooManyRequests {
			slowed++
		}
	}
	if slowed < 10 || ils.asked.Load()-before > 6 {
		t.Fatalf("20 wrong PINs: %d slowed, the library system asked %d times", slowed, ils.asked.Load()-before)
	}
	// Every sign-in the library system answered is audited, without the
	// PIN: the first refused, the second let in.
	mu.Lock()
	defer mu.Unlock()
	if len(audit) < 2 || audit[0].Detail != "wrong_pin" || audit[1].Detail != "ok" || audit[1].Status != http.StatusSeeOther {
		t.Fatalf("audit %+v", audit)
	}
	for _, a := range audit {
		if strings.Contains(a.Detail+a.Target+a.Action, "1234") {
			t.Fatalf("a PIN in the audit: %+v", a)
		}
	}
}

// A forged or expired session cookie signs nobody in.
func TestSessionCookie(t *testing.T) {
	f, _, _, _, _ := rig(t)
	now := time.Now()
	p, _ := orderpage.New(orderpage.Config{Hub: f, Readers: readers{f}, ILS: &fakeILS{}, Key: key, Now: func() time.Time { return now }})
	srv := httptestServer(t, p.Handler())
	for _, v := range []string{"", "x.y", "AAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA"} {
		req, _ := http.NewRequest("GET", srv+"/r/?lang=en", nil)
		req.AddCookie(&http.Cookie{Name: "lockerhub_reader", Value: v})
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(b), "My orders") {
			t.Fatalf("cookie %q signed in", v)
		}
	}
}
