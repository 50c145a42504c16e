package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/locker/httpapi"
	"github.com/lockerd/lockerd/sync/brokertest"
)

// chromium finds Debian's Chromium; a test never skips for want of it.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("Chromium is not installed: the kiosk tests drive a real browser. Install it (Debian: apt-get install -y chromium) or run `make test`, which installs it as root.")
	return ""
}

// browser starts headless Chromium and records every URL the page asks for.
//
// Chromium in a container now and then crashes while it starts, before it
// has loaded any page (CI saw it once: crashpad's "no stack mapping" and
// "chrome failed to start"). That is the browser, not the kiosk, so a
// start that fails that way is logged and tried again, at most
// browserStarts times, each with a fresh profile. Any failure after the
// browser is up fails the test as before.
func browser(t *testing.T, w, h int, extra ...chromedp.ExecAllocatorOption) (context.Context, func() []string) {
	t.Helper()
	var err error
	for attempt := 1; attempt <= browserStarts; attempt++ {
		var ctx context.Context
		var requests func() []string
		ctx, requests, err = startBrowser(t, w, h, extra...)
		if err == nil {
			return ctx, requests
		}
		if !strings.Contains(err.Error(), "chrome failed to start") {
			break
		}
		t.Logf("Chromium crashed while starting (attempt %d of %d): %v", attempt, browserStarts, err)
	}
	t.Fatalf("start Chromium: %v", err)
	return nil, nil
}

const browserStarts = 3

func startBrowser(t *testing.T, w, h int, extra ...chromedp.ExecAllocatorOption) (context.Context, func() []string, error) {
	t.Helper()
	// Not t.TempDir: Chromium's helpers may still write there for a moment
	// after the browser exits, and TempDir's cleanup fails the test then.
	profile, err := os.MkdirTemp("", "lockerd-kiosk-chromium")
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(profile), chromedp.WindowSize(w, h))
	opts = append(opts, extra...)
	var mu sync.Mutex
	var urls []string
	// A listener from the start of the tab, so that no request is missed.
	listen := chromedp.WithListener(func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok {
			mu.Lock()
			urls = append(urls, e.Request.URL)
			mu.Unlock()
		}
	})
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(alloc, listen)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	stop := func() {
		cancelTimeout()
		cancelCtx()
		cancelAlloc()
		for i := 0; i < 50 && os.RemoveAll(profile) != nil; i++ {
			time.Sleep(20 * time.Millisecond)
		}
	}
	enableNetwork := chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, network.Enable, network.EnableParams{})
		return err
	})
	if err := chromedp.Do(ctx, enableNetwork, chromedp.EmulateViewport(int64(w), int64(h))); err != nil {
		stop()
		return nil, nil, err
	}
	t.Cleanup(stop)
	return ctx, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), urls...) }, nil
}

func do(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	get(t, ctx, what, chromedp.Steps(actions...))
}

// get runs one action and returns its value, failing the test with what.
func get[T any](t *testing.T, ctx context.Context, what string, action chromedp.Action[T]) T {
	t.Helper()
	// A bound per step, so that a failure names its step quickly.
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(sctx, action)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// waitScreen waits until the page shows screen.
func waitScreen(t *testing.T, ctx context.Context, screen string) {
	t.Helper()
	do(t, ctx, "screen "+screen, chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`body[data-screen=%q] #screen-%s`, screen, screen))))
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	return get(t, ctx, "text of "+sel, chromedp.Text(chromedp.CSS(sel)))
}

// typeCode presses the on-screen keys for code, then OK.
func typeCode(t *testing.T, ctx context.Context, code string, ok bool) {
	t.Helper()
	var acts []chromedp.Action[chromedp.Void]
	for _, c := range code {
		acts = append(acts, chromedp.Click(chromedp.CSS(fmt.Sprintf(`#keypad button[data-key=%q]`, string(c)))))
	}
	if ok {
		acts = append(acts, chromedp.Click(chromedp.CSS(`#ok`)))
	}
	do(t, ctx, "type on the keypad", acts...)
}

// shot captures the page; with LOCKERD_SCREENSHOTS set (make screenshots)
// it is written there as name.png.
func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	do(t, ctx, "settle before "+name, chromedp.Sleep(300*time.Millisecond))
	png := get(t, ctx, "screenshot "+name, chromedp.CaptureScreenshot())
	if len(png) < 1000 || string(png[1:4]) != "PNG" {
		t.Fatalf("screenshot %s: not a PNG", name)
	}
	if dir := os.Getenv("LOCKERD_SCREENSHOTS"); dir != "" {
		if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// kioskCabinet is the e2e cabinet with a short idle timeout and its MQTT
// link pointing at a broker that is down: the screen must not care.
func kioskCabinet(t *testing.T) *cabinet { return kioskCabinetIdle(t, "5s") }

// kioskCabinetIdle is kioskCabinet with the kiosk's idle timeout set.
func kioskCabinetIdle(t *testing.T, idle string) *cabinet {
	dead := fmt.Sprintf("tcp://127.0.0.1:%d", brokertest.FreePort(t))
	key, pub := newKey(t)
	_ = key
	return newCabinet(t, "0s", withMQTT(dead, pub, ""), func(c *cabinet) {
		c.Extra += "kiosk: {idle_timeout: " + idle + ", default_lang: zh-CN, columns: 3, order_url: \"https://library.example/order\", help_text: \"Use the locker at the main entrance.\"}\n"
	})
}

func TestKioskInABrowser(t *testing.T) {
	c := kioskCabinet(t)
	d := start(t, c.Config)
	ctx, requests := browser(t, 800, 480)
	base := "http://" + d.api + "/"
	do(t, ctx, "open the kiosk", chromedp.Navigate(base))
	waitScreen(t, ctx, "welcome")
	if got := text(t, ctx, "#screen-welcome h1"); !strings.Contains(got, "取书码") {
		t.Fatalf("default language zh-CN: title %q", got)
	}
	shot(t, ctx, "welcome-zh")
	do(t, ctx, "switch language", chromedp.Click(chromedp.CSS("#lang-toggle")))
	if got := text(t, ctx, "#screen-welcome h1"); got != "Scan your QR code or type your pickup code" {
		t.Fatalf("after switching: title %q", got)
	}
	shot(t, ctx, "welcome")

	// A good code typed on the keypad: the right door, then "thank you".
	rep := d.addOrder(httpapi.AddOrderRequest{Compartment: "A02"})
	typeCode(t, ctx, rep.Code, true)
	waitScreen(t, ctx, "door")
	if got := text(t, ctx, "#door-title"); got != "Door A02 is open" {
		t.Fatalf("door title %q", got)
	}
	open := get(t, ctx, "open cells", chromedp.Evaluate[[]string](`[...document.querySelectorAll('.cell.open')].map(c => c.dataset.id)`))
	if len(open) != 1 || open[0] != "A02" {
		t.Fatalf("cabinet drawing shows %v open", open)
	}
	shot(t, ctx, "door-open")
	d.sim("close", "A02")
	waitScreen(t, ctx, "thanks")
	shot(t, ctx, "thank-you")

	// A wrong code: the reason in plain words, never the code.
	waitScreen(t, ctx, "welcome")
	typeCode(t, ctx, "WRONG1", true)
	waitScreen(t, ctx, "refused")
	if got := text(t, ctx, "#refusal-text"); got != "We could not find this code. Please check it and try again." {
		t.Fatalf("refusal %q", got)
	}
	body := get(t, ctx, "page text", chromedp.Text(chromedp.CSS("body")))
	if strings.Contains(body, "WRONG1") {
		t.Fatal("the refused code is shown on screen")
	}
	shot(t, ctx, "refused")

	// Return flow, driven by the return scanner's events.
	do(t, ctx, "return button", chromedp.Click(chromedp.CSS("#return-btn")))
	waitScreen(t, ctx, "return")
	d.scan("returns", "9787020002207")
	do(t, ctx, "return accepted", chromedp.WaitVisible(`//p[@id="return-result" and text()="Thank you! The book is returned."]`))
	shot(t, ctx, "return")
	d.scan("returns", "not-a-book")
	do(t, ctx, "return refused", chromedp.WaitVisible(`//p[@id="return-result" and starts-with(text(),"This is not a library barcode")]`))
	d.sim("bin-full", "")
	d.scan("returns", "9787020002214")
	do(t, ctx, "bin full", chromedp.WaitVisible(`//p[@id="return-result" and starts-with(text(),"The return bin is full")]`))
	d.sim("bin-empty", "")

	// Idle: back to welcome, nothing typed remains.
	do(t, ctx, "back", chromedp.Click(chromedp.CSS("#return-back")))
	waitScreen(t, ctx, "welcome")
	typeCode(t, ctx, "AB12", false)
	if got := text(t, ctx, "#code-display"); got != "AB12" {
		t.Fatalf("typed %q", got)
	}
	get(t, ctx, "idle reset", chromedp.Poll[bool](`document.getElementById("code-display").textContent === ""`,
		chromedp.WithPollingTimeout(15*time.Second)))

	// Staff view, from the front scanner's badge.
	d.addOrder(httpapi.AddOrderRequest{ID: "ORD-2041", Size: "M", Assigned: true})
	d.scan("front", staffBadge)
	waitScreen(t, ctx, "staff")
	if got := text(t, ctx, "#staff-load"); !strings.Contains(got, "ORD-2041") {
		t.Fatalf("staff view lists %q", got)
	}
	shot(t, ctx, "staff")
	d.scan("front", staffBadge)
	waitScreen(t, ctx, "welcome")

	// Five wrong codes on the keypad: locked out, with a countdown.
	for i := 0; i < 5; i++ {
		typeCode(t, ctx, fmt.Sprintf("BAD%d", i), true)
		waitScreen(t, ctx, "refused")
		do(t, ctx, "back", chromedp.Click(chromedp.CSS("#refused-back")))
		waitScreen(t, ctx, "welcome")
	}
	typeCode(t, ctx, rep.Code, true)
	waitScreen(t, ctx, "refused")
	do(t, ctx, "countdown", chromedp.WaitVisible(chromedp.CSS("#countdown")))
	if got := text(t, ctx, "#countdown"); !strings.HasSuffix(got, " s") || got == "0 s" {
		t.Fatalf("countdown %q", got)
	}
	shot(t, ctx, "locked-out")

	// Every compartment out of service: the locker says so, and where to go.
	for _, id := range []string{"A01", "A02", "A03", "B01", "B02", "C01"} {
		d.must("POST", "/v1/service", httpapi.ServiceRequest{Compartment: id, InService: false}, nil)
	}
	do(t, ctx, "dismiss", chromedp.Click(chromedp.CSS("#refused-back")))
	waitScreen(t, ctx, "oos")
	if got := text(t, ctx, "#oos-help"); got != "Use the locker at the main entrance." {
		t.Fatalf("help text %q", got)
	}
	shot(t, ctx, "out-of-service")

	// Nothing but the locker itself was asked for anything.
	for _, u := range requests() {
		if !strings.HasPrefix(u, base) && !strings.HasPrefix(u, "data:") {
			t.Errorf("external request: %s", u)
		}
	}
	if n := d.count(locker.EvPickupCompleted, map[string]any{"via": "keypad"}); n != 1 {
		t.Fatalf("%d keypad pickups recorded, want 1", n)
	}
}

// The lock controller stops answering: no door can open, so the screen
// says so rather than taking codes it must refuse, and comes back by
// itself with the controller. The idle timeout is long, so nothing but
// the hardware.fault event can move the welcome screen.
func TestKioskHardwareOutage(t *testing.T) {
	c := kioskCabinetIdle(t, "10m")
	d := start(t, c.Config)
	ctx, _ := browser(t, 800, 480)
	do(t, ctx, "open the kiosk", chromedp.Navigate("http://"+d.api+"/"))
	waitScreen(t, ctx, "welcome")
	d.sim("offline", "")
	waitScreen(t, ctx, "oos")
	d.sim("online", "")
	waitScreen(t, ctx, "welcome")
}

// TestKioskLayout checks both common Pi touchscreens: nothing overflows
// and every touch target is at least 48 px.
func TestKioskLayout(t *testing.T) {
	c := kioskCabinet(t)
	d := start(t, c.Config)
	for _, size := range [][2]int{{800, 480}, {1280, 800}} {
		t.Run(fmt.Sprintf("%dx%d", size[0], size[1]), func(t *testing.T) {
			ctx, _ := browser(t, size[0], size[1])
			do(t, ctx, "open", chromedp.Navigate("http://"+d.api+"/"))
			waitScreen(t, ctx, "welcome")
			type measure struct {
				Overflow bool
				Smallest float64
				Buttons  int
				Bottom   float64
			}
			res := get(t, ctx, "measure", chromedp.Evaluate[measure](`(() => {
				const b = [...document.querySelectorAll("button")].filter(x => x.offsetParent !== null);
				const r = b.map(x => x.getBoundingClientRect());
				return {
					Overflow: document.documentElement.scrollWidth > innerWidth || document.documentElement.scrollHeight > innerHeight,
					Smallest: Math.min(...r.map(x => Math.min(x.width, x.height))),
					Buttons: b.length,
					Bottom: Math.max(...r.map(x => x.bottom)),
				};
			})()`))
			if res.Overflow {
				t.Error("the page overflows the screen")
			}
			if res.Buttons < 38 || res.Smallest < 48 {
				t.Errorf("%d buttons, smallest %.0f px (want >= 48)", res.Buttons, res.Smallest)
			}
			if res.Bottom > float64(size[1]) {
				t.Errorf("a button is below the screen (%.0f > %d)", res.Bottom, size[1])
			}
		})
	}
}
