package hub_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lockerd/lockerd/locker/lockertest"
	"github.com/lockerd/lockerd/sync/hub"
	"github.com/lockerd/lockerd/sync/hub/hubtest"
	"github.com/lockerd/lockerd/sync/hub/notice"
	"github.com/lockerd/lockerd/sync/hub/notice/noticetest"
	"github.com/lockerd/lockerd/sync/protocol"
)

// The reader is told, once, in their language: an order made with a
// contact is loaded at the locker (the event comes twice) and one e-mail
// goes out over STARTTLS with the code, the door, the locker's place and
// the last day; a reminder when the last day is less than a day away,
// once; the order picked up, its sealed code is gone; another order
// cancelled is told as such. The pickup codes are nowhere in the store's
// file, and the notices are listed without them.
func TestReadersAreTold(t *testing.T) {
	mail := noticetest.StartSMTP(t)
	key, _ := notice.NewKey()
	raw, _ := hex.DecodeString(key)
	sealer, err := notice.NewSealer(raw)
	if err != nil {
		t.Fatal(err)
	}
	email := &notice.Email{Addr: mail.Addr, From: "lockers@library.example.org", TLSConfig: &tls.Config{ServerName: "127.0.0.1", RootCAs: mail.Roots}}
	file := filepath.Join(t.TempDir(), "hub.db")
	h, err := hub.New(hub.Config{Store: hubtest.BoltStore(t, file), SigningKey: signerKey, PickupKey: lockertest.Key,
		Lockers: []string{"nb-1"}, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Notices: notice.Config{Sealer: sealer, Channels: map[string]notice.Channel{notice.ChannelEmail: email},
			Places: func(string) notice.Place {
				return notice.Place{Name: notice.Text{"en": "Gulou Community Centre"}, Hours: notice.Text{"en": "8:00-20:00"}}
			}}})
	if err != nil {
		t.Fatal(err)
	}
	status, _ := json.Marshal(protocol.Status{V: 1, Type: protocol.TypeStatus, Online: true, Boot: 1, Store: "s1", Instance: "i1", OutboxTail: 1, TS: time.Now().UTC()})
	h.HandleUplink(tp.Status(), status)
	if _, err := h.CreateOrder(hub.NewOrder{Locker: "nb-1", ID: "O0", Contact: notice.Contact{Email: "Li <li@example.org>"}}); err == nil {
		t.Fatal("an order with a malformed contact made")
	}
	o1, err := h.CreateOrder(hub.NewOrder{Locker: "nb-1", ID: "O1", Patron: "P1", TTL: "20h", Contact: notice.Contact{Email: "li.wei@example.org", Lang: "en"}})
	if err != nil {
		t.Fatal(err)
	}
	o2, err := h.CreateOrder(hub.NewOrder{Locker: "nb-1", ID: "O2", Contact: notice.Contact{Email: "zhang@example.org"}})
	if err != nil {
		t.Fatal(err)
	}
	seq := uint64(0)
	event := func(typ string, data any) {
		seq++
		d, _ := json.Marshal(data)
		e := protocol.Event{V: 1, ID: protocol.EventID("nb-1", "s1", seq), Type: typ, Locker: "nb-1", Store: "s1", Boot: 1, Seq: seq, TS: time.Now().UTC(), Data: d}
		raw, _ := json.Marshal(e)
		h.HandleUplink(tp.UpEvt(), raw)
		h.HandleUplink(tp.UpEvt(), raw) // sent again: stored, and told, once
	}
	event("order.loaded", protocol.OrderLoaded{OrderID: "O1", Compartment: "M3"})
	ctx, now := context.Background(), time.Now()
	h.Notices().Work(ctx, now)
	mails := mail.Mails()
	if len(mails) != 1 {
		t.Fatalf("%d mails after the load", len(mails))
	}
	for _, want := range []string{"Pickup code: " + o1.Code, "Door: M3", "Gulou Community Centre", "8:00-20:00", "Last day: "} {
		if !strings.Contains(string(mails[0].Data), want) {
			t.Fatalf("the mail lacks %q:\n%s", want, mails[0].Data)
		}
	}
	// Less than a day left (20 h): reminded, once.
	h.Remind(now)
	h.Remind(now.Add(time.Hour))
	h.Notices().Work(ctx, now)
	if mails = mail.Mails(); len(mails) != 2 || !strings.Contains(string(mails[1].Data), "tomorrow is the last day") || !strings.Contains(string(mails[1].Data), o1.Code) {
		t.Fatalf("%d mails after the reminder", len(mails))
	}
	event("pickup.completed", protocol.PickupCompleted{OrderID: "O1", Compartments: []string{"M3"}, Via: "code"})
	if _, err := h.CancelOrder("nb-1", "O2"); err != nil {
		t.Fatal(err)
	}
	h.Notices().Work(ctx, time.Now())
	if mails = mail.Mails(); len(mails) != 3 || mails[2].To[0] != "zhang@example.org" || !strings.Contains(string(mails[2].Data), "您的预约已取消") ||
		strings.Contains(string(mails[2].Data), o2.Code) {
		t.Fatalf("the cancellation: %d mails", len(mails))
	}
	orders, _ := h.Orders("nb-1")
	for _, o := range orders {
		if o.SealedCode != nil {
			t.Fatalf("order %s (%s) keeps its sealed code", o.ID, o.Status)
		}
	}
	listed, err := h.Notices().List("", 0, 0)
	if err != nil || len(listed) != 3 {
		t.Fatalf("notices %+v %v", listed, err)
	}
	for _, n := range listed {
		if n.State != notice.StateSent || n.Sealed != nil {
			t.Fatalf("listed %+v", n)
		}
	}
	h.Close()
	db, _ := os.ReadFile(file)
	for _, code := range []string{o1.Code, o2.Code} {
		if bytes.Contains(db, []byte(code)) {
			t.Fatalf("the code %s is in the store's file", code)
		}
	}
}

// A home delivery's reader is told once, when the courier's badge takes
// the books from the delivery locker: where they go, the books, no code;
// not when staff load them, and no reminder.
func TestDeliveryIsTold(t *testing.T) {
	mail := noticetest.StartSMTP(t)
	key, _ := notice.NewKey()
	raw, _ := hex.DecodeString(key)
	sealer, _ := notice.NewSealer(raw)
	email := &notice.Email{Addr: mail.Addr, From: "lockers@library.example.org", TLSConfig: &tls.Config{ServerName: "127.0.0.1", RootCAs: mail.Roots}}
	h, err := hub.New(hub.Config{Store: hubtest.BoltStore(t, filepath.Join(t.TempDir(), "hub.db")), SigningKey: signerKey, PickupKey: lockertest.Key,
		Lockers: []string{"nb-1"}, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Notices: notice.Config{Sealer: sealer, Channels: map[string]notice.Channel{notice.ChannelEmail: email}}})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if _, err := h.CreateOrder(hub.NewOrder{Locker: "nb-1", ID: "D0", Address: "1 Road"}); err == nil {
		t.Fatal("an address on an order to collect")
	}
	o, err := h.CreateOrder(hub.NewOrder{Locker: "nb-1", ID: "D1", Delivery: true, Address: "鼓楼区中山路 8 号", Source: "reader", TTL: "20h",
		Items: []protocol.Item{{Barcode: "39000001", Title: "围城"}}, Contact: notice.Contact{Email: "li.wei@example.org"}})
	if err != nil {
		t.Fatal(err)
	}
	if o.Order.Order.Delivery != true {
		t.Fatalf("order %+v", o.Order)
	}
	seq := uint64(0)
	event := func(typ string, data any) {
		seq++
		d, _ := json.Marshal(data)
		e, _ := json.Marshal(protocol.Event{V: 1, ID: protocol.EventID("nb-1", "s1", seq), Type: typ, Locker: "nb-1", Store: "s1", Boot: 1, Seq: seq, TS: time.Now().UTC(), Data: d})
		h.HandleUplink(tp.UpEvt(), e)
	}
	status, _ := json.Marshal(protocol.Status{V: 1, Type: protocol.TypeStatus, Online: true, Boot: 1, Store: "s1", Instance: "i1", OutboxTail: 1, TS: time.Now().UTC()})
	h.HandleUplink(tp.Status(), status)
	ctx := context.Background()
	event("order.loaded", protocol.OrderLoaded{OrderID: "D1", Compartment: "L1"})
	h.Remind(time.Now())
	h.Notices().Work(ctx, time.Now())
	if n := len(mail.Mails()); n != 0 {
		t.Fatalf("%d mails before the courier took it", n)
	}
	event("pickup.completed", protocol.PickupCompleted{OrderID: "D1", Compartments: []string{"L1"}, Via: "badge", By: "courier Wang"})
	h.Notices().Work(ctx, time.Now())
	mails := mail.Mails()
	if len(mails) != 1 {
		t.Fatalf("%d mails after the courier took it", len(mails))
	}
	body := string(mails[0].Data)
	for _, want := range []string{"送达地址: 鼓楼区中山路 8 号", "图书: 围城", "您订的图书已交给送书员"} {
		if !strings.Contains(body, want) {
			t.Fatalf("the mail lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, o.Code) || strings.Contains(body, "取书码") {
		t.Fatalf("a delivery's mail carries a code:\n%s", body)
	}
	if got, _, _ := h.Order("nb-1", "D1"); got.Address != "鼓楼区中山路 8 号" || got.Source != "reader" {
		t.Fatalf("kept %+v", got)
	}
}
