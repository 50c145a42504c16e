package circulation

import (
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/lockerd/lockerd/sync/hub/alarm"
	"github.com/lockerd/lockerd/sync/hub/webhook"
	"github.com/lockerd/lockerd/sync/protocol"
)

// CircRec is one transaction for the library's system (the ILS), queued
// from a locker's event: a checkout when a reader took an order's items,
// a checkin when an item came back (or was loaded, with checkin_on_load),
// a patron check of an order made while the ILS could not be asked.
type CircRec struct {
	ID      uint64    `json:"id"`
	Event   string    `json:"event,omitempty"` // the locker event's id
	Locker  string    `json:"locker"`
	Order   string    `json:"order,omitempty"`
	Kind    string    `json:"kind"` // checkout, checkin, patron
	Patron  string    `json:"patron,omitempty"`
	Item    string    `json:"item,omitempty"`
	Title   string    `json:"title,omitempty"`
	EventAt time.Time `json:"event_time"`      // when it happened at the locker
	Hist    bool      `json:"hist,omitempty"`  // recorded while the locker was offline
	Visit   string    `json:"visit,omitempty"` // a hold scan's staff visit
	By      string    `json:"by,omitempty"`    // a hold scan's staff badge
	Queued  time.Time `json:"queued"`          // when the hub queued it

	State     string    `json:"state"` // queued, sending, done, refused, exception, resolved
	Attempts  int       `json:"attempts"`
	LastError string    `json:"last_error,omitempty"`
	LastTry   time.Time `json:"last_try,omitzero"`
	NoBlock   bool      `json:"no_block,omitempty"` // sent with no-block Y
	// Uncertain: sent, and whether the ILS acted on it is not known (no
	// reply): a checkout is looked up (17, 63) before it is sent again.
	Uncertain bool `json:"uncertain,omitempty"`

	// The ILS's answer.
	OK        bool      `json:"ok,omitempty"`
	Due       string    `json:"due,omitempty"`        // AH, as the ILS wrote it
	Alert     bool      `json:"alert,omitempty"`      // a checkin the staff must sort
	AlertType string    `json:"alert_type,omitempty"` // CV
	Screen    string    `json:"screen,omitempty"`     // AF
	Done      time.Time `json:"done,omitzero"`
	Note      string    `json:"note,omitempty"` // the staff's, on resolve
}

// Circulation transaction kinds and states.
const (
	CircCheckout = "checkout"
	CircCheckin  = "checkin"
	CircPatron   = "patron"
	// CircHold: staff scanned an item with no order at a locker; the
	// library system was asked whose hold it is (FindHold). Queued when
	// the locker was offline, recorded done or refused at once otherwise.
	CircHold = "hold"

	CircQueued    = "queued"
	CircSending   = "sending"
	CircDone      = "done"
	CircRefused   = "refused"   // the ILS said no (ok 0): a person decides
	CircException = "exception" // a person must act: an alert, or no reply after max attempts
	CircResolved  = "resolved"  // a refusal or exception a person dealt with
)

// Open reports whether c still needs the bridge (queued, sending) or a
// person (refused, exception).
func (c CircRec) Open() bool {
	return c.State == CircQueued || c.State == CircSending || c.State == CircRefused || c.State == CircException
}

// Loan is what the ILS answered to an order item's checkout.
type Loan struct {
	Item   string `json:"item"`
	OK     bool   `json:"ok"`
	Due    string `json:"due,omitempty"`
	Screen string `json:"screen,omitempty"`
	Circ   uint64 `json:"circ"` // its transaction
}

// Tx is the part of a store transaction the bridge needs.
type Tx struct {
	Circ   CircTx
	Orders Orders
	Alarms alarm.Tx
	Hooks  webhook.Tx
	Lease  Lease // the bridge's lease among replicas, in this transaction
}

// CircTx is the queue. AddCirc numbers c (its ID, from 1, in the order
// added); PutCirc writes a numbered one's new state. Circs lists them
// after id after, by id (at most limit; 0: all); OpenCircs those still
// open (CircRec.Open), by id.
type CircTx interface {
	AddCirc(c CircRec) (CircRec, error)
	PutCirc(c CircRec) error
	Circ(id uint64) (c CircRec, found bool, err error)
	Circs(after uint64, limit int) ([]CircRec, error)
	OpenCircs(limit int) ([]CircRec, error)
}

// Orders is what the bridge needs of the core's orders.
type Orders interface {
	// OrderItems is an order's reader (library card) and items; found is
	// false when the locker has no such order.
	OrderItems(lockerID, orderID string) (patron string, items []protocol.Item, found bool, err error)
	// SetLoan keeps the ILS's answer to the checkout of one of an order's
	// items with the order (replacing the one of the same item).
	SetLoan(lockerID, orderID string, loan Loan) error
}

// Lease is the bridge's lease among replicas: held, the queue is this
// replica's to work until ttl from now.
type Lease interface {
	Claim(ttl time.Duration) (held bool, err error)
	Release() error
}

// Store runs transactions over the bridge's part of a store.
type Store interface {
	View(fn func(Tx) error) error
	Update(fn func(Tx) error) error
}

// Metrics counts what the bridge did (the hub's Prometheus metrics).
type Metrics interface {
	Outcome(c CircRec)
	RTT(kind string, d time.Duration, err error)
}

// Config is a Bridge's: Circulation (what lockerhub's sip2 section
// gives) and what the hub wires in.
type Config struct {
	Circulation
	Store    Store
	LeaseTTL time.Duration // how long the lease stays with a replica that stopped renewing it
	// Raise raises an alarm in tx and tells the webhooks of a new one
	// (the hub's rule for every alarm).
	Raise   func(alarms alarm.Tx, hooks webhook.Tx, a alarm.Alarm) error
	Hooks   *webhook.Service
	Metrics Metrics
	Log     *slog.Logger
}

// Bridge is the circulation bridge of one hub replica.
type Bridge struct {
	cfg          Config
	log          *slog.Logger
	ils          ilsWatch
	loginAlarmAt atomic.Int64 // when the last login alarm was raised, unix ns
}

// New makes a Bridge. Without an ILS it queues nothing and works
// nothing, and lists what its store holds.
func New(cfg Config) *Bridge {
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 5
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Bridge{cfg: cfg, log: cfg.Log.With("component", "circulation")}
}

// raiseCentral raises an alarm of the central itself (no locker).
func (b *Bridge) raiseCentral(tx Tx, typ, detail string) error {
	return b.cfg.Raise(tx.Alarms, tx.Hooks, alarm.Alarm{Type: typ, Detail: detail})
}

const (
	// loginAlarmEvery spaces the alarms of a login the ILS refuses.
	loginAlarmEvery = 10 * time.Minute
	// maxList bounds one page of List.
	maxList = 1000
	// MaxBarcodeLen bounds an item's barcode sent to the ILS.
	MaxBarcodeLen = 64
)
