package orderpage_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockerd/lockerd/sync/hub"
	"github.com/lockerd/lockerd/sync/hub/orderpage"
	"github.com/lockerd/lockerd/sync/hub/stock"
	"github.com/lockerd/lockerd/sync/hub/stock/stocktest"
	"github.com/lockerd/lockerd/sync/protocol"
	"github.com/lockerd/lockerd/sync/sip2"
)

// shop is the stock over a memory store, and orders made into the fake
// hub.
type shop struct {
	*stock.Service
	f    *fakeHub
	mu   sync.Mutex
	made []hub.NewOrder
}

func (s *shop) CreateOrder(req hub.NewOrder) (hub.Created, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.made = append(s.made, req)
	id := "ORD-S" + string(rune('0'+len(s.made)))
	s.f.mu.Lock()
	s.f.orders[req.Locker+"/"+id] = hub.OrderRec{Order: protocol.Order{ID: id, Items: req.Items, ExpiresAt: time.Now().Add(72 * time.Hour), Delivery: req.Delivery},
		Locker: req.Locker, Status: "assigned", Patron: req.Patron, Address: req.Address, Source: req.Source}
	s.f.mu.Unlock()
	return hub.Created{Order: hub.OrderRec{Order: protocol.Order{ID: id}}}, nil
}

// shelfILS knows the reader, and says 39000004 is lent.
type shelfILS struct{ fakeILS }

func (s *shelfILS) ItemInformation(_ context.Context, item string) (sip2.ItemInfo, error) {
	if item == "39000004" {
		return sip2.ItemInfo{Status: sip2.StatusCharged}, nil
	}
	return sip2.ItemInfo{Status: sip2.StatusAvailable}, nil
}

// A signed-in reader searches the stock (Chinese), sees which books can
// be had — not one in a live order here, not one the library system
// says is lent — and orders two to a locker, with an e-mail address: the
// order is made for their card, with those books, and shows in their
// list. Too many books, a lent one, a made-up locker or a bad address
// are refused.
func TestOrderFromStock(t *testing.T) {
	f, _, _, _, _ := rig(t)
	st := stock.New(stocktest.NewMem())
	if _, err := st.Import("stock.csv", strings.NewReader("barcode,title,author,isbn\n39000001,围城,钱锺书,\n39000002,围城（注释本）,钱锺书,\n"+
		"39000003,活着,余华,\n39000004,围城 外文版,钱锺书,\n39000005,红楼梦,曹雪芹,\n39000006,西游记,吴承恩,\n39000007,水浒传,施耐庵,\n"), time.Now()); err != nil {
		t.Fatal(err)
	}
	f.orders["gulou-1/ORD-1"] = func() hub.OrderRec {
		o := f.orders["gulou-1/ORD-1"]
		o.Items = []protocol.Item{{Barcode: "39000002"}}
		return o
	}()
	sh := &shop{Service: st, f: f}
	p, err := orderpage.New(orderpage.Config{Hub: f, Readers: readers{f}, ILS: &shelfILS{}, Shop: sh, Key: key, MaxBooks: 3})
	if err != nil {
		t.Fatal(err)
	}
	do := browse(t, httptestServer(t, p.Handler()))
	if code, _ := do("GET", "/r/stock?q=围城", nil); code != 200 {
		t.Fatalf("the stock before sign-in: %d", code)
	}
	if code, body := do("POST", "/r/signin?lang=en", url.Values{"card": {"21000001"}, "pin": {"1234"}}); code != 200 || !strings.Contains(body, "Order books to a locker") {
		t.Fatalf("sign-in: %d", code)
	}
	code, body := do("GET", "/r/stock?lang=en&q="+url.QueryEscape("围城 钱"), nil)
	if code != 200 || strings.Count(body, `name="book"`) != 3 {
		t.Fatalf("search: %d\n%s", code, body)
	}
	for _, b := range []string{"39000002", "39000004"} { // in a live order; lent
		if !strings.Contains(body, `value="`+b+`" disabled`) {
			t.Errorf("%s offered", b)
		}
	}
	if strings.Contains(body, `value="39000001" disabled`) {
		t.Error("39000001 not offered")
	}
	for _, tc := range []struct {
		form url.Values
		want string
	}{
		{url.Values{"book": {"39000001", "39000003", "39000005", "39000006"}, "locker": {"gulou-1"}}, "Choose 1 to 3 books"},
		{url.Values{"book": {"39000001", "39000004"}, "locker": {"gulou-1"}}, "on loan or on hold"},
		{url.Values{"book": {"39000001"}, "locker": {"nowhere"}}, "Choose books and where"},
		{url.Values{"book": {"39000001"}, "locker": {"gulou-1"}, "email": {"Li <li@example.org>"}}, "does not look right"},
		{url.Values{"book": {"39009999"}, "locker": {"gulou-1"}}, "on loan or on hold"},
	} {
		if code, body := do("POST", "/r/order?lang=en", tc.form); code < 400 || !strings.Contains(body, tc.want) {
			t.Errorf("%v: %d, want %q", tc.form, code, tc.want)
		}
	}
	code, body = do("POST", "/r/order?lang=en", url.Values{"book": {"39000003", "39000001"}, "locker": {"gulou-1"}, "email": {"li.wei@example.org"}})
	if code != 200 || !strings.Contains(body, "On its way to the locker") {
		t.Fatalf("the order: %d\n%s", code, body)
	}
	if len(sh.made) != 1 {
		t.Fatalf("%d orders made", len(sh.made))
	}
	o := sh.made[0]
	if o.Locker != "gulou-1" || o.Patron != "21000001" || len(o.Items) != 2 || o.Items[0].Barcode != "39000001" || o.Items[0].Title != "围城" ||
		o.Contact.Email != "li.wei@example.org" || o.Contact.Lang != "en" {
		t.Fatalf("order made %+v", o)
	}
}

// A signed-in reader's searches are bounded: a flood is slowed before the
// library system is asked for every book of every page.
func TestStockSearchFlood(t *testing.T) {
	f, _, _, _, _ := rig(t)
	st := stock.New(stocktest.NewMem())
	st.Import("stock.csv", strings.NewReader("barcode,title,author,isbn\n39000001,围城,钱锺书,\n"), time.Now())
	ils := &shelfILS{}
	p, _ := orderpage.New(orderpage.Config{Hub: f, Readers: readers{f}, ILS: ils, Shop: &shop{Service: st, f: f}, Key: key})
	do := browse(t, httptestServer(t, p.Handler()))
	if code, _ := do("POST", "/r/signin", url.Values{"card": {"21000001"}, "pin": {"1234"}}); code != 200 {
		t.Fatalf("sign-in: %d", code)
	}
	slowed := 0
	for range 60 {
		if code, _ := do("GET", "/r/stock?q=%E5%9B%B4%E5%9F%8E", nil); code == http.StatusTooManyRequests {
			slowed++
		}
	}
	if slowed < 30 {
		t.Fatalf("60 searches at once: %d slowed", slowed)
	}
}

// A reader who chooses home delivery gives an address: the order is made
// at the library's delivery locker, marked for a courier, with the
// address; their list and the order's page show where it goes, with no
// code. Without an address it is refused; without a delivery locker
// configured the choice is not offered.
func TestHomeDelivery(t *testing.T) {
	f, _, _, _, _ := rig(t)
	st := stock.New(stocktest.NewMem())
	st.Import("stock.csv", strings.NewReader("barcode,title,author,isbn\n39000001,围城,钱锺书,\n39000003,活着,余华,\n"), time.Now())
	sh := &shop{Service: st, f: f}
	p, err := orderpage.New(orderpage.Config{Hub: f, Readers: readers{f}, ILS: &shelfILS{}, Shop: sh, Key: key, DeliveryLocker: "gulou-1"})
	if err != nil {
		t.Fatal(err)
	}
	do := browse(t, httptestServer(t, p.Handler()))
	do("POST", "/r/signin?lang=zh", url.Values{"card": {"21000001"}, "pin": {"1234"}})
	if _, body := do("GET", "/r/stock?lang=zh&q="+url.QueryEscape("围城"), nil); !strings.Contains(body, `<option value="delivery">送书到家`) {
		t.Fatalf("home delivery not offered:\n%s", body)
	}
	if code, body := do("POST", "/r/order?lang=zh", url.Values{"book": {"39000001"}, "locker": {"delivery"}, "address": {"  "}}); code != 400 || !strings.Contains(body, "请填写送书地址") {
		t.Fatalf("no address: %d", code)
	}
	code, body := do("POST", "/r/order?lang=zh", url.Values{"book": {"39000001"}, "locker": {"delivery"}, "email": {"li.wei@example.org"},
		"address": {"鼓楼区\r\n中山路 8 号 3 单元 501"}})
	if code != 200 || !strings.Contains(body, "正在备书") || !strings.Contains(body, "鼓楼区 中山路 8 号 3 单元 501") {
		t.Fatalf("the delivery order: %d\n%s", code, body)
	}
	link := regexp.MustCompile(`href="\.\./o/([^"?]+)`).FindStringSubmatch(body)
	if link == nil {
		t.Fatalf("no link to the order's page:\n%s", body)
	}
	if code, page := do("GET", "/o/"+link[1]+"?lang=en", nil); code != 200 || !strings.Contains(page, "Being gathered") || !strings.Contains(page, "Delivered to") ||
		strings.Contains(page, `class="qr"`) {
		t.Fatalf("the delivery's page: %d\n%s", code, page)
	}
	if len(sh.made) != 1 || !sh.made[0].Delivery || sh.made[0].Locker != "gulou-1" || sh.made[0].Address != "鼓楼区 中山路 8 号 3 单元 501" || sh.made[0].Source != "reader" {
		t.Fatalf("made %+v", sh.made)
	}
	// Without a delivery locker: no such choice, and a forged one is refused.
	p2, _ := orderpage.New(orderpage.Config{Hub: f, Readers: readers{f}, ILS: &shelfILS{}, Shop: sh, Key: key})
	do2 := browse(t, httptestServer(t, p2.Handler()))
	do2("POST", "/r/signin?lang=en", url.Values{"card": {"21000001"}, "pin": {"1234"}})
	if _, body := do2("GET", "/r/stock?lang=en&q="+url.QueryEscape("活着"), nil); strings.Contains(body, `value="delivery"`) {
		t.Fatal("home delivery offered with no delivery locker")
	}
	if code, _ := do2("POST", "/r/order?lang=en", url.Values{"book": {"39000003"}, "locker": {"delivery"}, "address": {"1 Road"}}); code != 400 {
		t.Fatalf("a forged delivery: %d", code)
	}
}
