package sip2

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Checkout is an 11 Checkout request.
type Checkout struct {
	Patron, Item string
	At           time.Time // transaction date: when the reader took the item
	// NoBlock: the loan already happened (recorded while the ILS could
	// not be told in time); the ILS should record it whatever its rules.
	NoBlock bool
}

// CheckoutResult is the 12 reply.
type CheckoutResult struct {
	OK     bool
	Due    string // AH, as the ILS wrote it
	Title  string // AJ
	Screen string // AF
}

// Checkin is a 09 Checkin request.
type Checkin struct {
	Item     string
	At       time.Time // return date
	Location string    // AP: where the item is now
	NoBlock  bool
}

// CheckinResult is the 10 reply.
type CheckinResult struct {
	OK        bool
	Alert     bool   // the item needs a person: hold, transit, ...
	AlertType string // CV: 01 hold here, 02 hold elsewhere, 04 transit, ...
	Screen    string // AF
	Location  string // AQ: permanent location
	Patron    string // CY: the patron the hold is for, when sent
}

// ItemInfo is the 18 reply to 17 Item Information.
type ItemInfo struct {
	Status string // circulation status: 04 charged, 03 available, 08 on the hold shelf, ...
	Due    string // AH
	Title  string // AJ
	Screen string // AF
	// The hold waiting for the item, where the ILS says (docs/sip2.md
	// lists which do): CY its reader's card, CT the pickup point it goes
	// to, CF how many holds the item has.
	HoldPatron string
	HoldPickup string
	HoldQueue  int
}

// Circulation statuses of an 18 reply.
const (
	StatusOther       = "01"
	StatusAvailable   = "03"
	StatusCharged     = "04"
	StatusOnHoldShelf = "08"
)

// PatronInfo is the 64 reply to 63 Patron Information.
type PatronInfo struct {
	Valid   bool // BL
	PINOK   bool // CQ
	Blocked bool // charge privileges denied, or card reported lost
	Name    string
	Screen  string   // AF
	Charged []string // AU: items charged to the patron (when asked)
	Holds   []string // AS: items held for the patron (when asked)
	Email   string   // BE
	Phone   string   // BF
	// Language is the 64's language code: 001 English, 019 Chinese, ...
	Language string
}

// Checkout records a loan.
func (s *Session) Checkout(ctx context.Context, c Checkout) (CheckoutResult, error) {
	if why := s.State().NotAccepting(true); why != "" {
		return CheckoutResult{}, fmt.Errorf("%w: %s", ErrNotAllowed, why)
	}
	m := Message{Code: "11", Fixed: "N" + yn(c.NoBlock) + FormatDate(c.At) + strings.Repeat(" ", 18),
		Fields: []Field{{"AO", s.cfg.Institution}, {"AA", c.Patron}, {"AB", c.Item}, {"AC", s.cfg.TerminalPassword}}}
	r, err := s.Do(ctx, m)
	if err != nil {
		return CheckoutResult{}, err
	}
	out := CheckoutResult{OK: r.Fixed[0] == '1'}
	out.Due, _ = r.Get("AH")
	out.Title, _ = r.Get("AJ")
	out.Screen, _ = r.Get("AF")
	return out, nil
}

// Checkin records a return.
func (s *Session) Checkin(ctx context.Context, c Checkin) (CheckinResult, error) {
	if why := s.State().NotAccepting(false); why != "" {
		return CheckinResult{}, fmt.Errorf("%w: %s", ErrNotAllowed, why)
	}
	m := Message{Code: "09", Fixed: yn(c.NoBlock) + FormatDate(time.Now()) + FormatDate(c.At),
		Fields: []Field{{"AP", c.Location}, {"AO", s.cfg.Institution}, {"AB", c.Item}, {"AC", s.cfg.TerminalPassword}}}
	r, err := s.Do(ctx, m)
	if err != nil {
		return CheckinResult{}, err
	}
	out := CheckinResult{OK: r.Fixed[0] == '1', Alert: r.Fixed[3] == 'Y'}
	out.AlertType, _ = r.Get("CV")
	out.Screen, _ = r.Get("AF")
	out.Location, _ = r.Get("AQ")
	out.Patron, _ = r.Get("CY")
	return out, nil
}

// ItemInformation asks for an item's circulation status.
func (s *Session) ItemInformation(ctx context.Context, item string) (ItemInfo, error) {
	r, err := s.Do(ctx, Message{Code: "17", Fixed: FormatDate(time.Now()),
		Fields: []Field{{"AO", s.cfg.Institution}, {"AB", item}, {"AC", s.cfg.TerminalPassword}}})
	if err != nil {
		return ItemInfo{}, err
	}
	out := ItemInfo{Status: r.Fixed[:2]}
	out.Due, _ = r.Get("AH")
	out.Title, _ = r.Get("AJ")
	out.Screen, _ = r.Get("AF")
	out.HoldPatron, _ = r.Get("CY")
	out.HoldPickup, _ = r.Get("CT")
	if cf, ok := r.Get("CF"); ok {
		fmt.Sscan(cf, &out.HoldQueue) // a malformed count reads as none
	}
	return out, nil
}

// maxCharged bounds the charged items asked for in one 63.
const maxCharged = 500

// PatronInformation asks about a patron (with pin when not empty); with
// charged, the items charged to them are listed (up to 500).
func (s *Session) PatronInformation(ctx context.Context, patron, pin string, charged bool) (PatronInfo, error) {
	return s.patronInformation(ctx, patron, pin, map[bool]int{true: 2, false: -1}[charged])
}

// PatronHolds asks 63 Patron Information for the items held for a
// patron (summary "hold items", AS; up to 500), and their contact.
func (s *Session) PatronHolds(ctx context.Context, patron string) (PatronInfo, error) {
	return s.patronInformation(ctx, patron, "", 0)
}

// patronInformation sends a 63 with the summary's position list set
// (0 hold items, 2 charged items; -1 none).
func (s *Session) patronInformation(ctx context.Context, patron, pin string, list int) (PatronInfo, error) {
	summary := []byte(strings.Repeat(" ", 10))
	fields := []Field{{"AO", s.cfg.Institution}, {"AA", patron}, {"AC", s.cfg.TerminalPassword}}
	if list >= 0 {
		summary[list] = 'Y'
		fields = append(fields, Field{"BP", "1"}, Field{"BQ", fmt.Sprint(maxCharged)})
	}
	if pin != "" {
		fields = append(fields, Field{"AD", pin})
	}
	r, err := s.Do(ctx, Message{Code: "63", Fixed: "001" + FormatDate(time.Now()) + string(summary), Fields: fields})
	if err != nil {
		return PatronInfo{}, err
	}
	out := patronOf(r)
	for _, f := range r.Fields {
		switch f.Tag {
		case "AU":
			out.Charged = append(out.Charged, f.Value)
		case "AS":
			out.Holds = append(out.Holds, f.Value)
		}
	}
	out.Language = r.Fixed[14:17]
	out.Email, _ = r.Get("BE")
	out.Phone, _ = r.Get("BF")
	return out, nil
}

// PatronStatus asks 23 Patron Status with the patron's PIN: whether the
// patron is valid (BL), the PIN right (CQ), and blocked. A card and PIN
// typed at a locker are checked with it; neither is logged.
func (s *Session) PatronStatus(ctx context.Context, patron, pin string) (PatronInfo, error) {
	r, err := s.Do(ctx, Message{Code: "23", Fixed: "001" + FormatDate(time.Now()),
		Fields: []Field{{"AO", s.cfg.Institution}, {"AA", patron}, {"AC", s.cfg.TerminalPassword}, {"AD", pin}}})
	if err != nil {
		return PatronInfo{}, err
	}
	return patronOf(r), nil
}

// patronOf reads what 24 and 64 share: the patron status's "charge
// privileges denied" and "card reported lost" (positions 1 and 5), BL,
// CQ, AE and AF.
func patronOf(r Message) PatronInfo {
	out := PatronInfo{Blocked: r.Fixed[0] == 'Y' || r.Fixed[4] == 'Y'}
	bl, _ := r.Get("BL")
	cq, _ := r.Get("CQ")
	out.Valid, out.PINOK = bl == "Y", cq == "Y"
	out.Name, _ = r.Get("AE")
	out.Screen, _ = r.Get("AF")
	return out
}

func yn(b bool) string {
	if b {
		return "Y"
	}
	return "N"
}
