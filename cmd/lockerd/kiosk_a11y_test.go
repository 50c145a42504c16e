package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/locker/httpapi"
	"github.com/lockerd/lockerd/sync/brokertest"
	"github.com/lockerd/lockerd/sync/hub"
	"github.com/lockerd/lockerd/sync/sip2/sip2test"
)

// audioProbe records, in the page, every prompt the kiosk starts playing
// and every one that played to its end: the test sees what a reader
// hears. (It wraps the browser's Audio and play(), its "ended" listener
// first, before the kiosk's moves on to the next clip; the kiosk's code is
// unchanged.)
const audioProbe = `(() => {
  window.__played = []; window.__ended = [];
  const probe = (el) => el.addEventListener("ended", () => window.__ended.push(new URL(el.src).pathname));
  const A = window.Audio;
  // Played 8 times as fast: every clip still plays to its end.
  window.Audio = function (...args) { const el = new A(...args); el.defaultPlaybackRate = 8; probe(el); return el; };
  window.Audio.prototype = A.prototype;
  const play = HTMLMediaElement.prototype.play;
  HTMLMediaElement.prototype.play = function () { window.__played.push(new URL(this.src).pathname); return play.call(this); };
})();`

// heard waits until every prompt of keys (in lang) played to its end, in
// that order, after the first mark prompts already heard.
func heard(t *testing.T, ctx context.Context, lang string, from int, keys ...string) int {
	t.Helper()
	var want []string
	for _, k := range keys {
		want = append(want, "/kiosk/assets/voice/"+lang+"/"+k+".wav")
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		ended := get(t, ctx, "prompts heard", chromedp.Evaluate[[]string](`window.__ended`))
		if from <= len(ended) {
			if i := indexSeq(ended[from:], want); i >= 0 {
				return from + i + len(want)
			}
		}
		if time.Now().After(deadline) {
			played := get(t, ctx, "prompts played", chromedp.Evaluate[[]string](`window.__played`))
			t.Fatalf("did not hear %v after prompt %d; heard %v, started %v", keys, from, ended, played)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// indexSeq is the index in s where sub starts, or -1.
func indexSeq(s, sub []string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if slices.Equal(s[i:i+len(sub)], sub) {
			return i
		}
	}
	return -1
}

// TestKioskAccessibility drives the kiosk in Chromium in accessibility
// mode: larger text and keys, and every screen speaks its prompt in the
// current language — welcome, the door that opened and which (spelt),
// books left inside, thank you, refused and why, locked out, a library
// card's PIN asked and a wrong PIN, return accepted. Audio is real: each
// prompt is an embedded WAV file the browser plays to its end. Idle turns
// the mode off for the next reader.
func TestKioskAccessibility(t *testing.T) {
	mq := brokertest.StartMosquitto(t, brokertest.MosquittoOptions{})
	hubC, _, _ := startCentralWithILS(t, mq.URL, []sip2test.Patron{{ID: "21000123", PIN: "4321", Name: "Li Wei"}})
	c := newCabinet(t, "0s", withMQTT(mq.URL, hubC.Pub, ""), func(c *cabinet) {
		c.ItemSensors = true
		c.Extra += "kiosk: {idle_timeout: 10s, default_lang: en, columns: 3}\n"
	})
	d := start(t, c.Config)
	ctx, _ := browser(t, 800, 480, chromedp.Flag("autoplay-policy", "no-user-gesture-required"))
	do(t, ctx, "probe audio", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: audioProbe})
		return err
	}))
	do(t, ctx, "open the kiosk", chromedp.Navigate("http://"+d.api+"/"))
	waitScreen(t, ctx, "welcome")
	size := func() float64 {
		return get(t, ctx, "title size", chromedp.Evaluate[float64](`parseFloat(getComputedStyle(document.querySelector("#screen-welcome h1")).fontSize)`))
	}
	type key struct{ Font, Height float64 }
	keySize := func() key {
		return get(t, ctx, "key size", chromedp.Evaluate[key](`(() => { const b = document.querySelector("#keypad button");
			return {Font: parseFloat(getComputedStyle(b).fontSize), Height: b.getBoundingClientRect().height}; })()`))
	}
	overflows := func() bool {
		return get(t, ctx, "overflow", chromedp.Evaluate[bool](`document.documentElement.scrollHeight > innerHeight || document.documentElement.scrollWidth > innerWidth`))
	}
	plainSize, plainKey := size(), keySize()

	// The mode on: larger, and it says so.
	do(t, ctx, "accessibility on", chromedp.Click(chromedp.CSS("#a11y-toggle")))
	if got := get(t, ctx, "pressed", chromedp.AttributeValue(chromedp.CSS("#a11y-toggle"), "aria-pressed")); got.Value != "true" {
		t.Fatalf("aria-pressed %q", got.Value)
	}
	if s, k := size(), keySize(); s < plainSize*1.2 || k.Font < plainKey.Font*1.4 || k.Height < plainKey.Height {
		t.Fatalf("accessibility mode: title %.0f px (was %.0f), keys %+v (were %+v)", s, plainSize, k, plainKey)
	}
	if overflows() {
		t.Fatal("accessibility mode: the page overflows the 800x480 screen")
	}
	n := heard(t, ctx, "en", 0, "a11y.on")
	shot(t, ctx, "a11y-welcome")

	// A wrong code: refused, and why.
	typeCode(t, ctx, "WRONG1", true)
	waitScreen(t, ctx, "refused")
	n = heard(t, ctx, "en", n, "refused.unknown")
	do(t, ctx, "back", chromedp.Click(chromedp.CSS("#refused-back")))
	waitScreen(t, ctx, "welcome")
	n = heard(t, ctx, "en", n, "welcome.title")

	// A good code: the door and which, spelt; books left inside; thanks.
	rep := d.addOrder(httpapi.AddOrderRequest{Compartment: "B01"})
	typeCode(t, ctx, rep.Code, true)
	waitScreen(t, ctx, "door")
	n = heard(t, ctx, "en", n, "voice.door_prefix", "char.B", "char.0", "char.1", "voice.door_suffix")
	shot(t, ctx, "a11y-door")
	d.sim("put", "B01")
	d.sim("close", "B01")
	d.waitEvent(locker.EvPickupItemsLeft, map[string]any{"compartment": "B01"})
	do(t, ctx, "books left", chromedp.WaitVisible(chromedp.CSS("#items-left")))
	if got := text(t, ctx, "#items-left"); !strings.Contains(got, "B01") {
		t.Fatalf("items left: %q", got)
	}
	n = heard(t, ctx, "en", n, "items.left_voice")
	shot(t, ctx, "a11y-items-left")
	d.scan("front", rep.Code)
	n = heard(t, ctx, "en", n, "voice.door_prefix", "char.B", "char.0", "char.1", "voice.door_suffix")
	d.sim("take", "B01")
	d.sim("close", "B01")
	waitScreen(t, ctx, "thanks")
	n = heard(t, ctx, "en", n, "thanks")

	// A library card: its PIN asked on a digit pad (shown as dots); a
	// wrong PIN said so; the right one opens the reader's order.
	cr, err := hubC.CreateOrder(hub.NewOrder{Locker: lockerID, Patron: "21000123", Size: "S"})
	if err != nil {
		t.Fatal(err)
	}
	until(t, "the order at the locker", func() bool { li, _ := hubC.Locker(lockerID); return li.OrdersRev >= 1 })
	comp := loadOrder(t, d, cr.Order.ID) // (nothing put in: load.empty tells the staff)
	waitScreen(t, ctx, "welcome")
	d.scan("front", "21000123")
	waitScreen(t, ctx, "pin")
	n = heard(t, ctx, "en", n, "pin.title")
	pressPIN := func(pin string) {
		var acts []chromedp.Action[chromedp.Void]
		for _, c := range pin {
			acts = append(acts, chromedp.Click(fmt.Sprintf(`//div[@id="pin-keypad"]/button[text()=%q]`, string(c))))
		}
		do(t, ctx, "type the PIN", acts...)
	}
	pressPIN("99")
	if got := text(t, ctx, "#pin-display"); got != "••" {
		t.Fatalf("the PIN is shown as %q", got)
	}
	shot(t, ctx, "a11y-pin")
	do(t, ctx, "OK", chromedp.Click(chromedp.CSS("#pin-ok")))
	waitScreen(t, ctx, "refused")
	n = heard(t, ctx, "en", n, "refused.wrong_pin")
	do(t, ctx, "back", chromedp.Click(chromedp.CSS("#refused-back")))
	d.scan("front", "21000123")
	waitScreen(t, ctx, "pin")
	pressPIN("4321")
	do(t, ctx, "OK", chromedp.Click(chromedp.CSS("#pin-ok")))
	waitScreen(t, ctx, "door")
	d.waitEvent(locker.EvPickupCompleted, map[string]any{"order_id": cr.Order.ID, "via": "card"})
	body := get(t, ctx, "page text", chromedp.Text(chromedp.CSS("body")))
	if strings.Contains(body, "4321") || strings.Contains(body, "21000123") {
		t.Fatal("the PIN or the card on screen")
	}
	d.sim("close", comp)
	waitScreen(t, ctx, "thanks")

	// Return accepted, in Chinese after switching language.
	do(t, ctx, "中文", chromedp.Click(chromedp.CSS("#lang-toggle")))
	do(t, ctx, "return button", chromedp.Click(chromedp.CSS("#return-btn")))
	waitScreen(t, ctx, "return")
	n = heard(t, ctx, "zh-CN", n, "return.title")
	d.scan("returns", "9787020002207")
	n = heard(t, ctx, "zh-CN", n, "return.accepted")
	do(t, ctx, "back", chromedp.Click(chromedp.CSS("#return-back")))

	// Five wrong codes: locked out, said.
	for i := range 5 {
		waitScreen(t, ctx, "welcome")
		typeCode(t, ctx, fmt.Sprintf("BAD%d", i), true)
		waitScreen(t, ctx, "refused")
		if i < 4 {
			do(t, ctx, "back", chromedp.Click(chromedp.CSS("#refused-back")))
		}
	}
	heard(t, ctx, "zh-CN", n, "refused.locked_out")
	shot(t, ctx, "a11y-locked-out-zh")

	// Idle: the next reader gets the default screen.
	get(t, ctx, "idle turns the mode off", chromedp.Poll[bool](`document.getElementById("a11y-toggle").getAttribute("aria-pressed") === "false" && !document.body.classList.contains("a11y")`,
		chromedp.WithPollingTimeout(30*time.Second)))
}
