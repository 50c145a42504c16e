package circulation_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lockerd/lockerd/sync/hub/alarm"
	"github.com/lockerd/lockerd/sync/hub/alarm/alarmtest"
	"github.com/lockerd/lockerd/sync/hub/circulation"
	"github.com/lockerd/lockerd/sync/hub/webhook"
	"github.com/lockerd/lockerd/sync/hub/webhook/webhooktest"
	"github.com/lockerd/lockerd/sync/protocol"
	"github.com/lockerd/lockerd/sync/sip2"
)

// The bridge's fast tests: its store in memory (its queue, the orders
// behind its port, the alarm and webhook stores' own in-memory kits), and
// a scripted library system. The end-to-end tests of the bridge — through
// the hub, against the fake ILS over TCP, on both store engines — are in
// sync/hub.

// memStore is the bridge's Store in memory: an Update that fails leaves
// its queue and orders as they were (and the alarm and webhook kits roll
// back their own).
type memStore struct {
	mu     sync.Mutex
	circs  []circulation.CircRec
	orders map[string]*order // locker/order id
	alarms *alarmtest.Mem
	hooks  *webhooktest.Mem
}

type order struct {
	patron string
	items  []protocol.Item
	loans  []circulation.Loan
}

func (s *memStore) View(fn func(circulation.Tx) error) error { return s.run(fn) }

func (s *memStore) Update(fn func(circulation.Tx) error) error { return s.run(fn) }

func (s *memStore) run(fn func(circulation.Tx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := &memQueue{circs: slices.Clone(s.circs)}
	o := memOrders{}
	for k, v := range s.orders {
		c := *v
		c.loans = slices.Clone(v.loans)
		o[k] = &c
	}
	return s.alarms.Update(func(atx alarm.Tx) error {
		return s.hooks.Update(func(wtx webhook.Tx) error {
			if err := fn(circulation.Tx{Circ: q, Orders: o, Alarms: atx, Hooks: wtx, Lease: held{}}); err != nil {
				return err
			}
			s.circs, s.orders = q.circs, o
			return nil
		})
	})
}

type memQueue struct{ circs []circulation.CircRec }

func (q *memQueue) AddCirc(c circulation.CircRec) (circulation.CircRec, error) {
	c.ID = uint64(len(q.circs) + 1)
	q.circs = append(q.circs, c)
	return c, nil
}

func (q *memQueue) PutCirc(c circulation.CircRec) error {
	q.circs[c.ID-1] = c
	return nil
}

func (q *memQueue) Circ(id uint64) (circulation.CircRec, bool, error) {
	if id == 0 || id > uint64(len(q.circs)) {
		return circulation.CircRec{}, false, nil
	}
	return q.circs[id-1], true, nil
}

func (q *memQueue) Circs(after uint64, limit int) ([]circulation.CircRec, error) {
	var out []circulation.CircRec
	for _, c := range q.circs {
		if c.ID > after && (limit <= 0 || len(out) < limit) {
			out = append(out, c)
		}
	}
	return out, nil
}

func (q *memQueue) OpenCircs(limit int) ([]circulation.CircRec, error) {
	var out []circulation.CircRec
	for _, c := range q.circs {
		if c.Open() && (limit <= 0 || len(out) < limit) {
			out = append(out, c)
		}
	}
	return out, nil
}

type memOrders map[string]*order

func (o memOrders) OrderItems(lockerID, orderID string) (string, []protocol.Item, bool, error) {
	x, ok := o[lockerID+"/"+orderID]
	if !ok {
		return "", nil, false, nil
	}
	return x.patron, x.items, true, nil
}

func (o memOrders) SetLoan(lockerID, orderID string, loan circulation.Loan) error {
	x, ok := o[lockerID+"/"+orderID]
	if !ok {
		return nil
	}
	x.loans = append(slices.DeleteFunc(x.loans, func(l circulation.Loan) bool { return l.Item == loan.Item }), loan)
	return nil
}

type held struct{}

func (held) Claim(time.Duration) (bool, error) { return true, nil }
func (held) Release() error                    { return nil }

type outcomes struct {
	mu sync.Mutex
	n  map[string]int
}

func (m *outcomes) Outcome(c circulation.CircRec) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.n[c.Kind+" "+c.State]++
}
func (m *outcomes) RTT(string, time.Duration, error) {}

// ils is a scripted library system: it lends what it is asked to, but
// refuses item REFUSED, and loses the reply to the first checkout of item
// LOST (it acts on it).
type ils struct {
	mu        sync.Mutex
	checkouts map[string]int // item → times
	charged   map[string]string
	lost      bool
}

func (f *ils) State() sip2.State {
	return sip2.State{Up: true, Online: true, CheckinOK: true, CheckoutOK: true, Retries: 3, Timeout: time.Second}
}

func (f *ils) Checkout(_ context.Context, c sip2.Checkout) (sip2.CheckoutResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.checkouts[c.Item]++
	if c.Item == "REFUSED" {
		return sip2.CheckoutResult{OK: false, Screen: "Item not for loan"}, nil
	}
	f.charged[c.Item] = c.Patron
	if c.Item == "LOST" && !f.lost {
		f.lost = true
		return sip2.CheckoutResult{}, fmt.Errorf("%w: connection reset", sip2.ErrNoReply)
	}
	return sip2.CheckoutResult{OK: true, Due: "20261231    235900"}, nil
}

func (f *ils) Checkin(context.Context, sip2.Checkin) (sip2.CheckinResult, error) {
	return sip2.CheckinResult{OK: true}, nil
}

func (f *ils) ItemInformation(_ context.Context, item string) (sip2.ItemInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.charged[item] != "" {
		return sip2.ItemInfo{Status: sip2.StatusCharged, Due: "20261231    235900"}, nil
	}
	return sip2.ItemInfo{Status: sip2.StatusAvailable}, nil
}

func (f *ils) PatronInformation(_ context.Context, patron, _ string, _ bool) (sip2.PatronInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := sip2.PatronInfo{Valid: true}
	for item, who := range f.charged {
		if who == patron {
			p.Charged = append(p.Charged, item)
		}
	}
	return p, nil
}

func (f *ils) PatronStatus(context.Context, string, string) (sip2.PatronInfo, error) {
	return sip2.PatronInfo{}, errors.New("not here")
}

// A pickup queues one checkout per item of its order, in the event's
// transaction; the bridge lends each once, keeps each loan with its order,
// and counts it. A refusal raises an alarm and tells the webhooks in the
// same transaction. A checkout whose reply was lost is looked up, not sent
// again (exactly once).
func TestBridgeOnMemory(t *testing.T) {
	hooks := webhooktest.NewMem()
	hooks.Update(func(tx webhook.Tx) error {
		return tx.PutWebhook(webhook.Webhook{ID: "wh-1", URL: "https://ils.example/hooks", Events: webhook.HookTypes, Secret: "s3cret-s3cret-s3cret"})
	})
	alarms := &alarmtest.Mem{}
	store := &memStore{orders: map[string]*order{
		"L1/O1": {patron: "P1", items: []protocol.Item{{Barcode: "B1"}, {Barcode: "B2"}}},
		"L1/O2": {patron: "P1", items: []protocol.Item{{Barcode: "REFUSED"}, {Barcode: "LOST"}}},
	}, alarms: alarms, hooks: hooks}
	lib := &ils{checkouts: map[string]int{}, charged: map[string]string{}}
	metrics := &outcomes{n: map[string]int{}}
	svc := webhook.New(webhook.Config{Store: hooks, Lease: held{}})
	b := circulation.New(circulation.Config{Circulation: circulation.Circulation{ILS: lib}, Store: store, Hooks: svc, Metrics: metrics,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Raise: func(at alarm.Tx, wt webhook.Tx, a alarm.Alarm) error {
			a, isNew, err := alarm.Raise(at, a, time.Now())
			if err != nil || !isNew {
				return err
			}
			return svc.Queue(wt, webhook.HookAlarm, fmt.Sprintf("alarm-%d", a.Seq), "", a)
		}})
	pickup := func(orderID string, seq uint64) {
		t.Helper()
		e := protocol.Event{ID: fmt.Sprintf("L1-s1-%d", seq), Type: protocol.EvPickupCompleted, Locker: "L1", Seq: seq, TS: time.Now().UTC()}
		if err := store.Update(func(tx circulation.Tx) error {
			return b.Queue(tx, "L1", e, &protocol.PickupCompleted{OrderID: orderID})
		}); err != nil {
			t.Fatal(err)
		}
	}
	pickup("O1", 1)
	pickup("O2", 2)
	if q, _ := b.List(circulation.CircFilter{State: circulation.CircQueued}); len(q) != 4 || q[0].Patron != "P1" || q[0].Item != "B1" {
		t.Fatalf("queued: %+v", q)
	}
	ctx := context.Background()
	b.Work(ctx) // B1, B2 lent; REFUSED refused; LOST sent, its reply lost: the round stops there
	b.Work(ctx) // LOST looked up: the ILS has it
	done, _ := b.List(circulation.CircFilter{State: circulation.CircDone})
	refused, _ := b.List(circulation.CircFilter{State: circulation.CircRefused})
	if len(done) != 3 || len(refused) != 1 || refused[0].Item != "REFUSED" {
		t.Fatalf("done %+v, refused %+v", done, refused)
	}
	if lib.checkouts["LOST"] != 1 || lib.checkouts["B1"] != 1 {
		t.Fatalf("checkouts sent: %v (each once)", lib.checkouts)
	}
	if l := store.orders["L1/O1"].loans; len(l) != 2 || !l[0].OK || l[0].Due == "" {
		t.Fatalf("loans kept with O1: %+v", l)
	}
	if l := store.orders["L1/O2"].loans; len(l) != 2 {
		t.Fatalf("loans kept with O2 (the refusal too): %+v", l)
	}
	alarms.View(func(tx alarm.Tx) error {
		open, _ := tx.OpenAlarms()
		if len(open) != 1 || open[0].Type != alarm.Circulation || open[0].Locker != "L1" {
			t.Errorf("alarms: %+v", open)
		}
		return nil
	})
	var told []string
	hooks.View(func(tx webhook.Tx) error {
		ds, _ := tx.Deliveries(0, 0)
		for _, d := range ds {
			told = append(told, d.Type)
		}
		return nil
	})
	slices.Sort(told)
	if !slices.Equal(told, []string{webhook.HookAlarm, webhook.HookCirculation}) {
		t.Fatalf("webhooks queued: %v", told)
	}
	if want := map[string]int{"checkout done": 3, "checkout refused": 1}; !maps.Equal(metrics.n, want) {
		t.Fatalf("outcomes %v, want %v", metrics.n, want)
	}
}

func (f *ils) PatronHolds(context.Context, string) (sip2.PatronInfo, error) {
	return sip2.PatronInfo{Valid: true}, nil
}
