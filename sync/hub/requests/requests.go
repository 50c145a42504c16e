package requests

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/sync/hub"
	"github.com/lockerd/lockerd/sync/hub/auth"
	"github.com/lockerd/lockerd/sync/hub/circulation"
	"github.com/lockerd/lockerd/sync/protocol"
)

// Hub is what the service uses of the core.
type Hub interface {
	Order(lockerID, orderID string) (o hub.OrderRec, found bool, err error)
	CreateOrder(req hub.NewOrder) (hub.Created, error)
	AddOrderItem(lockerID, orderID string, it protocol.Item) (hub.OrderRec, error)
	Reply(lockerID, typ, ref string, data any)
	CountCard(outcome string)
}

// Finder asks the library system about holds and keeps what each scan
// came to (the circulation bridge).
type Finder interface {
	FindHold(ctx context.Context, lockerID, item, card string) (circulation.Hold, error)
	RecordHold(lockerID, visit, by string, h circulation.Hold, orderID string, orderErr error) error
}

var (
	_ Hub    = (*hub.Hub)(nil)
	_ Finder = (*circulation.Bridge)(nil)
)

// Config is a Service's.
type Config struct {
	Hub    Hub
	Finder Finder
	ILS    circulation.ILS // for card checks (nil: answered unavailable)
	Key    locker.CodeKey  // the pickup key: a card's patron hash
	// TTL is how long a hold's order waits in the locker once made
	// (default 72h, as an order made through the API).
	TTL time.Duration
	Log *slog.Logger
}

// Service answers lockers' questions.
type Service struct {
	cfg    Config
	log    *slog.Logger
	cards  bound
	holds  bound
	visits visits
}

// bound limits one kind of question: per locker a burst then a pace, and
// how many are answered at once.
type bound struct {
	limit auth.RateLimiter
	slots chan struct{}
}

// take reports whether a question of locker id may be answered now; if
// so, done gives its slot back.
func (b *bound) take(id string) (done func(), ok bool) {
	if !b.limit.Allow(id, time.Now()) {
		return nil, false
	}
	select {
	case b.slots <- struct{}{}:
		return func() { <-b.slots }, true
	default:
		return nil, false
	}
}

const (
	// cardTimeout leaves the answer time to reach the locker within its
	// 3 s (locker.CardCheckTimeout); holdTimeout within its 8 s
	// (locker.HoldAskTimeout).
	cardTimeout = 2500 * time.Millisecond
	holdTimeout = 6 * time.Second
)

// New makes a Service. A locker may ask 10 card checks at once, then one
// every 6 s (a scanner flooded with cards does not flood the library
// system), 8 in flight in all; 30 hold scans at once (a trolley of
// holds), then one a second, 8 in flight.
func New(cfg Config) *Service {
	if cfg.TTL <= 0 {
		cfg.TTL = 72 * time.Hour
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Service{cfg: cfg, log: cfg.Log.With("component", "requests"),
		cards: bound{auth.RateLimiter{Burst: 10, Every: 6 * time.Second}, make(chan struct{}, 8)},
		holds: bound{auth.RateLimiter{Burst: 30, Every: time.Second}, make(chan struct{}, 8)}}
}

// Card answers one req.patron from locker lockerID.
func (s *Service) Card(lockerID string, m protocol.Message) {
	var req protocol.ReqPatron
	if len(m.Data) > protocol.MaxReqPatron || protocol.DecodeData(m, &req) != nil {
		s.log.Warn("malformed card request refused", "locker", lockerID)
		return
	}
	answer := func(ans protocol.RespPatron, outcome string) {
		s.cfg.Hub.CountCard(outcome)
		s.cfg.Hub.Reply(lockerID, protocol.TypeRespPatron, m.ID, ans)
		s.log.Info("card check", "locker", lockerID, "outcome", outcome)
	}
	done, ok := s.cards.take(lockerID)
	if !ok {
		answer(protocol.RespPatron{Reason: protocol.PatronUnavailable, Message: "too many card checks: use the pickup code"}, "rate_limited")
		return
	}
	go func() {
		defer done()
		ctx, cancel := context.WithTimeout(context.Background(), cardTimeout)
		defer cancel()
		answer(circulation.AnswerCard(ctx, s.cfg.ILS, s.cfg.Key, req))
	}()
}

// Hold answers one req.hold from locker lockerID: at once when the scan
// cannot be looked up now, else once the library system has answered.
func (s *Service) Hold(lockerID string, m protocol.Message) {
	var req protocol.ReqHold
	if len(m.Data) > protocol.MaxReqHold || protocol.DecodeData(m, &req) != nil || req.Item == "" ||
		len(req.By) > 128 || len(req.Visit) > 32 || len(req.Card) > circulation.MaxBarcodeLen || len(req.Loading) > 16 {
		s.log.Warn("malformed hold scan refused", "locker", lockerID)
		return
	}
	done, ok := s.holds.take(lockerID)
	if !ok {
		s.cfg.Hub.Reply(lockerID, protocol.TypeRespHold, m.ID, protocol.RespHold{Reason: protocol.HoldUnavailable, Message: "too many scans at once: it is queued"})
		return
	}
	go func() {
		defer done()
		ctx, cancel := context.WithTimeout(context.Background(), holdTimeout)
		defer cancel()
		s.cfg.Hub.Reply(lockerID, protocol.TypeRespHold, m.ID, s.Scan(ctx, lockerID, req))
	}()
}

// Wire makes a Service answer the questions of the hub cfg makes: call it
// once cfg.Circulation is set and before hub.New, then the function it
// returns with the hub made. Until then a question is answered by no one
// (the locker gives up: the pickup code, or the scan queued) and a queued
// scan waits in the bridge.
func Wire(cfg *hub.Config, ttl time.Duration) func(*hub.Hub) *Service {
	var sv atomic.Pointer[Service]
	if cfg.Requests == nil {
		cfg.Requests = map[string]func(string, protocol.Message){}
	}
	cfg.Requests[protocol.TypeReqPatron] = func(lockerID string, m protocol.Message) {
		if s := sv.Load(); s != nil {
			s.Card(lockerID, m)
		}
	}
	cfg.Requests[protocol.TypeReqHold] = func(lockerID string, m protocol.Message) {
		if s := sv.Load(); s != nil {
			s.Hold(lockerID, m)
		}
	}
	cfg.Circulation.OrderHold = func(ctx context.Context, o circulation.HoldOrder) (string, error) {
		if s := sv.Load(); s != nil {
			return s.OrderHold(ctx, o)
		}
		return "", errors.New("requests: the service is not running yet")
	}
	ils, key, log := cfg.Circulation.ILS, cfg.PickupKey, cfg.Log
	return func(h *hub.Hub) *Service {
		s := New(Config{Hub: h, Finder: h.Bridge(), ILS: ils, Key: key, TTL: ttl, Log: log})
		sv.Store(s)
		return s
	}
}
