package sip2_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/lockerd/lockerd/sync/sip2"
	"github.com/lockerd/lockerd/sync/sip2/sip2test"
	"golang.org/x/text/encoding/simplifiedchinese"
)

var (
	patrons = []sip2test.Patron{{ID: "P1", PIN: "1234", Name: "Li Wei"}, {ID: "P2", Blocked: true}}
	items   = []sip2test.Item{{Barcode: "B1", Title: "西游记"}, {Barcode: "B2", Title: "Moby Dick", Alert: "02", Screen: "Hold for branch North"}}
)

// session runs a session against ils until the test ends and waits until
// it is up.
func session(t *testing.T, ils *sip2test.Server, tune func(*sip2.Config)) *sip2.Session {
	t.Helper()
	cfg := sip2.Config{Address: ils.Addr, User: "locker", Password: "pw", Location: "NB", Institution: "FAKE",
		ErrorDetection: true, VerifyChecksums: true, Timeout: 5 * time.Second, Heartbeat: time.Hour,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if tune != nil {
		tune(&cfg)
	}
	s := sip2.NewSession(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	waitUp(t, s)
	return s
}

func waitUp(t *testing.T, s *sip2.Session) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !s.State().Up; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("session never came up: %+v", s.State())
		}
	}
}

func TestSessionTransactions(t *testing.T) {
	for _, enc := range []string{"utf-8", "gb18030"} {
		t.Run(enc, func(t *testing.T) {
			ils := sip2test.Start(t, patrons, items)
			e, err := sip2.ParseEncoding(enc)
			if err != nil {
				t.Fatal(err)
			}
			ils.SetEncoding(e)
			s := session(t, ils, func(c *sip2.Config) { c.Encoding = e })
			ctx := context.Background()
			st := s.State()
			if !st.Online || !st.CheckoutOK || !st.CheckinOK || st.Retries != 3 || st.Timeout != 3*time.Second {
				t.Fatalf("98 not taken in: %+v", st)
			}
			at := time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC)
			co, err := s.Checkout(ctx, sip2.Checkout{Patron: "P1", Item: "B1", At: at})
			if err != nil || !co.OK || co.Due == "" || co.Title != "西游记" {
				t.Fatalf("checkout: %+v %v", co, err)
			}
			info, err := s.ItemInformation(ctx, "B1")
			if err != nil || info.Status != sip2.StatusCharged || info.Due != co.Due {
				t.Fatalf("item information: %+v %v", info, err)
			}
			pi, err := s.PatronInformation(ctx, "P1", "1234", true)
			if err != nil || !pi.Valid || !pi.PINOK || pi.Blocked || len(pi.Charged) != 1 || pi.Charged[0] != "B1" {
				t.Fatalf("patron information: %+v %v", pi, err)
			}
			refused, err := s.Checkout(ctx, sip2.Checkout{Patron: "P2", Item: "B1", At: at})
			if err != nil || refused.OK || refused.Screen != "Patron blocked" {
				t.Fatalf("blocked patron's checkout: %+v %v", refused, err)
			}
			ci, err := s.Checkin(ctx, sip2.Checkin{Item: "B2", At: at, Location: "nb-1"})
			if err != nil || !ci.OK || !ci.Alert || ci.AlertType != "02" || ci.Screen != "Hold for branch North" {
				t.Fatalf("checkin with alert: %+v %v", ci, err)
			}
			if ils.Checkouts("P1", "B1") != 1 || ils.Checkouts("P2", "B1") != 0 || ils.Checkins("B2") != 1 {
				t.Fatal("the ILS's counts disagree")
			}
			bad, err := s.PatronInformation(ctx, "nobody", "", false)
			if err != nil || bad.Valid || bad.Screen != "Unknown patron" {
				t.Fatalf("unknown patron: %+v %v", bad, err)
			}
			// 23 Patron Status with the PIN a reader typed at a locker.
			for _, tt := range []struct {
				patron, pin         string
				valid, pinOK, block bool
			}{{"P1", "1234", true, true, false}, {"P1", "0000", true, false, false}, {"P2", "", true, false, true}, {"nobody", "1234", false, false, false}} {
				ps, err := s.PatronStatus(ctx, tt.patron, tt.pin)
				if err != nil || ps.Valid != tt.valid || ps.PINOK != tt.pinOK || ps.Blocked != tt.block {
					t.Fatalf("patron status %s: %+v %v", tt.patron, ps, err)
				}
			}
		})
	}
}

// A reply with a wrong checksum is asked for again (97); one wrong
// beyond the retries the ACS allows breaks the session, which comes
// back.
func TestSessionResendsOnBadChecksum(t *testing.T) {
	ils := sip2test.Start(t, patrons, items)
	s := session(t, ils, nil)
	ils.BadChecksums(2)
	if _, err := s.ItemInformation(context.Background(), "B1"); err != nil {
		t.Fatal(err)
	}
	if ils.Resends() != 2 || s.State().Resends != 2 {
		t.Fatalf("resends: ILS got %d, session counted %d", ils.Resends(), s.State().Resends)
	}
	ils.SetFaults(sip2test.Faults{BadChecksum: true})
	if _, err := s.ItemInformation(context.Background(), "B1"); !errors.Is(err, sip2.ErrNoReply) || !strings.Contains(err.Error(), "sip2.verify_checksums: false") {
		t.Fatalf("always wrong: %v (want the option named)", err)
	}
	ils.SetFaults(sip2test.Faults{})
	waitUp(t, s)
	// And with verify_checksums false, wrong checksums are taken.
	lax := session(t, ils, func(c *sip2.Config) { c.VerifyChecksums = false })
	ils.SetFaults(sip2test.Faults{BadChecksum: true})
	if _, err := lax.ItemInformation(context.Background(), "B1"); err != nil {
		t.Fatal(err)
	}
}

func TestSessionFaults(t *testing.T) {
	ctx := context.Background()
	t.Run("login refused: reported, retried, never a crash", func(t *testing.T) {
		ils := sip2test.Start(t, patrons, items)
		ils.SetFaults(sip2test.Faults{RefuseLogin: true})
		refused := make(chan struct{}, 10)
		s := sip2.NewSession(sip2.Config{Address: ils.Addr, Timeout: time.Second, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
			OnLoginRefused: func() { refused <- struct{}{} }})
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { s.Run(cctx); close(done) }()
		defer func() { cancel(); <-done }()
		<-refused
		<-refused // retried
		if _, err := s.Checkout(ctx, sip2.Checkout{Patron: "P1", Item: "B1"}); !errors.Is(err, sip2.ErrUnavailable) {
			t.Fatalf("checkout without a session: %v", err)
		}
		ils.SetFaults(sip2test.Faults{})
		waitUp(t, s)
		if st := s.State(); st.LoginRefusals < 2 {
			t.Fatalf("refusals not counted: %+v", st)
		}
	})
	t.Run("offline in 98: no checkout sent", func(t *testing.T) {
		ils := sip2test.Start(t, patrons, items)
		ils.SetFaults(sip2test.Faults{Offline: true})
		s := session(t, ils, nil)
		if _, err := s.Checkout(ctx, sip2.Checkout{Patron: "P1", Item: "B1"}); !errors.Is(err, sip2.ErrNotAllowed) {
			t.Fatalf("checkout while the ILS is offline: %v", err)
		}
		if ils.Checkouts("P1", "B1") != 0 {
			t.Fatal("sent anyway")
		}
	})
	for _, tc := range []struct {
		name  string
		fault sip2test.Faults
		acted int
	}{
		{"dropped before the reply, not acted on", sip2test.Faults{DropBeforeReply: true}, 0},
		{"dropped after acting, reply lost", sip2test.Faults{DropAfterAct: true}, 1},
		{"slow beyond the timeout", sip2test.Faults{Delay: 1500 * time.Millisecond}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ils := sip2test.Start(t, patrons, items)
			s := session(t, ils, func(c *sip2.Config) { c.Timeout = time.Second })
			connects := s.State().Connects
			ils.SetFaults(tc.fault)
			_, err := s.Checkout(ctx, sip2.Checkout{Patron: "P1", Item: "B1"})
			if !errors.Is(err, sip2.ErrNoReply) {
				t.Fatalf("got %v, want ErrNoReply (outcome unknown)", err)
			}
			ils.SetFaults(sip2test.Faults{})
			for deadline := time.Now().Add(5 * time.Second); ils.Checkouts("P1", "B1") != tc.acted; time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("the ILS acted %d times, want %d", ils.Checkouts("P1", "B1"), tc.acted)
				}
			}
			// Reconnected: a new connection, logged in (the failed call
			// may return before the session has marked itself down).
			for deadline := time.Now().Add(10 * time.Second); s.State().Connects <= connects || !s.State().Up; time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("no new session: %+v", s.State())
				}
			}
			if _, err := s.ItemInformation(ctx, "B1"); err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Run("dropped after the reply: the answer counts, the session comes back", func(t *testing.T) {
		ils := sip2test.Start(t, patrons, items)
		s := session(t, ils, nil)
		ils.SetFaults(sip2test.Faults{DropAfterReply: true})
		r, err := s.Checkout(ctx, sip2.Checkout{Patron: "P1", Item: "B1"})
		if err != nil || !r.OK {
			t.Fatalf("checkout answered before the drop: %+v %v", r, err)
		}
		ils.SetFaults(sip2test.Faults{})
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if _, err := s.ItemInformation(ctx, "B1"); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("no session after the drop")
			}
		}
		if ils.Checkouts("P1", "B1") != 1 {
			t.Fatal("acted on more than once")
		}
	})
	t.Run("the ILS restarts", func(t *testing.T) {
		ils := sip2test.Start(t, patrons, items)
		s := session(t, ils, nil)
		ils.Down()
		for deadline := time.Now().Add(5 * time.Second); s.State().Up; time.Sleep(10 * time.Millisecond) {
			if _, err := s.ItemInformation(ctx, "B1"); err != nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("session still up with the ILS down")
			}
		}
		if err := ils.Up(); err != nil {
			t.Fatal(err)
		}
		waitUp(t, s)
		if _, err := s.ItemInformation(ctx, "B1"); err != nil {
			t.Fatal(err)
		}
	})
}

// Chinese titles travel in GB18030 byte for byte; a value the ILS's
// encoding cannot carry is an error, not a '?'.
func TestEncodings(t *testing.T) {
	m := sip2.Message{Code: "18", Fixed: "04" + "00" + "01" + "20261120   Z093000", Fields: []sip2.Field{{Tag: "AB", Value: "B1"}, {Tag: "AJ", Value: "红楼梦|x"[:9]}}}
	raw, err := sip2.Marshal(m, 3, true, simplifiedchinese.GB18030)
	if err != nil {
		t.Fatal(err)
	}
	back, err := sip2.Unmarshal(raw, true, simplifiedchinese.GB18030)
	if err != nil {
		t.Fatal(err)
	}
	if title, _ := back.Get("AJ"); title != "红楼梦" || back.Seq != 3 {
		t.Fatalf("round trip: %q seq %d", title, back.Seq)
	}
	latin1, _ := sip2.ParseEncoding("latin1")
	if _, err := sip2.Marshal(sip2.Message{Code: "17", Fixed: sip2.FormatDate(time.Now()), Fields: []sip2.Field{{Tag: "AB", Value: "红"}}}, 0, true, latin1); err == nil {
		t.Fatal("latin1 took a Chinese character")
	}
	if _, err := sip2.ParseEncoding("ebcdic"); err == nil {
		t.Fatal("unknown encoding taken")
	}
	if d, ok := sip2.ParseDate(sip2.FormatDate(time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC)), time.Local); !ok || !d.Equal(time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC)) {
		t.Fatalf("date round trip: %v %v", d, ok)
	}
}

// An ILS whose 98 refuses checkouts or checkins: the transaction is not
// sent, and the error names the flag and the override; with
// IgnoreStatusFlags it is sent (for an ILS whose 98 is wrong).
func TestStatusFlags(t *testing.T) {
	ils := sip2test.Start(t, patrons, items)
	ils.SetFaults(sip2test.Faults{NoCheckout: true, NoCheckin: true})
	ctx := context.Background()
	s := session(t, ils, nil)
	st := s.State()
	if !st.Online || st.CheckoutOK || st.CheckinOK {
		t.Fatalf("98 read as %+v", st)
	}
	for _, tt := range []struct {
		name string
		do   func() error
		flag string
	}{
		{"checkout", func() error {
			_, err := s.Checkout(ctx, sip2.Checkout{Patron: "P1", Item: "B1", At: time.Now()})
			return err
		}, "checkout ok N"},
		{"checkin", func() error { _, err := s.Checkin(ctx, sip2.Checkin{Item: "B1", At: time.Now()}); return err }, "checkin ok N"},
	} {
		if err := tt.do(); !errors.Is(err, sip2.ErrNotAllowed) || !strings.Contains(err.Error(), tt.flag) || !strings.Contains(err.Error(), "ignore_status_flags") {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
	if n := len(ils.Transactions()); n != 0 {
		t.Fatalf("%d transactions sent against the 98", n)
	}
	lax := session(t, ils, func(c *sip2.Config) { c.IgnoreStatusFlags = true })
	if r, err := lax.Checkout(ctx, sip2.Checkout{Patron: "P1", Item: "B1", At: time.Now()}); err != nil || !r.OK {
		t.Fatalf("checkout with the flags ignored: %+v %v", r, err)
	}
	if lax.State().NotAccepting(true) != "" {
		t.Fatal("flags ignored, yet NotAccepting says why")
	}
}
