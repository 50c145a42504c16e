package notice

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/mail"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/lockerd/lockerd/sync/protocol"
)

// Kinds of notice.
const (
	KindReady     = "ready"     // loaded: come and collect, with the code
	KindReminder  = "reminder"  // a day before the last day, with the code
	KindExpired   = "expired"   // not collected in time: the books went back
	KindCancelled = "cancelled" // the order was cancelled
	// KindDispatched: a home delivery's books left with the courier (a
	// volunteer's badge took them from the locker), to the reader's address.
	KindDispatched = "dispatched"
)

// Kinds lists the kinds of notice.
var Kinds = []string{KindReady, KindReminder, KindExpired, KindCancelled, KindDispatched}

// Notice states.
const (
	StatePending = "pending"
	StateSending = "sending" // marked before it goes out: found so after a crash, sent again with the same id
	StateSent    = "sent"
	StateDead    = "dead" // gave up at its deadline: listed
)

// Channel names.
const (
	ChannelEmail = "email"
	ChannelHTTP  = "http"
)

// Languages a notice is written in; the first is the default.
var Langs = []string{"zh", "en"}

const (
	// LeaseName is the lease under which one replica sends.
	LeaseName  = "notices"
	poll       = 500 * time.Millisecond
	minBackoff = 30 * time.Second
	maxBackoff = 30 * time.Minute
	// endedDeadline: how long a notice of an order's end is retried.
	endedDeadline = 24 * time.Hour
	maxAddress    = 254
)

// Contact is how a reader is told: an e-mail address, a phone number
// (for the HTTP gateway: SMS, WeChat), and their language.
type Contact struct {
	Email string `json:"email,omitempty"`
	Phone string `json:"phone,omitempty"`
	Lang  string `json:"lang,omitempty"` // zh (default) or en
}

// Check bounds a contact: a plain e-mail address (no display name, no
// line breaks: it goes into a header), a phone number of digits with an
// optional leading +, a known language.
func (c Contact) Check() error {
	if c.Email != "" {
		a, err := mail.ParseAddress(c.Email)
		if err != nil || a.Name != "" || a.Address != c.Email || len(c.Email) > maxAddress {
			return fmt.Errorf("contact email %q: want a plain address (name@example.org)", c.Email)
		}
	}
	if c.Phone != "" {
		digits := strings.TrimPrefix(c.Phone, "+")
		if len(digits) < 5 || len(digits) > 20 || strings.Trim(digits, "0123456789") != "" {
			return fmt.Errorf("contact phone %q: want 5 to 20 digits, + before them allowed", c.Phone)
		}
	}
	if c.Lang != "" && !slices.Contains(Langs, c.Lang) {
		return fmt.Errorf("contact lang %q: want %s", c.Lang, strings.Join(Langs, " or "))
	}
	return nil
}

// Empty reports whether c reaches nobody.
func (c Contact) Empty() bool { return c.Email == "" && c.Phone == "" }

// Place is where a locker stands, as a reader is told: its name, address
// and opening hours, by language.
type Place struct {
	Name    Text `json:"name"`
	Address Text `json:"address"`
	Hours   Text `json:"hours"`
}

// Text is a text by language; In falls back to the default language, then
// to any.
type Text map[string]string

// In is t in lang.
func (t Text) In(lang string) string {
	if s, ok := t[lang]; ok {
		return s
	}
	if s, ok := t[Langs[0]]; ok {
		return s
	}
	for _, l := range slices.Sorted(func(yield func(string) bool) {
		for k := range t {
			if !yield(k) {
				return
			}
		}
	}) {
		return t[l]
	}
	return ""
}

// Notice is one message to one reader through one channel.
type Notice struct {
	ID      uint64 `json:"id"`
	Key     string `json:"key"` // order/kind/channel: queued once
	Order   string `json:"order"`
	Locker  string `json:"locker"`
	Kind    string `json:"kind"`
	Channel string `json:"channel"`
	To      string `json:"to"`
	Lang    string `json:"lang"`
	// Sealed is the pickup code sealed to the notice key (ready and
	// reminder), erased once sent.
	Sealed      []byte    `json:"sealed,omitempty"`
	Compartment string    `json:"compartment,omitempty"`
	Titles      []string  `json:"titles,omitempty"`
	DeliverTo   string    `json:"deliver_to,omitempty"`
	LastDay     time.Time `json:"last_day,omitzero"` // the order's expiry
	Created     time.Time `json:"created"`
	Deadline    time.Time `json:"deadline"` // retried until then, then dead
	NextAt      time.Time `json:"next_at"`
	Attempts    int       `json:"attempts"`
	State       string    `json:"state"`
	Error       string    `json:"error,omitempty"`
	Sent        time.Time `json:"sent,omitzero"`
}

// Public is n as listed: without its sealed code.
func (n Notice) Public() Notice { n.Sealed = nil; return n }

// NewNotice is what the caller knows when something happens to an order.
type NewNotice struct {
	Order, Locker, Kind string
	Contact             Contact
	Sealed              []byte // the sealed pickup code (ready, reminder)
	Compartment         string
	LastDay             time.Time
	Titles              []string // the books' titles (the first MaxTitles, each bounded)
	DeliverTo           string   // a home delivery's address (dispatched)
}

// MaxTitles bounds the titles a notice names.
const MaxTitles = 10

// Tx is the part of a store transaction this package needs: the notice
// queue. AddNotice numbers n and adds it unless a notice of its key is
// there (added false, and the one there); PutNotice writes a numbered
// one's new state; PendingNotices lists the pending and sending ones by id
// (at most limit; 0: all); Notices lists all after id after, or those of
// one order.
type Tx interface {
	AddNotice(n Notice) (out Notice, added bool, err error)
	PutNotice(n Notice) error
	Notice(id uint64) (n Notice, found bool, err error)
	PendingNotices(limit int) ([]Notice, error)
	Notices(after uint64, limit int) ([]Notice, error)
	OrderNotices(order string) ([]Notice, error)
}

// Store runs transactions over this package's records.
type Store interface {
	View(fn func(Tx) error) error
	Update(fn func(Tx) error) error
}

// Lease is the sender's lease among replicas: held, it is this replica's
// to send until ttl from now.
type Lease interface {
	Claim(ttl time.Duration) (held bool, err error)
	Release() error
}

// Message is a notice as a channel sends it: rendered, with the code
// opened.
type Message struct {
	ID        string // the notice's: Message-ID, Idempotency-Key
	Kind      string
	To        string
	Lang      string
	Subject   string
	Text      string // the whole message, plain text
	Order     string
	Locker    string
	Code      string `json:"-"` // ready, reminder: the pickup code
	Link      string
	Place     string
	Address   string
	Hours     string
	LastDay   time.Time
	Titles    []string
	DeliverTo string
}

// Channel sends messages one way.
type Channel interface {
	Send(ctx context.Context, m Message) error
}

// Linker makes the link to an order's page (an unguessable token that
// expires with the order); nil: no link.
type Linker func(order, locker string, until time.Time) (string, error)

// Config is a Service's.
type Config struct {
	Store    Store
	Lease    Lease
	Sealer   *Sealer
	Channels map[string]Channel // by channel name: what is not here is not queued
	Places   func(locker string) Place
	Link     Linker
	Timeout  time.Duration // one send (0: 20 s)
	LeaseTTL time.Duration
	Log      *slog.Logger
}

// Service is the notices of one hub replica.
type Service struct {
	cfg  Config
	log  *slog.Logger
	sent func(channel string) // counts a notice sent (metrics); may be nil
}

// New makes a Service.
func New(cfg Config) *Service {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 20 * time.Second
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 15 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Places == nil {
		cfg.Places = func(string) Place { return Place{} }
	}
	return &Service{cfg: cfg, log: cfg.Log.With("component", "notices")}
}

// Enabled reports whether any channel is configured.
func (s *Service) Enabled() bool { return len(s.cfg.Channels) > 0 }

// Seal seals a pickup code for the notices of its order (nil when no
// channel is configured: nothing will need it).
func (s *Service) Seal(code string) ([]byte, error) {
	if !s.Enabled() || s.cfg.Sealer == nil {
		return nil, nil
	}
	return s.cfg.Sealer.Seal(code)
}

// Queue queues n, in tx, once per channel the contact can be reached by
// and the hub has; a notice of the same order, kind and channel queued
// before is not queued again. A ready or reminder notice without the
// sealed code is not queued (the reader could not use it).
func (s *Service) Queue(tx Tx, n NewNotice, now time.Time) error {
	if !slices.Contains(Kinds, n.Kind) {
		return fmt.Errorf("notice kind %q", n.Kind)
	}
	if n.Contact.Empty() {
		return nil
	}
	withCode := n.Kind == KindReady || n.Kind == KindReminder
	if withCode && len(n.Sealed) == 0 {
		s.log.Warn("notice not queued: no sealed code", "order", n.Order, "kind", n.Kind)
		return nil
	}
	lang := n.Contact.Lang
	if lang == "" {
		lang = Langs[0]
	}
	deadline := now.Add(endedDeadline)
	if withCode {
		deadline = n.LastDay
	}
	for _, ch := range []struct{ name, to string }{{ChannelEmail, n.Contact.Email}, {ChannelHTTP, n.Contact.Phone}} {
		if ch.to == "" || s.cfg.Channels[ch.name] == nil {
			continue
		}
		rec := Notice{Key: n.Order + "/" + n.Kind + "/" + ch.name, Order: n.Order, Locker: n.Locker, Kind: n.Kind,
			Channel: ch.name, To: ch.to, Lang: lang, Compartment: n.Compartment, LastDay: n.LastDay, Titles: boundTitles(n.Titles), DeliverTo: n.DeliverTo,
			Created: now, Deadline: deadline, NextAt: now, State: StatePending}
		if withCode {
			rec.Sealed = slices.Clone(n.Sealed)
		}
		if _, _, err := tx.AddNotice(rec); err != nil {
			return err
		}
	}
	return nil
}

// Work sends what is due at now, once, as Run does every half second
// (tests drive it with a clock of their own).
func (s *Service) Work(ctx context.Context, now time.Time) {
	var pending []Notice
	if err := s.cfg.Store.View(func(tx Tx) error {
		var err error
		pending, err = tx.PendingNotices(200)
		return err
	}); err != nil || len(pending) == 0 {
		return
	}
	hold := s.cfg.LeaseTTL + 2*s.cfg.Timeout
	if held, err := s.cfg.Lease.Claim(hold); err != nil || !held {
		return
	}
	claimed := time.Now()
	for _, n := range pending {
		if ctx.Err() != nil || n.NextAt.After(now) {
			continue
		}
		if time.Since(claimed) > hold/2 {
			if held, err := s.cfg.Lease.Claim(hold); err != nil || !held {
				return
			}
			claimed = time.Now()
		}
		if err := s.send(ctx, n, now); err != nil {
			// The store failed: the round stops (what it sends next
			// could not be recorded either).
			s.log.Warn("notice not recorded: the round stops", "id", n.ID, "err", err)
			return
		}
	}
}

// send makes one attempt at n; an error is the store's.
func (s *Service) send(ctx context.Context, n Notice, now time.Time) error {
	if !now.Before(n.Deadline) {
		return s.finish(n, func(r *Notice) {
			r.State, r.Sealed = StateDead, nil
			r.Error = strings.TrimSpace("not sent by its deadline " + r.Deadline.UTC().Format(time.RFC3339) + ": " + r.Error)
		})
	}
	// Sending, in the store before it goes out: a crash from here on
	// finds it sending, and it goes again with the same id.
	if n.State != StateSending {
		if err := s.finish(n, func(r *Notice) { r.State = StateSending }); err != nil {
			return err
		}
	}
	ch := s.cfg.Channels[n.Channel]
	m, err := s.render(n)
	if err == nil && ch == nil {
		err = fmt.Errorf("channel %s is not configured", n.Channel)
	}
	if err == nil {
		sctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
		err = ch.Send(sctx, m)
		cancel()
	}
	if err != nil {
		s.log.Warn("notice not sent", "id", n.ID, "order", n.Order, "kind", n.Kind, "channel", n.Channel, "attempt", n.Attempts+1, "err", err)
		return s.finish(n, func(r *Notice) {
			r.Attempts++
			r.Error = bound(err.Error(), 500)
			backoff := min(minBackoff<<min(r.Attempts-1, 16), maxBackoff)
			r.NextAt = now.Add(time.Duration(float64(backoff) * (0.8 + 0.4*mrand.Float64())))
			r.State = StatePending
		})
	}
	if s.sent != nil {
		s.sent(n.Channel)
	}
	s.log.Info("notice sent", "id", n.ID, "order", n.Order, "kind", n.Kind, "channel", n.Channel)
	return s.finish(n, func(r *Notice) {
		r.Attempts++
		r.State, r.Sent, r.Error, r.Sealed = StateSent, now, "", nil
	})
}

// finish writes n changed by f, unless it left the queue meanwhile.
func (s *Service) finish(n Notice, f func(*Notice)) error {
	return s.cfg.Store.Update(func(tx Tx) error {
		cur, found, err := tx.Notice(n.ID)
		if err != nil || !found || (cur.State != StatePending && cur.State != StateSending) {
			return err
		}
		f(&cur)
		return tx.PutNotice(cur)
	})
}

// render writes n in its language, with its code opened.
func (s *Service) render(n Notice) (Message, error) {
	m := Message{ID: fmt.Sprintf("notice-%d", n.ID), Kind: n.Kind, To: n.To, Lang: n.Lang, Order: n.Order, Locker: n.Locker, LastDay: n.LastDay,
		Titles: n.Titles, DeliverTo: n.DeliverTo}
	if len(n.Sealed) > 0 {
		if s.cfg.Sealer == nil {
			return m, errors.New("no notice key to open the code with")
		}
		code, err := s.cfg.Sealer.Open(n.Sealed)
		if err != nil {
			return m, err
		}
		m.Code = code
	}
	p := s.cfg.Places(n.Locker)
	m.Place, m.Address, m.Hours = p.Name.In(n.Lang), p.Address.In(n.Lang), p.Hours.In(n.Lang)
	if m.Place == "" {
		m.Place = n.Locker
	}
	if s.cfg.Link != nil && (n.Kind == KindReady || n.Kind == KindReminder || n.Kind == KindDispatched) {
		link, err := s.cfg.Link(n.Order, n.Locker, n.LastDay)
		if err != nil {
			return m, fmt.Errorf("order page link: %w", err)
		}
		m.Link = link
	}
	m.Subject, m.Text = write(m, n.Compartment)
	return m, nil
}

// List lists notices after id after (at most limit), or an order's.
func (s *Service) List(order string, after uint64, limit int) ([]Notice, error) {
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	var out []Notice
	err := s.cfg.Store.View(func(tx Tx) error {
		var err error
		if order != "" {
			out, err = tx.OrderNotices(order)
		} else {
			out, err = tx.Notices(after, limit)
		}
		return err
	})
	for i := range out {
		out[i] = out[i].Public()
	}
	return out, err
}

// OnSent is told of each notice sent, by channel (for the metrics).
func (s *Service) OnSent(f func(channel string)) { s.sent = f }

// Run sends until ctx ends.
func (s *Service) Run(ctx context.Context) {
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			_ = s.cfg.Lease.Release()
			return
		case <-tick.C:
			s.Work(ctx, time.Now())
		}
	}
}

func bound(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// boundTitles keeps the first MaxTitles titles, each at most 100
// characters, printable on one line.
func boundTitles(in []string) []string {
	var out []string
	for _, t := range in {
		if len(out) == MaxTitles {
			break
		}
		t = strings.Map(func(r rune) rune {
			if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
				return -1
			}
			return r
		}, t)
		if r := []rune(t); len(r) > 100 {
			t = string(r[:100]) + "…"
		}
		if t != "" {
			out = append(out, t)
		}
	}
	return out
}

// TitlesOf are the titles of an order's items (those it has).
func TitlesOf(items []protocol.Item) []string {
	var out []string
	for _, it := range items {
		if it.Title != "" {
			out = append(out, it.Title)
		}
	}
	return out
}
