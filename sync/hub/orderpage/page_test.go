package orderpage_test

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockerd/lockerd/sync/hub"
	"github.com/lockerd/lockerd/sync/hub/auth"
	"github.com/lockerd/lockerd/sync/hub/notice"
	"github.com/lockerd/lockerd/sync/hub/orderpage"
	"github.com/lockerd/lockerd/sync/protocol"
)

// fakeHub keeps orders in a map and does what the page asks.
type fakeHub struct {
	mu     sync.Mutex
	orders map[string]hub.OrderRec
}

func (f *fakeHub) Order(locker, id string) (hub.OrderRec, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.orders[locker+"/"+id]
	return o, ok, nil
}

func (f *fakeHub) CancelOrder(locker, id string) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o := f.orders[locker+"/"+id]
	o.Status, o.SealedCode = "cancelled", nil
	f.orders[locker+"/"+id] = o
	return 9, nil
}

func (f *fakeHub) ExtendOrder(locker, id string, by time.Duration) (hub.OrderRec, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o := f.orders[locker+"/"+id]
	if o.Status != "ready" || o.Extended {
		return o, errors.New("not now")
	}
	o.ExpiresAt, o.Extended = o.ExpiresAt.Add(by), true
	f.orders[locker+"/"+id] = o
	return o, nil
}

var key = []byte("0123456789abcdef0123456789abcdef")

func rig(t *testing.T) (*fakeHub, *orderpage.Page, *httptest.Server, *[]auth.AuditRec, *notice.Sealer) {
	k, _ := notice.NewKey()
	raw, _ := hex.DecodeString(k)
	sealer, _ := notice.NewSealer(raw)
	sealed, _ := sealer.Seal("K7P2M9QX")
	exp := time.Now().Add(48 * time.Hour).Truncate(time.Second)
	f := &fakeHub{orders: map[string]hub.OrderRec{
		"gulou-1/ORD-1": {Order: protocol.Order{ID: "ORD-1", ExpiresAt: exp}, Locker: "gulou-1", Status: "ready", Compartments: []string{"M3"}, SealedCode: sealed},
		"gulou-1/ORD-2": {Order: protocol.Order{ID: "ORD-2", ExpiresAt: exp}, Locker: "gulou-1", Status: "picked_up"},
	}}
	var mu sync.Mutex
	var audit []auth.AuditRec
	p, err := orderpage.New(orderpage.Config{Hub: f, Key: key, Sealer: sealer, BaseURL: "https://library.example.org/lockers",
		Places: func(string) notice.Place {
			return notice.Place{Name: notice.Text{"zh": "鼓楼社区服务中心", "en": "Gulou Community Centre"}, Hours: notice.Text{"zh": "8:00–20:00", "en": "8:00–20:00"}}
		},
		Audit: func(a auth.AuditRec) { mu.Lock(); audit = append(audit, a); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p.Handler())
	t.Cleanup(srv.Close)
	return f, p, srv, &audit, sealer
}

func get(t *testing.T, u, lang string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	if lang != "" {
		req.Header.Set("Accept-Language", lang)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func pathOf(t *testing.T, link string) string {
	u, err := url.Parse(link)
	if err != nil || !strings.HasPrefix(u.Path, "/lockers/o/") {
		t.Fatalf("link %q", link)
	}
	return strings.TrimPrefix(u.Path, "/lockers")
}

// A ready order's page: its state, the QR code and the code, the place,
// the door and the last day, in Chinese by default and in English when
// the browser asks; nothing fetched from anywhere, no referrer, nothing
// kept.
func TestReadyPage(t *testing.T) {
	_, p, srv, _, _ := rig(t)
	link, _ := p.Link("ORD-1", "gulou-1", time.Now().Add(48*time.Hour))
	path := pathOf(t, link)
	code, h, body := get(t, srv.URL+path, "")
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	for _, want := range []string{"已到柜，请取书", "K7P2M9QX", `src="data:image/png;base64,`, "鼓楼社区服务中心", "M3", "再保留两天", "取消订单", `lang="zh"`} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if regexp.MustCompile(`(src|href)="(https?:)?//`).MatchString(body) || strings.Contains(body, "<script") {
		t.Error("the page fetches from elsewhere or runs a script")
	}
	if !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'none'") || h.Get("Referrer-Policy") != "no-referrer" || h.Get("Cache-Control") != "no-store" {
		t.Errorf("headers %v", h)
	}
	_, _, en := get(t, srv.URL+path, "en-GB,en;q=0.9")
	for _, want := range []string{"Ready: collect it", "Gulou Community Centre", "Keep it two more days", `lang="en"`} {
		if !strings.Contains(en, want) {
			t.Errorf("the English page lacks %q", want)
		}
	}
	// Picked up: no code, no actions.
	done, _ := p.Link("ORD-2", "gulou-1", time.Now().Add(time.Hour))
	_, _, body = get(t, srv.URL+pathOf(t, done), "en")
	if !strings.Contains(body, "Picked up") || strings.Contains(body, "data:image") || strings.Contains(body, "<form") {
		t.Errorf("a picked-up order's page:\n%s", body)
	}
}

// A forged, altered, expired or made-up link opens nothing, and says only
// that the link does not work; a flood of them is slowed.
func TestBadLinks(t *testing.T) {
	_, p, srv, _, _ := rig(t)
	good := orderpage.Token(key, "gulou-1", "ORD-1", time.Now().Add(time.Hour))
	for name, tok := range map[string]string{
		"another key": orderpage.Token([]byte("another key, 32 bytes long......"), "gulou-1", "ORD-1", time.Now().Add(time.Hour)),
		"expired":     orderpage.Token(key, "gulou-1", "ORD-1", time.Now().Add(-time.Minute)),
		"altered":     "A" + good[1:],
		"no order":    orderpage.Token(key, "gulou-1", "ORD-9", time.Now().Add(time.Hour)),
		"garbage":     "not-a-token",
	} {
		code, _, body := get(t, srv.URL+"/o/"+tok, "en")
		if code != 404 || !strings.Contains(body, "no longer works") || strings.Contains(body, "K7P2M9QX") {
			t.Errorf("%s: %d", name, code)
		}
	}
	if l, o, err := orderpage.Open(key, good, time.Now()); err != nil || l != "gulou-1" || o != "ORD-1" {
		t.Fatalf("open: %s %s %v", l, o, err)
	}
	_ = p
	slowed := false
	for i := range 40 {
		if code, _, _ := get(t, srv.URL+"/o/bad"+fmt.Sprint(i), ""); code == http.StatusTooManyRequests {
			slowed = true
			break
		}
	}
	if !slowed {
		t.Fatal("40 bad links in a row, none slowed")
	}
}

func post(t *testing.T, u string, form url.Values) (int, string) {
	t.Helper()
	resp, err := http.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Keep it longer: once, audited; a post without the page's form field is
// refused. Cancel: audited, and the page says so, without the code.
func TestActions(t *testing.T) {
	f, p, srv, audit, _ := rig(t)
	link, _ := p.Link("ORD-1", "gulou-1", time.Now().Add(48*time.Hour))
	path := pathOf(t, link)
	_, _, page := get(t, srv.URL+path, "en")
	k := regexp.MustCompile(`name="k" value="([^"]+)"`).FindStringSubmatch(page)
	if k == nil {
		t.Fatal("no form field")
	}
	if code, _ := post(t, srv.URL+path+"/keep", url.Values{"k": {"forged"}}); code != http.StatusForbidden {
		t.Fatalf("a post without the form's field: %d", code)
	}
	before, _, _ := f.Order("gulou-1", "ORD-1")
	if code, body := post(t, srv.URL+path+"/keep?lang=en", url.Values{"k": {k[1]}}); code != 200 || !strings.Contains(body, "Kept for you two more days") || strings.Contains(body, "Keep it two more days") {
		t.Fatalf("keep: %d\n%s", code, body)
	}
	after, _, _ := f.Order("gulou-1", "ORD-1")
	if after.ExpiresAt.Sub(before.ExpiresAt) != 48*time.Hour {
		t.Fatalf("kept %v longer", after.ExpiresAt.Sub(before.ExpiresAt))
	}
	if code, body := post(t, srv.URL+path+"/keep?lang=en", url.Values{"k": {k[1]}}); code != 200 || !strings.Contains(body, "could not be done") {
		t.Fatalf("keep twice: %d", code)
	}
	if code, body := post(t, srv.URL+path+"/cancel?lang=en", url.Values{"k": {k[1]}}); code != 200 || !strings.Contains(body, "The order is cancelled") ||
		strings.Contains(body, "K7P2M9QX") {
		t.Fatalf("cancel: %d\n%s", code, body)
	}
	if len(*audit) != 3 || (*audit)[0].Action != "order page: keep" || (*audit)[2].Action != "order page: cancel" || (*audit)[1].Status != http.StatusConflict {
		t.Fatalf("audit %+v", *audit)
	}
}

// Whatever a link carries, Open takes it only with the key's MAC, and
// gives back what was put in.
func FuzzOpen(f *testing.F) {
	f.Add(orderpage.Token(key, "gulou-1", "ORD-1", time.Unix(2e9, 0)))
	f.Add("a.b")
	f.Add("")
	f.Fuzz(func(t *testing.T, tok string) {
		l, o, err := orderpage.Open(key, tok, time.Unix(1e9, 0))
		if err == nil && orderpage.Token(key, l, o, time.Unix(2e9, 0)) == "" {
			t.Fatal("opened")
		}
		if err == nil && (strings.Contains(l, "\x00") || strings.Contains(o, "\x00")) {
			t.Fatalf("opened %q %q", l, o)
		}
	})
}

func httptestServer(t *testing.T, h http.Handler) string {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// browse is a reader's browser at the page's server srv: it keeps the
// session cookie, and answers a GET (form nil) or a POST with the status
// and the page.
func browse(t *testing.T, srv string) func(method, path string, form url.Values) (int, string) {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	return func(method, path string, form url.Values) (int, string) {
		t.Helper()
		var resp *http.Response
		var err error
		if method == "POST" {
			resp, err = c.PostForm(srv+path, form)
		} else {
			resp, err = c.Get(srv + path)
		}
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
}
