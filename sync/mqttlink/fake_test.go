package mqttlink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/sync/protocol"
)

// fakeCore is a Core in memory: an outbox, orders by id, a set of
// replaced orders; syncErr makes SyncState fail.
type fakeCore struct {
	mu        sync.Mutex
	outbox    []locker.Event
	acked     uint64
	orders    map[string]locker.Order
	snapRev   uint64
	replaced  int // ReplaceOrders calls that completed
	cmdErr    error
	opened    []string
	syncErr   error
	faults    []string
	conflicts []locker.IdentityConflict
	applied   [][]locker.Order
	cancelled []string
	service   []string
}

var _ Core = (*fakeCore)(nil)

func newFakeCore(events int) *fakeCore {
	c := &fakeCore{orders: map[string]locker.Order{}}
	for i := 1; i <= events; i++ {
		c.outbox = append(c.outbox, locker.Event{Seq: uint64(i), Type: "test.event", TS: time.Unix(int64(i), 0).UTC(), Boot: 1})
	}
	return c
}

func (c *fakeCore) SyncState() (locker.SyncState, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.syncErr != nil {
		return locker.SyncState{}, c.syncErr
	}
	st := locker.SyncState{Boot: 1, StoreID: "store1", AckedSeq: c.acked, SnapshotRev: c.snapRev, Depth: len(c.outbox)}
	if n := len(c.outbox); n > 0 {
		st.OutboxHead, st.OutboxTail = c.outbox[n-1].Seq, c.outbox[0].Seq
	} else {
		st.OutboxHead, st.OutboxTail = c.acked, c.acked+1
	}
	return st, nil
}
func (c *fakeCore) StoreID() string { return "store1" }
func (c *fakeCore) Boot() uint64    { return 1 }
func (c *fakeCore) Events(after uint64, limit int) ([]locker.Event, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []locker.Event
	for _, e := range c.outbox {
		if e.Seq > after && len(out) < limit {
			out = append(out, e)
		}
	}
	return out, nil
}
func (c *fakeCore) Subscribe() (<-chan locker.Event, func()) {
	return make(chan locker.Event), func() {}
}
func (c *fakeCore) AckEvents(upto uint64) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	c.outbox = slices.DeleteFunc(c.outbox, func(e locker.Event) bool {
		if e.Seq <= upto {
			n++
			return true
		}
		return false
	})
	c.acked = max(c.acked, upto)
	return n, nil
}
func (c *fakeCore) Telemetry() (locker.Telemetry, error) { return locker.Telemetry{}, nil }
func (c *fakeCore) HashCode(raw string) (string, error)  { return "hash-" + raw, nil }
func (c *fakeCore) ApplyOrders(orders []locker.Order) (locker.OrdersResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var res locker.OrdersResult
	for _, o := range orders {
		c.orders[o.ID] = o
		res.AppliedCount++
	}
	c.applied = append(c.applied, orders)
	return res, nil
}
func (c *fakeCore) CancelOrders(ids []string, rev uint64) (locker.OrdersResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cancelled = append(c.cancelled, ids...)
	return locker.OrdersResult{Rev: rev}, nil
}

// ReplaceOrders keeps exactly the set, as the core does (without its
// rules about books in compartments).
func (c *fakeCore) ReplaceOrders(rev uint64, orders iter.Seq2[[]locker.Order, error]) (locker.OrdersResult, error) {
	next := map[string]locker.Order{}
	var res locker.OrdersResult
	for part, err := range orders {
		if err != nil {
			return res, err
		}
		for _, o := range part {
			next[o.ID] = o
			res.AppliedCount++
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.orders, c.snapRev = next, rev
	c.replaced++
	return res, nil
}
func (c *fakeCore) CheckCommandTime(exp time.Time) error { return c.cmdErr }
func (c *fakeCore) ObserveCentralTime(time.Time)         {}
func (c *fakeCore) RemoteOpen(ctx context.Context, id, reason string) (locker.ScanResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.opened = append(c.opened, id)
	return locker.ScanResult{Outcome: locker.OutcomeMaintOpen, Compartments: []string{id}}, nil
}
func (c *fakeCore) ChangeBadges(ch locker.BadgeChange) (int, error) {
	return len(ch.Add) + len(ch.RevokeHashes) + len(ch.RevokeNames), nil
}

func (c *fakeCore) SetService(id string, in bool, reason string) error {
	if id == "Z9" {
		return fmt.Errorf("unknown compartment %q", id)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.service = append(c.service, fmt.Sprintf("%s %v %s", id, in, reason))
	return nil
}
func (c *fakeCore) RecordIdentityConflict(ic locker.IdentityConflict) {
	c.mu.Lock()
	c.conflicts = append(c.conflicts, ic)
	c.mu.Unlock()
}
func (c *fakeCore) Fault(reason string) {
	c.mu.Lock()
	c.faults = append(c.faults, reason)
	c.mu.Unlock()
}
func (c *fakeCore) Recover(where string) {
	if r := recover(); r != nil {
		c.Fault(where)
	}
}
func (c *fakeCore) ids() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for id := range c.orders {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// memState is a State in memory.
type memState struct {
	staged   Staged
	started  time.Time
	parts    map[int][]byte
	commands map[string]bool
	fail     error
}

var _ State = (*memState)(nil)

func newMemState() *memState { return &memState{parts: map[int][]byte{}, commands: map[string]bool{}} }

func (m *memState) StagePart(at Staged, part int, payload []byte, now time.Time) (Staged, bool, int, error) {
	if m.fail != nil {
		return Staged{}, false, 0, m.fail
	}
	if m.staged.SnapID != at.SnapID {
		if m.staged.SnapID != "" && !at.Newer(m.staged) {
			return m.staged, false, 0, nil
		}
		m.staged, m.started, m.parts = at, now, map[int][]byte{}
	}
	m.parts[part] = payload
	return at, true, len(m.parts), nil
}
func (m *memState) StagedPart(snapID string, part int) ([]byte, error) {
	if snapID != m.staged.SnapID {
		return nil, nil
	}
	return m.parts[part], nil
}
func (m *memState) StagedStarted() (time.Time, error) { return m.started, nil }
func (m *memState) ClearStaged() error {
	m.staged, m.started, m.parts = Staged{}, time.Time{}, map[int][]byte{}
	return nil
}
func (m *memState) ClaimCommand(id string, at time.Time) (bool, error) {
	if m.fail != nil {
		return false, m.fail
	}
	dup := m.commands[id]
	m.commands[id] = true
	return dup, nil
}

// fakeClient stands for paho's client: every publish is kept, and
// acknowledged at once unless hold is set.
type fakeClient struct {
	mqtt.Client // not called
	mu          sync.Mutex
	open        bool
	sent        []published
	connects    int
	disconnects int
	subscribed  []string // filters, in the order asked (sorted per call)
	dropped     []string // unsubscribed
}

type published struct {
	topic   string
	payload []byte
}

func (f *fakeClient) Publish(topic string, qos byte, retained bool, payload any) mqtt.Token {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, published{topic, payload.([]byte)})
	return &mqtt.DummyToken{}
}
func (f *fakeClient) IsConnectionOpen() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.open }
func (f *fakeClient) Connect() mqtt.Token {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.connects++
	return &mqtt.DummyToken{}
}
func (f *fakeClient) Disconnect(uint) { f.mu.Lock(); defer f.mu.Unlock(); f.disconnects++ }
func (f *fakeClient) SubscribeMultiple(filters map[string]byte, _ mqtt.MessageHandler) mqtt.Token {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.subscribed = append(f.subscribed, slices.Sorted(maps.Keys(filters))...)
	return &mqtt.DummyToken{}
}
func (f *fakeClient) Unsubscribe(topics ...string) mqtt.Token {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dropped = append(f.dropped, topics...)
	return &mqtt.DummyToken{}
}

// on returns what was published on topic, and forgets it.
func (f *fakeClient) on(topic string) [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out [][]byte
	rest := f.sent[:0]
	for _, p := range f.sent {
		if p.topic == topic {
			out = append(out, p.payload)
		} else {
			rest = append(rest, p)
		}
	}
	f.sent = rest
	return out
}

// testLink is a link to a fake core and a fake client, connected, with a
// settable clock.
type testLink struct {
	*Link
	core   *fakeCore
	state  *memState
	client *fakeClient
	now    time.Time
}

func newTestLink(t *testing.T, core *fakeCore) *testLink {
	t.Helper()
	tl := &testLink{core: core, state: newMemState(), client: &fakeClient{open: true}, now: time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)}
	k, err := New(Config{Brokers: []string{"tcp://127.0.0.1:1"}, LockerID: "L1", InsecureUnsigned: true,
		State: tl.state, SnapshotTimeout: time.Hour, Now: func() time.Time { return tl.now }}, core)
	if err != nil {
		t.Fatal(err)
	}
	k.client = tl.client
	k.connected = true
	tl.Link = k
	return tl
}

// message builds a downlink message of typ with data.
func message(t *testing.T, typ, id string, exp *time.Time, data any) protocol.Message {
	t.Helper()
	raw, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	return protocol.Message{V: protocol.Version, Type: typ, ID: id, Locker: "L1", TS: time.Now(), Exp: exp, Data: raw}
}

// replies decodes the acks the link published.
func (tl *testLink) replies(t *testing.T) []protocol.Message {
	t.Helper()
	var out []protocol.Message
	for _, raw := range tl.client.on(tl.topics.UpAck()) {
		var m protocol.Message
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

var errStore = errors.New("store failing")
