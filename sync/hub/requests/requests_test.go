package requests

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/lockerd/lockerd/sync/hub"
	"github.com/lockerd/lockerd/sync/hub/circulation"
	"github.com/lockerd/lockerd/sync/protocol"
)

// fakeHub records the answers sent and makes orders in memory.
type fakeHub struct {
	mu      sync.Mutex
	replies map[string]any // by ref
	got     chan string    // each ref answered
	orders  []hub.OrderRec
	cards   []string
}

func (f *fakeHub) Order(lockerID, orderID string) (hub.OrderRec, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, o := range f.orders {
		if o.Locker == lockerID && o.ID == orderID {
			return o, true, nil
		}
	}
	return hub.OrderRec{}, false, nil
}
func (f *fakeHub) CreateOrder(req hub.NewOrder) (hub.Created, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o := hub.OrderRec{Order: protocol.Order{ID: req.ID, Rev: uint64(len(f.orders) + 1), Items: req.Items}, Locker: req.Locker, Status: "assigned", Patron: req.Patron}
	f.orders = append(f.orders, o)
	return hub.Created{Order: o}, nil
}
func (f *fakeHub) AddOrderItem(lockerID, orderID string, it protocol.Item) (hub.OrderRec, error) {
	return hub.OrderRec{}, fmt.Errorf("not here")
}
func (f *fakeHub) Reply(_, _, ref string, data any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.replies[ref] = data
	f.got <- ref
}
func (f *fakeHub) CountCard(outcome string) {
	f.mu.Lock()
	f.cards = append(f.cards, outcome)
	f.mu.Unlock()
}

// wait waits for the answer to ref.
func (f *fakeHub) wait(t *testing.T, ref string) any {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		if r, ok := f.reply(ref); ok {
			return r
		}
		select {
		case <-f.got:
		case <-timeout:
			t.Fatalf("%s not answered", ref)
		}
	}
}

func (f *fakeHub) reply(ref string) (any, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.replies[ref]
	return r, ok
}

// slowFinder holds every lookup until released.
type slowFinder struct{ release chan struct{} }

func (s slowFinder) FindHold(ctx context.Context, _, item, _ string) (circulation.Hold, error) {
	select {
	case <-s.release:
	case <-ctx.Done():
		return circulation.Hold{}, ctx.Err()
	}
	return circulation.Hold{Item: item, Patron: "P1"}, nil
}
func (slowFinder) RecordHold(string, string, string, circulation.Hold, string, error) error {
	return nil
}

func msg(t *testing.T, typ, id string, data any) protocol.Message {
	raw, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	return protocol.Message{V: 1, Type: typ, ID: id, Locker: "L1", Data: raw}
}

// Hold scans beyond the burst or the slots are answered "unavailable" at
// once (the locker queues them) without asking the library system; the
// others are answered with their order once it is found; malformed ones
// are dropped. A card check without a library system is unavailable.
func TestQuestionsAreBounded(t *testing.T) {
	h := &fakeHub{replies: map[string]any{}, got: make(chan string, 200)}
	f := slowFinder{release: make(chan struct{})}
	s := New(Config{Hub: h, Finder: f})
	for i := range 9 {
		s.Hold("L1", msg(t, protocol.TypeReqHold, fmt.Sprintf("q%d", i), protocol.ReqHold{Item: fmt.Sprintf("B%d", i), By: "staff", Visit: "V1"}))
	}
	// Eight look-ups in flight: the ninth is answered at once.
	if r, ok := h.reply("q8"); !ok || r.(protocol.RespHold).Reason != protocol.HoldUnavailable {
		t.Fatalf("the ninth at once: %+v", r)
	}
	s.Hold("L1", msg(t, protocol.TypeReqHold, "bad", protocol.ReqHold{By: "staff"}))                            // no item
	s.Hold("L1", msg(t, protocol.TypeReqHold, "big", protocol.ReqHold{Item: "B", Loading: make([]string, 17)})) // too many
	close(f.release)
	for i := range 8 {
		if a := h.wait(t, fmt.Sprintf("q%d", i)).(protocol.RespHold); !a.OK || a.Order == nil || a.Order.ID != OrderID("L1", "V1", fmt.Sprintf("B%d", i)) {
			t.Fatalf("q%d: %+v", i, a)
		}
	}
	for _, ref := range []string{"bad", "big"} {
		if _, ok := h.reply(ref); ok {
			t.Errorf("malformed %s answered", ref)
		}
	}
	// Past the burst of 30 a locker is paced.
	for i := range 40 {
		s.Hold("L2", msg(t, protocol.TypeReqHold, fmt.Sprintf("p%d", i), protocol.ReqHold{Item: "X", By: "staff", Visit: "V2"}))
	}
	paced := 0
	for i := range 40 {
		if r, ok := h.reply(fmt.Sprintf("p%d", i)); ok && r.(protocol.RespHold).Reason == protocol.HoldUnavailable {
			paced++
		}
	}
	if paced < 10 {
		t.Fatalf("%d of 40 answered unavailable at once; the burst is 30", paced)
	}

	s.Card("L1", msg(t, protocol.TypeReqPatron, "c1", protocol.ReqPatron{Card: "2100", PIN: "1234"}))
	if a := h.wait(t, "c1").(protocol.RespPatron); a.OK || a.Reason != protocol.PatronUnavailable {
		t.Fatalf("a card check with no library system: %+v", a)
	}
}

// The visits remembered are bounded: full, those over a day old go first;
// a visit's orders are bounded too.
func TestVisitsAreBounded(t *testing.T) {
	var v visits
	now := time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC)
	v.add("L1", "old", visitOrder{"O-old", "P1"}, now.Add(-25*time.Hour))
	for i := range maxVisits - 1 {
		v.add("L1", fmt.Sprint("V", i), visitOrder{fmt.Sprint("O", i), "P1"}, now)
	}
	v.add("L1", "new", visitOrder{"O-new", "P1"}, now)
	if len(v.by) > maxVisits || v.of("L1", "old") != nil || len(v.of("L1", "new")) != 1 || len(v.of("L1", "V7")) != 1 {
		t.Fatalf("%d visits; old %v, new %v", len(v.by), v.of("L1", "old"), v.of("L1", "new"))
	}
	for i := range hub.MaxItems + 5 {
		v.add("L2", "big", visitOrder{fmt.Sprint("O", i), "P1"}, now)
	}
	if n := len(v.of("L2", "big")); n != hub.MaxItems {
		t.Fatalf("a visit keeps %d orders", n)
	}
	if v.of("L1", "") != nil {
		t.Fatal("no visit, no orders")
	}
}
