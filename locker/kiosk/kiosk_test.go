package kiosk

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/lockerd/lockerd/locker"
)

// fakeLocker is the kiosk's Locker in memory.
type fakeLocker struct {
	status    locker.Status
	orders    []locker.Order
	storeBad  bool
	statusErr error
	scanned   []string
}

var _ Locker = (*fakeLocker)(nil)

func (f *fakeLocker) LiveStatus() (locker.Status, error) { return f.status, f.statusErr }
func (f *fakeLocker) StoreHealthy() bool                 { return !f.storeBad }
func (f *fakeLocker) Orders() ([]locker.Order, error)    { return f.orders, nil }
func (f *fakeLocker) EnterPIN(ctx context.Context, pin string) locker.ScanResult {
	return locker.ScanResult{Outcome: locker.OutcomeDenied, Reason: locker.DenyUseCode}
}
func (f *fakeLocker) Bin() (locker.BinState, error) { return locker.BinState{Count: 2}, nil }
func (f *fakeLocker) Scan(ctx context.Context, device, text string) (locker.ScanResult, error) {
	if text == "BOOM" {
		return locker.ScanResult{}, errors.New("store: disk I/O error at /var/lib/lockerd/lockerd.db")
	}
	f.scanned = append(f.scanned, device+":"+text)
	return locker.ScanResult{Outcome: locker.OutcomeOpened, Compartments: []string{"A02"}}, nil
}
func (f *fakeLocker) Subscribe() (<-chan locker.Event, func())         { return nil, func() {} }
func (f *fakeLocker) SubscribeNotices() (<-chan locker.Notice, func()) { return nil, func() {} }

func comp(id string, size locker.Size, f func(*locker.CompartmentStatus)) locker.CompartmentStatus {
	c := locker.CompartmentStatus{Compartment: locker.Compartment{ID: id, Size: size, State: locker.CompFree}, Effective: locker.CompFree}
	if f != nil {
		f(&c)
	}
	return c
}

func get(t *testing.T, h *Handler, method, path, body string) (int, string, *httptest.ResponseRecorder) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, strings.NewReader(body)))
	return rec.Code, rec.Body.String(), rec
}

func newHandler(t *testing.T, cfg Config, f *fakeLocker) *Handler {
	t.Helper()
	h, err := New(cfg, f, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// The state the screen is drawn from: serving or why not, the open and
// unreadable doors, and the staff view only during a staff session.
func TestState(t *testing.T) {
	tests := []struct {
		name    string
		comps   []locker.CompartmentStatus
		staff   bool
		storeOK bool
		serving bool
		reason  string
	}{
		{"serving", []locker.CompartmentStatus{comp("A01", "S", nil)}, false, true, true, ""},
		{"all out of service", []locker.CompartmentStatus{comp("A01", "S", func(c *locker.CompartmentStatus) { c.OutOfService = true })}, false, true, false, "no_compartment"},
		{"lock board down", []locker.CompartmentStatus{comp("A01", "S", func(c *locker.CompartmentStatus) { c.DoorUnknown = true })}, false, true, false, "hardware"},
		{"store failing", []locker.CompartmentStatus{comp("A01", "S", nil)}, false, false, false, "store"},
		{"staff", []locker.CompartmentStatus{comp("A01", "S", func(c *locker.CompartmentStatus) { c.DoorOpen = true })}, true, true, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeLocker{status: locker.Status{Compartments: tt.comps}, storeBad: !tt.storeOK,
				orders: []locker.Order{{ID: "LOAD-1", State: locker.OrderAssigned, Size: "M"}, {ID: "OLD-1", State: locker.OrderExpired, Loaded: true, Compartments: []string{"A01"}}}}
			if tt.staff {
				f.status.StaffOn = []string{"front"}
			}
			code, body, _ := get(t, newHandler(t, Config{}, f), "GET", "/kiosk/state", "")
			var st State
			if code != 200 || json.Unmarshal([]byte(body), &st) != nil {
				t.Fatalf("%d %s", code, body)
			}
			if st.Serving != tt.serving || st.Reason != tt.reason || st.Staff != tt.staff {
				t.Fatalf("state %+v", st)
			}
			if tt.staff != (len(st.ToLoad) == 1 && len(st.ToRetrieve) == 1) {
				t.Fatalf("staff view %+v / %+v during staff %v", st.ToLoad, st.ToRetrieve, tt.staff)
			}
			if tt.name == "staff" && !st.Doors["A01"] {
				t.Fatalf("open doors %v", st.Doors)
			}
		})
	}
	f := &fakeLocker{statusErr: errors.New("store")}
	if _, body, _ := get(t, newHandler(t, Config{}, f), "GET", "/kiosk/state", ""); !strings.Contains(body, `"reason":"store"`) {
		t.Fatalf("unreadable status: %s", body)
	}
}

// A code typed on the keypad is scanned as the keypad device; the reply
// says what happened and never holds the code; a failure says nothing of
// its cause to the screen.
func TestCode(t *testing.T) {
	f := &fakeLocker{}
	h := newHandler(t, Config{}, f)
	code, body, rec := get(t, h, "POST", "/kiosk/code", `{"code":"K7Q2M9"}`)
	if code != 200 || !strings.Contains(body, `"outcome":"opened"`) || strings.Contains(body, "K7Q2M9") {
		t.Fatalf("%d %s", code, body)
	}
	if len(f.scanned) != 1 || f.scanned[0] != locker.KeypadDevice+":K7Q2M9" {
		t.Fatalf("scanned %v", f.scanned)
	}
	if rec.Header().Get("Cache-Control") != "no-store" || !strings.Contains(rec.Header().Get("Content-Security-Policy"), "default-src 'self'") {
		t.Fatalf("headers %v", rec.Header())
	}
	for _, bad := range []string{`{"code":`, strings.Repeat("x", 5000), `{"code":"` + strings.Repeat("A", 5000) + `"}`} {
		if code, _, _ := get(t, h, "POST", "/kiosk/code", bad); code != 400 {
			t.Fatalf("bad body (%d bytes): %d", len(bad), code)
		}
	}
	code, body, _ = get(t, h, "POST", "/kiosk/code", `{"code":"BOOM"}`)
	if code != 500 || strings.Contains(body, "/var/lib") || strings.Contains(body, "BOOM") {
		t.Fatalf("a failed scan: %d %s", code, body)
	}
}

// The page's layout: configured positions kept, the rest filled in row by
// row; the order page's QR code only when there is an order URL.
func TestConfigAndQR(t *testing.T) {
	f := &fakeLocker{status: locker.Status{Compartments: []locker.CompartmentStatus{comp("A01", "S", nil), comp("A02", "M", nil), comp("B01", "L", nil)}}}
	h := newHandler(t, Config{LockerID: "L1", Columns: 2, Positions: map[string][2]int{"B01": {1, 1}}, OrderURL: "https://library.example/order"}, f)
	code, body, _ := get(t, h, "GET", "/kiosk/config", "")
	var pc PageConfig
	if code != 200 || json.Unmarshal([]byte(body), &pc) != nil {
		t.Fatalf("%d %s", code, body)
	}
	want := []Cell{{ID: "B01", Size: "L", Row: 1, Col: 1}, {ID: "A01", Size: "S", Row: 1, Col: 2}, {ID: "A02", Size: "M", Row: 2, Col: 1}}
	if len(pc.Cells) != len(want) || !pc.HasOrderQR || pc.LockerID != "L1" {
		t.Fatalf("config %+v", pc)
	}
	for i := range want {
		if pc.Cells[i] != want[i] {
			t.Fatalf("cells %+v, want %+v", pc.Cells, want)
		}
	}
	if code, body, rec := get(t, h, "GET", "/kiosk/qr.png", ""); code != 200 || !strings.HasPrefix(body, "\x89PNG") || rec.Header().Get("Content-Type") != "image/png" {
		t.Fatalf("QR: %d", code)
	}
	if code, _, _ := get(t, newHandler(t, Config{}, f), "GET", "/kiosk/qr.png", ""); code != 404 {
		t.Fatalf("QR without an order URL: %d", code)
	}
	if code, body, _ := get(t, h, "GET", "/", ""); code != 200 || !strings.Contains(body, "<html") {
		t.Fatalf("page: %d", code)
	}
}

// TestVoiceMatchesCatalogue: every spoken prompt was made from the text
// the catalogue has now (else: make voice), in both languages, and is a
// small WAV file the page can play; the letters and digits of door names
// are there too.
func TestVoiceMatchesCatalogue(t *testing.T) {
	raw, err := assets.ReadFile("assets/voice/manifest.json")
	if err != nil {
		t.Fatal(err)
	}
	var man VoiceManifest
	if err := json.Unmarshal(raw, &man); err != nil {
		t.Fatal(err)
	}
	for _, lang := range []string{"en", "zh-CN"} {
		cat := map[string]string{}
		raw, err := assets.ReadFile("assets/i18n/" + lang + ".json")
		if err != nil || json.Unmarshal(raw, &cat) != nil {
			t.Fatalf("%s catalogue: %v", lang, err)
		}
		clips := man.Langs[lang]
		check := func(key, text string) {
			c, ok := clips[key]
			sum := sha256.Sum256([]byte(text))
			switch {
			case !ok:
				t.Errorf("%s %s: no prompt (run make voice)", lang, key)
			case c.TextSHA256 != hex.EncodeToString(sum[:]):
				t.Errorf("%s %s: the prompt was made from another text (run make voice)", lang, key)
			default:
				wav, err := assets.ReadFile("assets/voice/" + c.File)
				if err != nil || len(wav) < 44 || string(wav[:4]) != "RIFF" || string(wav[8:12]) != "WAVE" || len(wav) > 200<<10 {
					t.Errorf("%s %s: %s is not a small WAV file (%d bytes, %v)", lang, key, c.File, len(wav), err)
				}
			}
		}
		for _, k := range VoiceKeys {
			text, ok := cat[k]
			if !ok {
				t.Errorf("%s catalogue has no %s", lang, k)
			}
			check(k, text)
		}
		for _, c := range VoiceChars {
			check("char."+string(c), string(c))
		}
	}
}
