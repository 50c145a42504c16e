package main

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"net"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/locker/lockertest"
	"github.com/lockerd/lockerd/sync/brokertest"
	"github.com/lockerd/lockerd/sync/hub"
	"github.com/lockerd/lockerd/sync/hub/circulation"
	"github.com/lockerd/lockerd/sync/hub/hubtest"
	"github.com/lockerd/lockerd/sync/hub/notice"
	"github.com/lockerd/lockerd/sync/hub/notice/noticetest"
	"github.com/lockerd/lockerd/sync/hub/orderpage"
	"github.com/lockerd/lockerd/sync/sip2"
)

// startReaderSide runs a hub on cfg (the test locker, the pickup key
// filled in) with what readers see: notices by e-mail to a real SMTP
// server, codes sealed to a fresh notice key, the Gulou place, and the
// order pages (with ils for the card sign-in) on a listener of their own,
// which the notices' links name.
func startReaderSide(t *testing.T, cfg hub.Config, ils circulation.ILS) (*hub.Hub, *noticetest.SMTP, *httptest.Server) {
	t.Helper()
	mail := noticetest.StartSMTP(t)
	nk, _ := notice.NewKey()
	raw, _ := hex.DecodeString(nk)
	sealer, _ := notice.NewSealer(raw)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pageURL := "http://" + ln.Addr().String()
	pageKey := []byte("the order pages' key, 32 bytes..")
	places := func(string) notice.Place {
		return notice.Place{Name: notice.Text{"zh": "鼓楼社区服务中心", "en": "Gulou Community Centre"},
			Address: notice.Text{"zh": "中山西路 1 号", "en": "1 Zhongshan Road West"}, Hours: notice.Text{"zh": "每天 8:00–20:00", "en": "Daily 8:00–20:00"}}
	}
	cfg.PickupKey, cfg.Lockers = lockertest.Key, []string{lockerID}
	cfg.Notices = notice.Config{Sealer: sealer, Places: places, Link: orderpage.Linker(pageKey, pageURL, 0),
		Channels: map[string]notice.Channel{notice.ChannelEmail: &notice.Email{Addr: mail.Addr, From: "lockers@library.example.org",
			TLSConfig: &tls.Config{ServerName: "127.0.0.1", RootCAs: mail.Roots}}}}
	h := hubtest.Start(t, cfg)
	pc := orderpage.ForHub(h)
	pc.Key, pc.Sealer, pc.BaseURL, pc.Places, pc.ILS = pageKey, sealer, pageURL, places, ils
	page, err := orderpage.New(pc)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(page.Handler())
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return h, mail, srv
}

// readerILS knows one reader (21000001, PIN 1234); every book is on the
// shelf.
type readerILS struct{ circulation.ILS }

func (readerILS) PatronStatus(_ context.Context, patron, pin string) (sip2.PatronInfo, error) {
	return sip2.PatronInfo{Valid: patron == "21000001", PINOK: patron == "21000001" && pin == "1234", Name: "Li Wei"}, nil
}

func (readerILS) ItemInformation(context.Context, string) (sip2.ItemInfo, error) {
	return sip2.ItemInfo{Status: sip2.StatusAvailable}, nil
}

// TestReaderPagesInABrowser: the reader's side in headless Chromium at a
// phone's size, against a real lockerd. An order made with the reader's
// e-mail is loaded at the locker; the e-mail comes (a real SMTP server)
// with the code and the order page's link; the page, opened from that
// link, shows the order ready with its QR code, in Chinese and in
// English; the code scanned at the locker opens the door; the page then
// says picked up, without the code. The reader then signs in with card
// and PIN, searches the stock in Chinese and orders two books to the
// locker; staff load them, and the reader is told (in English: the page's
// language), both books named.
// Screenshots of each page in both languages with make screenshots.
func TestReaderPagesInABrowser(t *testing.T) {
	mq := brokertest.StartMosquitto(t, brokertest.MosquittoOptions{})
	key, pub := newKey(t)
	h, mail, srv := startReaderSide(t, hub.Config{Brokers: []string{mq.URL}, SigningKey: key}, readerILS{})
	if _, err := h.Stock().Import("stock.csv", strings.NewReader("barcode,title,author,isbn\n39000001,围城,钱锺书,978-7-02-009000-6\n"+
		"39000002,活着,余华,7-5063-3428-3\n39000003,三体,刘慈欣,\n39000004,围城（注释本）,钱锺书,\n"), time.Now()); err != nil {
		t.Fatal(err)
	}

	c := newCabinet(t, "0s", withMQTT(mq.URL, pub, ""))
	d := start(t, c.Config)
	until(t, "locker online", func() bool { li, _ := h.Locker(lockerID); return li.Online })
	cr, err := h.CreateOrder(hub.NewOrder{Locker: lockerID, Patron: "21000001", Contact: notice.Contact{Email: "li.wei@example.org"}})
	if err != nil {
		t.Fatal(err)
	}
	until(t, "the order at the locker", func() bool { li, _ := h.Locker(lockerID); return li.OrdersRev >= cr.Order.Rev })
	loadOrder(t, d, cr.Order.ID)
	untilWithin(t, "the e-mail", 30*time.Second, func() bool { return len(mail.Mails()) == 1 })
	body := string(mail.Mails()[0].Data)
	link := regexp.MustCompile(`查看订单: (http://\S+)`).FindStringSubmatch(body)
	if link == nil || !strings.Contains(body, "取书码: "+cr.Code) {
		t.Fatalf("the e-mail:\n%s", body)
	}

	ctx, _ := browser(t, 390, 844)
	// The link as it came (the browser asks for English), then in Chinese.
	do(t, ctx, "the order page from the e-mail", chromedp.Navigate(link[1]), chromedp.WaitVisible(chromedp.CSS(".state.ready")))
	if txt := get(t, ctx, "the page's text", chromedp.Evaluate[string](`document.body.innerText`)); !strings.Contains(txt, "Ready: collect it") || !strings.Contains(txt, cr.Code) {
		t.Fatalf("the page says:\n%s", txt)
	}
	if w := get(t, ctx, "the QR code drawn", chromedp.Evaluate[int](`document.querySelector('img.qr').naturalWidth`)); w < 100 {
		t.Fatalf("QR code %d pixels wide", w)
	}
	shot(t, ctx, "reader-order-en")
	do(t, ctx, "in Chinese", chromedp.Navigate(link[1]+"?lang=zh"), chromedp.WaitVisible(chromedp.CSS(".state.ready")))
	if txt := get(t, ctx, "the page's text", chromedp.Evaluate[string](`document.body.innerText`)); !strings.Contains(txt, "已到柜，请取书") || !strings.Contains(txt, "鼓楼社区服务中心") {
		t.Fatalf("the page in Chinese says:\n%s", txt)
	}
	shot(t, ctx, "reader-order-zh")

	res := d.scan("keypad", cr.Code)
	if res.Outcome != locker.OutcomeOpened {
		t.Fatalf("the code from the e-mail at the locker: %+v", res)
	}
	d.sim("close", res.Compartments[0])
	until(t, "picked up at the hub", func() bool { o, _, _ := h.Order(lockerID, cr.Order.ID); return o.Status == "picked_up" })
	do(t, ctx, "the page again", chromedp.Navigate(link[1]+"?lang=en"), chromedp.WaitVisible(chromedp.CSS(".state.picked_up")))
	if txt := get(t, ctx, "the page's text", chromedp.Evaluate[string](`document.body.innerText`)); !strings.Contains(txt, "Picked up") || strings.Contains(txt, cr.Code) {
		t.Fatalf("after the pickup the page says:\n%s", txt)
	}

	// Card and PIN, the stock, an order.
	for _, lang := range []string{"en", "zh"} {
		do(t, ctx, "sign-in "+lang, chromedp.Navigate(srv.URL+"/r/?lang="+lang), chromedp.WaitVisible(chromedp.CSS(`input[name=card]`)))
		shot(t, ctx, "reader-signin-"+lang)
	}
	do(t, ctx, "sign in", chromedp.SendKeys(chromedp.CSS(`input[name=card]`), "21000001"), chromedp.SendKeys(chromedp.CSS(`input[name=pin]`), "1234"),
		chromedp.Click(chromedp.CSS(`button.primary`)), chromedp.WaitVisible(chromedp.CSS(`a[href^="stock"]`)))
	shot(t, ctx, "reader-orders-zh")
	if txt := get(t, ctx, "the reader's orders", chromedp.Evaluate[string](`document.body.innerText`)); !strings.Contains(txt, "已取走") {
		t.Fatalf("the reader's orders:\n%s", txt)
	}
	do(t, ctx, "search the stock", chromedp.Click(chromedp.CSS(`a[href^="stock"]`)), chromedp.WaitVisible(chromedp.CSS(`input[name=q]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=q]`), "围城"), chromedp.Submit(chromedp.CSS(`input[name=q]`)),
		chromedp.WaitVisible(chromedp.CSS(`input[name=book][value="39000001"]`)))
	shot(t, ctx, "reader-stock-zh")
	do(t, ctx, "the stock in English", chromedp.Navigate(srv.URL+"/r/stock?lang=en&q=%E5%9B%B4%E5%9F%8E"), chromedp.WaitVisible(chromedp.CSS(`input[name=book]`)))
	shot(t, ctx, "reader-stock-en")
	do(t, ctx, "order two", chromedp.Click(chromedp.CSS(`input[name=book][value="39000001"]`)), chromedp.Click(chromedp.CSS(`input[name=book][value="39000004"]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=email]`), "li.wei@example.org"), chromedp.Click(chromedp.CSS(`button.primary`)),
		chromedp.WaitVisible(chromedp.CSS(`.state.assigned`)))
	if txt := get(t, ctx, "the list", chromedp.Evaluate[string](`document.body.innerText`)); !strings.Contains(txt, "On its way to the locker") {
		t.Fatalf("the reader's orders:\n%s", txt)
	}
	shot(t, ctx, "reader-orders-en")
	orders, _ := h.Orders(lockerID)
	var made *hub.OrderRec
	for i, o := range orders {
		if len(o.Items) == 2 && o.Items[0].Barcode == "39000001" && o.Items[1].Barcode == "39000004" {
			made = &orders[i]
		}
	}
	if made == nil || made.Patron != "21000001" || made.Source != "reader" || made.Contact.Email != "li.wei@example.org" {
		t.Fatalf("the order from the stock: %+v", made)
	}
	// Staff pull the book and load it: the reader is told.
	until(t, "the stock order at the locker", func() bool { li, _ := h.Locker(lockerID); return li.OrdersRev >= made.Rev })
	loadOrder(t, d, made.ID)
	untilWithin(t, "the second e-mail", 30*time.Second, func() bool { return len(mail.Mails()) == 2 })
	if body := string(mail.Mails()[1].Data); !strings.Contains(body, "Pickup code: ") || !strings.Contains(body, "Gulou Community Centre") ||
		!strings.Contains(body, "Books: 围城; 围城（注释本）") {
		t.Fatalf("the e-mail for the stock order:\n%s", body)
	}
}
