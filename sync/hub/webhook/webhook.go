package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/lockerd/lockerd/sync/hub/egress"
)

// Webhooks tell the library's systems what happened: one event per POST,
// JSON, signed. Each delivery is queued in the hub's store in the
// transaction that records what it tells (an event stored, an alarm
// raised, a circulation exception), so none is lost across restarts and
// none is queued twice. One replica delivers (the lease "webhooks"),
// retrying with exponential back-off and jitter until the delivery's
// deadline; then it is dead, listed for redelivery by hand. Deliveries of
// one order go in order: a later one waits until the earlier is
// delivered or dead. At least once: the receiver deduplicates by the
// event id.

// Webhook event types.
const (
	HookOrderLoaded     = "order.loaded"
	HookPickupCompleted = "pickup.completed"
	HookOrderExpired    = "order.expired"
	HookItemReturned    = "item.returned"
	HookAlarm           = "alarm.raised"
	HookCirculation     = "circulation.exception"
	HookNoSpace         = "load.no_space"
	HookBinEmptied      = "return_bin.emptied" // the list of what was collected, for sorting
)

// HookTypes lists the event types a subscription may take.
var HookTypes = []string{HookOrderLoaded, HookPickupCompleted, HookOrderExpired, HookItemReturned, HookAlarm, HookCirculation, HookNoSpace, HookBinEmptied}

// Signature headers of a delivery.
const (
	HeaderSignature = "X-Lockerhub-Signature" // t=UNIX,v1=hex(HMAC-SHA256(secret, "UNIX." + body))
	HeaderEventID   = "X-Lockerhub-Event-Id"
	HeaderEventType = "X-Lockerhub-Event"
)

const (
	// LeaseName is the lease under which one replica delivers.
	LeaseName = "webhooks"
	// DefaultTimeout bounds one request; DefaultDeadline is how long a
	// delivery is retried.
	DefaultTimeout  = 10 * time.Second
	DefaultDeadline = 24 * time.Hour
	poll            = 500 * time.Millisecond
	maxBackoff      = 10 * time.Minute
	maxBody         = 64 << 10
)

// Sign is a delivery's signature header for body at ts.
func Sign(secret string, ts time.Time, body []byte) string {
	t := strconv.FormatInt(ts.Unix(), 10)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(t + "."))
	m.Write(body)
	return "t=" + t + ",v1=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a delivery's signature header against body and secret,
// and that it was made within tolerance of now (a replayed old request is
// refused). Receivers written in Go can call it; docs/central.md shows
// the same in Python.
func Verify(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sig == "" {
		return errors.New("signature header: want t=UNIX,v1=HEX")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("signature made %v from now: outside %v", d.Round(time.Second), tolerance)
	}
	want := Sign(secret, time.Unix(sec, 0), body)
	if !hmac.Equal([]byte(want), []byte("t="+ts+",v1="+sig)) {
		return errors.New("signature does not match")
	}
	return nil
}

// NewWebhook is a subscription asked for.
type NewWebhook struct {
	Name   string   `json:"name,omitempty"` // config subscriptions: the id is cfg-NAME
	URL    string   `json:"url"`
	Events []string `json:"events"`
	Secret string   `json:"secret"`
}

// Webhook is a subscription: the library's systems learn what happened
// at the lockers by an HTTP POST, one event per request, signed with its
// secret (HMAC-SHA256).
type Webhook struct {
	ID      string    `json:"id"`
	URL     string    `json:"url"`
	Events  []string  `json:"events"` // order.loaded, pickup.completed, order.expired, item.returned, alarm.raised, circulation.exception
	Secret  string    `json:"secret"` // shared with the receiver: kept to sign, never listed
	Source  string    `json:"source"` // config, api
	Created time.Time `json:"created"`
	Removed time.Time `json:"removed,omitzero"`
}

// Delivery is one event for one subscription, in the webhook queue.
type Delivery struct {
	ID       uint64          `json:"id"`
	Webhook  string          `json:"webhook"`
	EventID  string          `json:"event_id"` // the receiver deduplicates by it
	Type     string          `json:"type"`
	Order    string          `json:"order,omitempty"` // deliveries of one order go in order
	Payload  json.RawMessage `json:"payload"`
	Created  time.Time       `json:"created"`
	Deadline time.Time       `json:"deadline"` // retried until then, then dead
	NextAt   time.Time       `json:"next_at"`
	Attempts int             `json:"attempts"`
	State    string          `json:"state"` // pending, delivered, dead, cancelled
	Status   int             `json:"status,omitempty"`
	Error    string          `json:"error,omitempty"`
	Done     time.Time       `json:"done,omitzero"`
}

// Delivery states.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryDead      = "dead"      // gave up: listed for redelivery by hand
	DeliveryCancelled = "cancelled" // its subscription was removed
)

// Tx is the part of a store transaction this package needs: the
// subscriptions, by id (removed ones kept, marked), and the delivery
// queue. AddDelivery numbers d; PutDelivery writes a numbered one's new
// state; PendingDeliveries lists the pending ones by id (at most limit;
// 0: all); Deliveries lists all after id after.
type Tx interface {
	PutWebhook(w Webhook) error
	Webhooks() ([]Webhook, error)
	AddDelivery(d Delivery) (Delivery, error)
	PutDelivery(d Delivery) error
	Delivery(id uint64) (d Delivery, found bool, err error)
	PendingDeliveries(limit int) ([]Delivery, error)
	Deliveries(after uint64, limit int) ([]Delivery, error)
}

// Store runs transactions over this package's records.
type Store interface {
	View(fn func(Tx) error) error
	Update(fn func(Tx) error) error
}

// Lease is the delivery worker's lease among replicas: held, it is this
// replica's to deliver until ttl from now.
type Lease interface {
	Claim(ttl time.Duration) (held bool, err error)
	Release() error
}

// Config is a Service's.
type Config struct {
	Store  Store
	Lease  Lease
	Egress egress.Policy // what the worker may call
	// Deadline: how long a delivery is retried (0: DefaultDeadline);
	// Timeout: one request (0: DefaultTimeout); LeaseTTL: how long the
	// lease stays with a replica that stopped renewing it.
	Deadline, Timeout, LeaseTTL time.Duration
	Log                         *slog.Logger
}

// Service is the webhooks of one hub replica.
type Service struct {
	cfg    Config
	client *http.Client
	log    *slog.Logger
}

// New makes a Service.
func New(cfg Config) *Service {
	if cfg.Deadline <= 0 {
		cfg.Deadline = DefaultDeadline
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Service{cfg: cfg, client: cfg.Egress.Client(cfg.Timeout), log: cfg.Log.With("component", "webhooks")}
}
