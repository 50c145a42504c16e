package sip2test

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockerd/lockerd/sync/sip2"
	"golang.org/x/text/encoding"
)

// Patron is a scripted patron; Email and Language (a 64's code: 019
// Chinese; "" is 001 English) come back in 64.
type Patron struct {
	ID, PIN, Name string
	Blocked       bool
	Email         string
	Language      string
}

// Item is a scripted item; Alert (a CV value, "02" on hold here, say)
// comes back on its checkin. HoldFor is the patron whose hold waits for
// it at pickup point Pickup: 17 says 08 (on the hold shelf) with CY and
// CT, and 63 lists it (AS) for that patron, until they borrow it.
type Item struct {
	Barcode, Title, Alert, Screen string
	HoldFor, Pickup               string
}

// Faults a test may switch on.
type Faults struct {
	Offline bool // 98 says the ILS is offline
	// NoCheckout, NoCheckin: 98 says checkout ok N, checkin ok N — yet a
	// checkout or checkin sent anyway is acted on (an ILS whose 98 is
	// wrong).
	NoCheckout, NoCheckin bool
	RefuseLogin           bool          // 94 with ok 0
	BadChecksum           bool          // replies carry a wrong AZ
	Delay                 time.Duration // before each reply
	DropBeforeReply       bool          // close the connection instead of answering a checkout or checkin (not acted on)
	// DropAfterAct: act on a checkout or checkin, then close the
	// connection without answering (the reply lost on the way).
	DropAfterAct   bool
	DropAfterReply bool // answer, then close the connection
	// NoHoldPatron: 18 says an item is on the hold shelf but not for whom
	// nor where (no CY, no CT), as Koha and FOLIO do.
	NoHoldPatron bool
}

// Server is the fake ILS.
type Server struct {
	Addr string

	mu        sync.Mutex
	ln        net.Listener
	patrons   map[string]Patron
	items     map[string]Item
	faults    Faults
	checkouts map[string]int // patron/item -> times
	checkins  map[string]int // item -> times
	log       []Transaction
	charged   map[string]string // item -> the patron who has it
	due       map[string]string // item -> due date
	conns     map[net.Conn]bool
	date      func() time.Time
	enc       encoding.Encoding
	badNext   int // replies still to send with a wrong checksum
	resends   int // 97s received
}

// Start runs a fake ILS on a loopback port until the test ends.
func Start(t testing.TB, patrons []Patron, items []Item) *Server {
	t.Helper()
	s, err := Listen("127.0.0.1:0", patrons, items)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// Listen runs a fake ILS on addr until Close (lockerhub sip2-fake, for
// the demo).
func Listen(addr string, patrons []Patron, items []Item) (*Server, error) {
	s := &Server{patrons: map[string]Patron{}, items: map[string]Item{}, charged: map[string]string{}, due: map[string]string{},
		checkouts: map[string]int{}, checkins: map[string]int{}, conns: map[net.Conn]bool{}, date: time.Now}
	for _, p := range patrons {
		s.patrons[p.ID] = p
	}
	for _, it := range items {
		s.items[it.Barcode] = it
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s.Addr, s.ln = ln.Addr().String(), ln
	go s.serve(ln)
	return s, nil
}

// Down stops answering, as an ILS that went down: the port is closed and
// every connection dropped. Its records stay.
func (s *Server) Down() { s.Close() }

// Up listens again on the same address after Down (the server process
// restarted).
func (s *Server) Up() error {
	ln, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.ln = ln
	s.mu.Unlock()
	go s.serve(ln)
	return nil
}

// AddItems makes more items known (a test that makes up barcodes as it
// goes).
func (s *Server) AddItems(items ...Item) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, it := range items {
		s.items[it.Barcode] = it
	}
}

// AddPatrons adds (or replaces) scripted patrons.
func (s *Server) AddPatrons(patrons ...Patron) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range patrons {
		s.patrons[p.ID] = p
	}
}

// SetEncoding makes the server speak enc (nil: UTF-8).
func (s *Server) SetEncoding(enc encoding.Encoding) { s.mu.Lock(); s.enc = enc; s.mu.Unlock() }

// BadChecksums makes the next n replies carry a wrong checksum.
func (s *Server) BadChecksums(n int) { s.mu.Lock(); s.badNext = n; s.mu.Unlock() }

// Resends is how many 97 Request ACS Resend came.
func (s *Server) Resends() int { s.mu.Lock(); defer s.mu.Unlock(); return s.resends }

// Transaction is a checkout or checkin the server acted on, as asked.
type Transaction struct {
	Code, Patron, Item string
	NoBlock            bool
	Date               string // the transaction date (11) or return date (09)
	Location           string // 09's AP
	OK                 bool   // what the server answered
}

// Transactions lists the checkouts and checkins asked for (and answered),
// in order.
func (s *Server) Transactions() []Transaction {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Transaction(nil), s.log...)
}

// Charged is the patron who has item ("" when nobody does).
func (s *Server) Charged(item string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.charged[item]
}

// SetFaults replaces the faults in force.
func (s *Server) SetFaults(f Faults) { s.mu.Lock(); s.faults = f; s.mu.Unlock() }

// Checkouts is how many times patron checked item out; Checkins how many
// times item was checked in.
func (s *Server) Checkouts(patron, item string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.checkouts[patron+"/"+item]
}

func (s *Server) Checkins(item string) int { s.mu.Lock(); defer s.mu.Unlock(); return s.checkins[item] }

// Close stops the server and drops its connections.
func (s *Server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ln.Close()
	for c := range s.conns {
		c.Close()
	}
}

func (s *Server) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = true
		s.mu.Unlock()
		go s.session(c)
	}
}

func (s *Server) session(c net.Conn) {
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	r := bufio.NewReaderSize(c, sip2.MaxMessage+2)
	var last []byte // the last reply, sent again on 97
	for {
		// Bounded: a line longer than the reader's buffer (a message over
		// sip2.MaxMessage) ends the connection.
		raw, err := r.ReadSlice('\r')
		if err != nil {
			return
		}
		s.mu.Lock()
		enc := s.enc
		s.mu.Unlock()
		m, err := sip2.Unmarshal(raw, true, enc)
		s.mu.Lock()
		f := s.faults
		bad := f.BadChecksum || s.badNext > 0
		if s.badNext > 0 {
			s.badNext--
		}
		s.mu.Unlock()
		if f.Delay > 0 {
			time.Sleep(f.Delay)
		}
		if f.DropBeforeReply && err == nil && (m.Code == "11" || m.Code == "09") {
			return
		}
		var out []byte
		switch {
		case err != nil:
			out, _ = sip2.Marshal(sip2.Message{Code: "96"}, 0, false, nil) // ask for it again
		case m.Code == "97":
			s.mu.Lock()
			s.resends++
			s.mu.Unlock()
			out = last
		default:
			reply := s.answer(m, f)
			if f.DropAfterAct && (m.Code == "11" || m.Code == "09") {
				return
			}
			if out, err = sip2.Marshal(reply, m.Seq, m.HasSeq, enc); err != nil {
				return
			}
			last = out
		}
		if bad && len(out) > 6 {
			// The same reply with its checksum off by one.
			upToAZ := string(out[:len(out)-5])
			var sum uint16
			fmt.Sscanf(sip2.Checksum(upToAZ), "%X", &sum)
			out = []byte(upToAZ + fmt.Sprintf("%04X", sum+1) + "\r")
		}
		if _, err := c.Write(out); err != nil {
			return
		}
		if f.DropAfterReply {
			return
		}
	}
}

func yn(b bool) string {
	if b {
		return "Y"
	}
	return "N"
}

// answer is the ILS's reply to m.
func (s *Server) answer(m sip2.Message, f Faults) sip2.Message {
	date := s.date().Format("20060102    150405")
	s.mu.Lock()
	defer s.mu.Unlock()
	switch m.Code {
	case "93":
		return sip2.Message{Code: "94", Fixed: map[bool]string{true: "0", false: "1"}[f.RefuseLogin]}
	case "99":
		on := !f.Offline
		return sip2.Message{Code: "98", Fixed: yn(on) + yn(on && !f.NoCheckin) + yn(on && !f.NoCheckout) + "NNN" + "030" + "003" + date + "2.00",
			Fields: []sip2.Field{{Tag: "AO", Value: "FAKE"}, {Tag: "AM", Value: "Fake ILS"}, {Tag: "BX", Value: "YYYYYYYYYYYYYYYY"}}}
	case "11":
		patron, _ := m.Get("AA")
		item, _ := m.Get("AB")
		p, pok := s.patrons[patron]
		it, iok := s.items[item]
		ok := pok && iok && !p.Blocked
		fields := []sip2.Field{{Tag: "AO", Value: "FAKE"}, {Tag: "AA", Value: patron}, {Tag: "AB", Value: item}, {Tag: "AJ", Value: it.Title}}
		s.log = append(s.log, Transaction{Code: "11", Patron: patron, Item: item, NoBlock: m.Fixed[1] == 'Y', Date: m.Fixed[2:20], OK: ok})
		if ok {
			s.checkouts[patron+"/"+item]++
			s.charged[item] = patron
			if it.HoldFor == patron {
				it.HoldFor, it.Pickup = "", "" // the hold is filled
				s.items[item] = it
			}
			s.due[item] = s.date().Add(21 * 24 * time.Hour).Format("20060102    150405")
			fields = append(fields, sip2.Field{Tag: "AH", Value: s.due[item]})
		} else {
			fields = append(fields, sip2.Field{Tag: "AF", Value: refusal(pok, iok, p.Blocked)})
		}
		return sip2.Message{Code: "12", Fixed: map[bool]string{true: "1", false: "0"}[ok] + "NNN" + date, Fields: fields}
	case "09":
		item, _ := m.Get("AB")
		it, iok := s.items[item]
		ap, _ := m.Get("AP")
		s.log = append(s.log, Transaction{Code: "09", Item: item, NoBlock: m.Fixed[0] == 'Y', Date: m.Fixed[19:37], Location: ap, OK: iok})
		if iok {
			s.checkins[item]++
			delete(s.charged, item)
			delete(s.due, item)
		}
		fields := []sip2.Field{{Tag: "AO", Value: "FAKE"}, {Tag: "AB", Value: item}, {Tag: "AQ", Value: "MAIN"}}
		if it.Alert != "" {
			fields = append(fields, sip2.Field{Tag: "CV", Value: it.Alert})
		}
		if it.Screen != "" {
			fields = append(fields, sip2.Field{Tag: "AF", Value: it.Screen})
		}
		return sip2.Message{Code: "10", Fixed: map[bool]string{true: "1", false: "0"}[iok] + "NN" + yn(it.Alert != "") + date, Fields: fields}
	case "23", "63":
		patron, _ := m.Get("AA")
		pin, _ := m.Get("AD")
		p, ok := s.patrons[patron]
		status := strings.Repeat(" ", 14)
		if p.Blocked {
			status = "Y" + strings.Repeat(" ", 13)
		}
		fields := []sip2.Field{{Tag: "AO", Value: "FAKE"}, {Tag: "AA", Value: patron}, {Tag: "AE", Value: p.Name},
			{Tag: "BL", Value: yn(ok)}, {Tag: "CQ", Value: yn(ok && pin != "" && pin == p.PIN)}}
		if !ok {
			fields = append(fields, sip2.Field{Tag: "AF", Value: "Unknown patron"})
		} else if p.Blocked {
			fields = append(fields, sip2.Field{Tag: "AF", Value: "Patron blocked: fines owing"})
		}
		if m.Code == "63" && len(m.Fixed) == 31 && m.Fixed[21+2] == 'Y' {
			for item, who := range s.charged {
				if who == patron {
					fields = append(fields, sip2.Field{Tag: "AU", Value: item})
				}
			}
		}
		if m.Code == "63" && len(m.Fixed) == 31 && m.Fixed[21] == 'Y' {
			for _, it := range s.items {
				if it.HoldFor == patron && ok {
					fields = append(fields, sip2.Field{Tag: "AS", Value: it.Barcode})
				}
			}
		}
		if p.Email != "" {
			fields = append(fields, sip2.Field{Tag: "BE", Value: p.Email})
		}
		lang := "001"
		if p.Language != "" {
			lang = p.Language
		}
		if m.Code == "23" {
			return sip2.Message{Code: "24", Fixed: status + lang + date, Fields: fields}
		}
		return sip2.Message{Code: "64", Fixed: status + lang + date + strings.Repeat("0000", 6), Fields: fields}
	case "17":
		item, _ := m.Get("AB")
		it, iok := s.items[item]
		status := "03"
		if !iok {
			status = "01"
		}
		fields := []sip2.Field{{Tag: "AB", Value: item}, {Tag: "AJ", Value: it.Title}}
		if s.charged[item] != "" {
			status = "04"
			fields = append(fields, sip2.Field{Tag: "AH", Value: s.due[item]})
		} else if it.HoldFor != "" {
			status = "08"
			fields = append(fields, sip2.Field{Tag: "CF", Value: "1"})
			if !f.NoHoldPatron {
				fields = append(fields, sip2.Field{Tag: "CY", Value: it.HoldFor}, sip2.Field{Tag: "CT", Value: it.Pickup})
			}
		}
		return sip2.Message{Code: "18", Fixed: status + "00" + "01" + date, Fields: fields}
	}
	return sip2.Message{Code: "96"}
}

func refusal(patron, item, blocked bool) string {
	switch {
	case !patron:
		return "Unknown patron"
	case blocked:
		return "Patron blocked"
	case !item:
		return "Item not found"
	}
	return "refused"
}
