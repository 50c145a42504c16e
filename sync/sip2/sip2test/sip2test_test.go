package sip2test

import (
	"bufio"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/lockerd/lockerd/sync/sip2"
)

// exchange sends m and reads the reply.
func exchange(t *testing.T, c net.Conn, r *bufio.Reader, m sip2.Message, seq int) (sip2.Message, error) {
	t.Helper()
	line, err := sip2.Encode(m, seq, true)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(line)); err != nil {
		return sip2.Message{}, err
	}
	reply, err := r.ReadString('\r')
	if err != nil {
		return sip2.Message{}, err
	}
	return sip2.Decode(reply, true)
}

// The fake ILS answers the messages the bridge sends as an ILS would,
// counts checkouts and checkins, and plays the faults it is given.
func TestFakeILS(t *testing.T) {
	s := Start(t, []Patron{{ID: "P1", PIN: "1234", Name: "Reader One"}, {ID: "P2", Blocked: true}},
		[]Item{{Barcode: "B1", Title: "Book one"}, {Barcode: "B2", Title: "Book two", Alert: "02", Screen: "Hold for P9"}})
	c, err := net.Dial("tcp", s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	date := "20261128    093000"
	step := func(name string, m sip2.Message, code, fixedPrefix string, want map[string]string) {
		t.Helper()
		got, err := exchange(t, c, r, m, 1)
		if err != nil || got.Code != code || len(got.Fixed) < len(fixedPrefix) || got.Fixed[:len(fixedPrefix)] != fixedPrefix {
			t.Fatalf("%s: %+v %v", name, got, err)
		}
		for tag, v := range want {
			if g, _ := got.Get(tag); g != v {
				t.Fatalf("%s: %s = %q, want %q", name, tag, g, v)
			}
		}
	}
	step("login", sip2.Message{Code: "93", Fixed: "00", Fields: []sip2.Field{{Tag: "CN", Value: "u"}, {Tag: "CO", Value: "p"}}}, "94", "1", nil)
	step("status", sip2.Message{Code: "99", Fixed: "0" + "080" + "2.00"}, "98", "YYY", nil)
	checkout := func(patron, item string) sip2.Message {
		return sip2.Message{Code: "11", Fixed: "NN" + date + date, Fields: []sip2.Field{{Tag: "AO", Value: "X"}, {Tag: "AA", Value: patron}, {Tag: "AB", Value: item}}}
	}
	step("checkout", checkout("P1", "B1"), "12", "1", map[string]string{"AJ": "Book one"})
	step("checkout by a blocked patron", checkout("P2", "B1"), "12", "0", map[string]string{"AF": "Patron blocked"})
	step("checkout of an unknown item", checkout("P1", "B9"), "12", "0", map[string]string{"AF": "Item not found"})
	step("checkin with a hold", sip2.Message{Code: "09", Fixed: "N" + date + date, Fields: []sip2.Field{{Tag: "AP", Value: "L1"}, {Tag: "AO", Value: "X"}, {Tag: "AB", Value: "B2"}}},
		"10", "1NNY", map[string]string{"CV": "02", "AF": "Hold for P9"})
	step("patron with PIN", sip2.Message{Code: "63", Fixed: "001" + date + "          ", Fields: []sip2.Field{{Tag: "AO", Value: "X"}, {Tag: "AA", Value: "P1"}, {Tag: "AD", Value: "1234"}}},
		"64", " ", map[string]string{"BL": "Y", "CQ": "Y", "AE": "Reader One"})
	if s.Checkouts("P1", "B1") != 1 || s.Checkouts("P2", "B1") != 0 || s.Checkins("B2") != 1 {
		t.Fatalf("counts: %d %d %d", s.Checkouts("P1", "B1"), s.Checkouts("P2", "B1"), s.Checkins("B2"))
	}

	s.SetFaults(Faults{Offline: true})
	step("offline", sip2.Message{Code: "99", Fixed: "0" + "080" + "2.00"}, "98", "NNN", nil)
	s.SetFaults(Faults{RefuseLogin: true})
	step("login refused", sip2.Message{Code: "93", Fixed: "00"}, "94", "0", nil)
	s.SetFaults(Faults{BadChecksum: true})
	if _, err := exchange(t, c, r, sip2.Message{Code: "99", Fixed: "0" + "080" + "2.00"}, 2); !errors.Is(err, sip2.ErrChecksum) {
		t.Fatalf("a reply with a wrong checksum: %v", err)
	}
	s.SetFaults(Faults{DropBeforeReply: true})
	if _, err := exchange(t, c, r, checkout("P1", "B2"), 3); err == nil {
		t.Fatal("a dropped connection answered")
	}
	if s.Checkouts("P1", "B2") != 0 {
		t.Fatal("dropped before the reply, and acted on")
	}

	// A line over the bound ends the connection, and the server goes on.
	s.SetFaults(Faults{})
	c2, err := net.Dial("tcp", s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.SetDeadline(time.Now().Add(5 * time.Second))
	c2.Write([]byte("99" + strings.Repeat("x", sip2.MaxMessage+10) + "\r"))
	if _, err := bufio.NewReader(c2).ReadString('\r'); err == nil {
		t.Fatal("a line over the bound answered")
	}
	c3, err := net.Dial("tcp", s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	if got, err := exchange(t, c3, bufio.NewReader(c3), sip2.Message{Code: "99", Fixed: "0" + "080" + "2.00"}, 4); err != nil || got.Code != "98" {
		t.Fatalf("after an oversized line: %+v %v", got, err)
	}
}
