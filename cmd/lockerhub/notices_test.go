package main

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lockerd/lockerd/cmd/internal/fleetsim"
	"github.com/lockerd/lockerd/cmd/internal/hubproc"
	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/locker/lockertest"
	"github.com/lockerd/lockerd/sync/brokertest"
	"github.com/lockerd/lockerd/sync/hub/notice/noticetest"
)

// The reader is told, end to end, with the real lockerhub: its config
// names the notice key (made by lockerhub keygen -name notice), the mail
// relay (a real SMTP server, STARTTLS, its CA in ca_file) and the
// locker's place; an order made with lockerhub order add --email reaches
// the locker, staff load it, and one e-mail comes, in English, with the
// code, which then opens the door. lockerhub notices lists it sent. With
// the relay refusing, the notice waits and goes once it takes it.
func TestNoticeEndToEnd(t *testing.T) {
	mail := noticetest.StartSMTP(t)
	mq := brokertest.StartMosquitto(t, brokertest.MosquittoOptions{})
	dir := t.TempDir()
	if _, errw, code := cli(t, "keygen", "-out", dir); code != 0 {
		t.Fatal(errw)
	}
	if out, errw, code := cli(t, "keygen", "-name", "notice", "-out", dir); code != 0 || !strings.Contains(out, "notices:") {
		t.Fatalf("keygen notice: %s %s", out, errw)
	}
	if _, _, code := cli(t, "keygen", "-name", "notice", "-out", dir); code == 0 {
		t.Fatal("a notice key overwritten")
	}
	os.WriteFile(filepath.Join(dir, "pickup.key"), []byte(hex.EncodeToString(lockertest.Key)+"\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "relay-ca.pem"), mail.CAPEM, 0o600)
	seed, _ := os.ReadFile(filepath.Join(dir, "central.key"))
	raw, _ := hex.DecodeString(strings.TrimSpace(string(seed)))
	pub := ed25519.NewKeyFromSeed(raw).Public().(ed25519.PublicKey)
	addr := fmt.Sprintf("127.0.0.1:%d", brokertest.FreePort(t))
	conf := filepath.Join(dir, "hub.yaml")
	os.WriteFile(conf, []byte(fmt.Sprintf(`store: {path: hub.db}
http: {listen: %q}
mqtt: {broker: %q}
keys: {signing_key_file: central.key, pickup_key_file: pickup.key}
lockers: [gulou-1]
notices:
  key_file: notice.key
  page_url: http://%s
  email: {address: %q, from: lockers@library.example.org, ca_file: relay-ca.pem}
places:
  gulou-1:
    name: {zh: 鼓楼社区服务中心, en: Gulou Community Centre}
    hours: {zh: "8:00–20:00", en: "8:00–20:00"}
`, addr, mq.URL, addr, mail.Addr)), 0o600)
	if out, errw, code := cli(t, "validate", conf); code != 0 {
		t.Fatalf("validate: %s %s", out, errw)
	}
	hp := hubproc.New(t, "lockerhub", hubproc.Build(t), conf, addr, filepath.Join(dir, "hub.log"))
	hp.Start()
	l, err := fleetsim.New(t.TempDir(), "gulou-1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	if err := l.Connect([]string{mq.URL}, pub, nil); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LOCKERHUB_TOKEN", hp.Token())
	ctx := context.Background()
	// add makes an order for the reader and has staff load it at the
	// locker; it returns the order, its code and when the door closed.
	add := func() (order, code string, loaded time.Time) {
		t.Helper()
		out, errw, rc := cli(t, "-hub", addr, "order", "add", "--locker", "gulou-1", "--email", "li.wei@example.org", "--lang", "en")
		if rc != 0 {
			t.Fatalf("order add: %s", errw)
		}
		order = regexp.MustCompile(`ORD-[0-9A-Z]+`).FindString(out)
		m := regexp.MustCompile(`code:? +([0-9A-Z]{6,})`).FindStringSubmatch(out)
		if order == "" || m == nil {
			t.Fatalf("order add printed %q", out)
		}
		waitFor(t, "the order at the locker", func() bool { return orderState(l, order) == locker.OrderAssigned })
		if res, _ := l.L.Scan(ctx, "front", fleetsim.StaffBadge); res.Outcome != locker.OutcomeStaffOn {
			t.Fatalf("badge: %+v", res)
		}
		if res, _ := l.L.Scan(ctx, "front", order); res.Outcome != locker.OutcomeLoading {
			t.Fatalf("load: %+v", res)
		}
		l.L.Scan(ctx, "front", fleetsim.StaffBadge)
		waitFor(t, "the order loaded", func() bool { return orderState(l, order) == locker.OrderReady })
		return order, m[1], time.Now()
	}
	pickUp := func(code string) {
		t.Helper()
		if res, _ := l.L.Scan(ctx, "front", code); res.Outcome != locker.OutcomeOpened {
			t.Fatalf("the code from the e-mail: %+v", res)
		}
	}
	mailOf := func(i int, code string) {
		t.Helper()
		body := string(mail.Mails()[i].Data)
		for _, want := range []string{"Pickup code: " + code, "Gulou Community Centre", "Door: S1", "Last day: "} {
			if !strings.Contains(body, want) {
				t.Fatalf("the e-mail lacks %q:\n%s", want, body)
			}
		}
	}

	// The relay takes it: the e-mail comes within a second of the load.
	order, code, loaded := add()
	waitFor(t, "the e-mail", func() bool { return len(mail.Mails()) == 1 })
	t.Logf("from the door closed on the load to the e-mail received: %v", time.Since(loaded).Round(time.Millisecond))
	mailOf(0, code)
	// The e-mail's link opens the order's page: ready, the QR code, the
	// code; after the pickup, picked up and no code.
	link := regexp.MustCompile(`Your order: (http://\S+)`).FindStringSubmatch(string(mail.Mails()[0].Data))
	if link == nil {
		t.Fatalf("no link in the e-mail:\n%s", mail.Mails()[0].Data)
	}
	page := func() string {
		t.Helper()
		resp, err := http.Get(link[1] + "?lang=en")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if p := page(); !strings.Contains(p, "Ready: collect it") || !strings.Contains(p, code) || !strings.Contains(p, "data:image/png;base64,") || !strings.Contains(p, "Gulou Community Centre") {
		t.Fatalf("the order page:\n%s", p)
	}
	pickUp(code)
	waitFor(t, "the page to say picked up", func() bool { return strings.Contains(page(), "Picked up") })
	if p := page(); strings.Contains(p, code) {
		t.Fatal("a picked-up order's page shows its code")
	}

	// The relay refuses: the notice waits, and goes once it takes it.
	mail.Refuse(true)
	order, code, _ = add()
	waitFor(t, "the notice tried and refused", func() bool {
		out, _, _ := cli(t, "-hub", addr, "notices", "--order", order)
		return strings.Contains(out, "550")
	})
	mail.Refuse(false) // the next try is after its back-off (30 s ± 20 %)
	waitFor(t, "the e-mail after the refusal", func() bool { return len(mail.Mails()) == 2 })
	mailOf(1, code)
	pickUp(code)
	out, _, _ := cli(t, "-hub", addr, "notices", "--order", order)
	if !strings.Contains(out, "sent") || strings.Contains(out, code) {
		t.Fatalf("notices:\n%s", out)
	}
	if n := len(mail.Mails()); n != 2 {
		t.Fatalf("%d e-mails", n)
	}
}

func orderState(l *fleetsim.Locker, id string) locker.OrderState {
	os, _ := l.L.Orders()
	for _, o := range os {
		if o.ID == id {
			return o.State
		}
	}
	return ""
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); !cond(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
