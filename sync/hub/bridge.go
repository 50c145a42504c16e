package hub

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/lockerd/lockerd/sync/hub/circulation"
	"github.com/lockerd/lockerd/sync/protocol"
)

// The circulation bridge (sync/hub/circulation): its part of a store
// transaction, and the Hub's methods the API, the console and the
// command line call.

// bridgeLease is the name of the bridge's lease among replicas.
const bridgeLease = "sip2.bridge"

// bridgeTx is tx as the bridge's: its queue, the orders through
// orderPort, the alarm and webhook parts, and its lease in replica's name.
func bridgeTx(tx Tx, replica string) circulation.Tx {
	return circulation.Tx{Circ: tx.Circ, Orders: orderPort{tx.Orders}, Alarms: tx.Alarms, Hooks: tx.Webhooks,
		Lease: txLease{tx.Leases, bridgeLease, replica}}
}

// bridgeStore is the hub's store as the bridge's.
type bridgeStore struct{ h *Hub }

func (s bridgeStore) View(fn func(circulation.Tx) error) error {
	return s.h.store.View(func(tx Tx) error { return fn(bridgeTx(tx, s.h.cfg.Replica)) })
}

func (s bridgeStore) Update(fn func(circulation.Tx) error) error {
	return s.h.store.Update(func(tx Tx) error { return fn(bridgeTx(tx, s.h.cfg.Replica)) })
}

// orderPort is the core's orders as the bridge needs them.
type orderPort struct{ orders OrderTx }

func (p orderPort) OrderItems(lockerID, orderID string) (string, []protocol.Item, bool, error) {
	o, found, err := p.orders.Order(lockerID, orderID)
	if err != nil || !found {
		return "", nil, found, err
	}
	return o.Patron, o.Items, true, nil
}

func (p orderPort) SetLoan(lockerID, orderID string, loan circulation.Loan) error {
	o, found, err := p.orders.Order(lockerID, orderID)
	if err != nil || !found {
		return err
	}
	if i := slices.IndexFunc(o.Loans, func(l circulation.Loan) bool { return l.Item == loan.Item }); i >= 0 {
		o.Loans[i] = loan
	} else {
		o.Loans = append(o.Loans, loan)
	}
	return p.orders.PutOrder(o)
}

// txLease is a named lease of a replica, in a transaction.
type txLease struct {
	leases        LeaseTx
	name, replica string
}

func (l txLease) Claim(ttl time.Duration) (bool, error) {
	return l.leases.Claim(l.name, l.replica, ttl)
}
func (l txLease) Release() error { return l.leases.Release(l.name, l.replica) }

// WorkCirculation goes once through the circulation queue, as the bridge
// does every half second while Run serves (tests drive it step by step).
func (h *Hub) WorkCirculation(ctx context.Context) { h.circ.Work(ctx) }

// WorkCirculationAt is WorkCirculation with the time the watch of the
// library system takes for now (tests of its alarm).
func (h *Hub) WorkCirculationAt(ctx context.Context, now time.Time) { h.circ.WorkAt(ctx, now) }

// Circulation lists transactions by id.
func (h *Hub) Circulation(f circulation.CircFilter) ([]circulation.CircRec, error) {
	return h.circ.List(f)
}

// RetryCirc queues a refused transaction (or an exception) again.
func (h *Hub) RetryCirc(id uint64) (circulation.CircRec, error) { return h.circ.Retry(id) }

// ResolveCirc closes a refused transaction or an exception with a note.
func (h *Hub) ResolveCirc(id uint64, note string) (circulation.CircRec, error) {
	note = strings.TrimSpace(note)
	if note == "" || len(note) > 1000 || !printable(note) {
		return circulation.CircRec{}, errors.New("a note (1 to 1000 printable characters) says what was done")
	}
	return h.circ.Resolve(id, note)
}

// ILSStatus says whether the bridge can send now, and if not why.
func (h *Hub) ILSStatus() (circulation.ILSStatus, error) { return h.circ.Status() }

// ILSLoginRefused raises an alarm that the ILS refused the bridge's
// login (at most one every ten minutes while it goes on).
func (h *Hub) ILSLoginRefused(user, addr string) { h.circ.LoginRefused(user, addr) }

// Bridge is the circulation bridge (sync/hub/requests finds holds with it).
func (h *Hub) Bridge() *circulation.Bridge { return h.circ }
