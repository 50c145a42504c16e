package hub

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/locker/fanout"
	"github.com/lockerd/lockerd/sync/hub/alarm"
	"github.com/lockerd/lockerd/sync/hub/auth"
	"github.com/lockerd/lockerd/sync/hub/circulation"
	"github.com/lockerd/lockerd/sync/hub/egress"
	"github.com/lockerd/lockerd/sync/hub/fleet"
	"github.com/lockerd/lockerd/sync/hub/hubmetrics"
	"github.com/lockerd/lockerd/sync/hub/notice"
	"github.com/lockerd/lockerd/sync/hub/partition"
	"github.com/lockerd/lockerd/sync/hub/stock"
	"github.com/lockerd/lockerd/sync/hub/webhook"
	"github.com/lockerd/lockerd/sync/pahostore"
	"github.com/lockerd/lockerd/sync/protocol"
)

// Config of the hub.
type Config struct {
	Brokers    []string
	Prefix     string
	ClientID   string // also its identity on the embedded broker
	Username   string
	Password   string
	TLS        *tls.Config
	SigningKey ed25519.PrivateKey
	// ReleaseKey, when set, is the public key software releases are
	// signed with where it is kept (lockerhub release sign): the hub
	// then signs no manifest itself, and takes only binaries with theirs.
	ReleaseKey ed25519.PublicKey
	PickupKey  locker.CodeKey // to hash the pickup codes it creates
	// Store is the hub's store (it closes it): sync/hub/hubbolt's, or
	// sync/hub/pgstore's.
	Store Store
	// Replica names this process among the hub replicas sharing a store
	// (leases are held in its name); default ClientID.
	Replica string
	// LeaseTTL is how long the lease of work done once among replicas
	// lasts unrenewed (default 15s): a replica that dies leaves that work
	// to another within it. ResendAfter is how long an order change goes
	// unacknowledged by an online locker before it is sent again
	// (default 30s).
	LeaseTTL    time.Duration
	ResendAfter time.Duration
	CmdTTL      time.Duration // exp of remote commands
	// OfflineAfter: a locker not seen for this long raises locker.offline
	// (default 10 min).
	OfflineAfter time.Duration
	// Webhooks are the config's subscriptions (those made through the API
	// are kept in the store); WebhookDeadline is how long a delivery is
	// retried (default 24h).
	Webhooks        []webhook.NewWebhook
	WebhookDeadline time.Duration
	WebhookTimeout  time.Duration // one request (default 10s)
	// EgressAllow lists the non-public addresses the hub may call (a
	// webhook receiver on the library's network); every other loopback,
	// private, link-local… address is refused at dial time (egress).
	EgressAllow []netip.Prefix
	// Circulation is the bridge to the library's system (SIP2).
	Circulation circulation.Circulation
	// Notices: how readers are told of their orders (sync/hub/notice);
	// the hub sets its store, lease and log. No channel: no notice.
	Notices notice.Config
	// Provisioning of new cabinets (sync/hub/fleet).
	Provisioning fleet.Provisioning
	// ReleasesDir keeps the releases' binaries ("" : no releases).
	ReleasesDir string
	// SubscribeOwned: the replica subscribes to the event, ack and
	// telemetry topics of the lockers in the partitions it holds, one
	// subscription each, instead of to every locker's (status and card
	// requests stay wildcards): a replica then receives only its share.
	// For a broker that takes thousands of subscriptions per session at
	// little cost (Mosquitto); on NATS each would be a JetStream consumer.
	SubscribeOwned bool
	// Lockers are the lockers this hub serves (more can be added, see
	// AddLocker); messages from any other id are dropped.
	Lockers []string
	// Requests answer lockers' questions, by type
	// (sync/hub/requests answers req.patron and req.hold), on the leader:
	// each answers with Reply. A request of a type not here is dropped.
	Requests map[string]func(lockerID string, m protocol.Message)
	Log      *slog.Logger
}

// Hub is the central library's side of the protocol.
type Hub struct {
	cfg       Config
	store     Store
	cl        mqtt.Client
	log       *slog.Logger
	msgs      atomic.Uint64  // message ids made
	received  atomic.Uint64  // events from the broker
	others    atomic.Uint64  // of them, another replica's lockers' (dropped)
	dropped   atomic.Uint64  // uplink messages dropped: oversized, or the inbox full
	pubMu     sync.Mutex     // order changes: commit and publish in rev order (see update)
	strangers alarm.Throttle // unknown ids heard from: alarmed once each, 20 an hour
	stopping  atomic.Bool    // its own offline status is on its way: not answered
	// subscribed is set once the connection's subscriptions are granted
	// (a connection that is open may not receive anything yet) and
	// cleared when the connection is lost.
	subscribed atomic.Bool
	leader     atomic.Bool     // holds the leader lease (replicas.go)
	shares     partition.Set   // the partitions of lockers this replica stores (shares.go)
	ownedSubs  *partition.Subs // with SubscribeOwned: the per-locker subscriptions made
	sharesHeld int             // how many, when last logged (the run loop's)
	heardAt    atomic.Int64    // when its own heartbeat last came back (or it connected), unix ns
	metrics    *hubmetrics.Metrics
	notices    *notice.Service
	stock      *stock.Service
	reminded   time.Time // the leader's last look for orders to remind of
	hooks      *webhook.Service
	auth       *auth.Service       // tokens, audit, users: built once (every API request asks it)
	circ       *circulation.Bridge // the SIP2 bridge (sync/hub/circulation)
	fleet      *fleet.Service      // provisioning, credentials, configurations, releases (sync/hub/fleet)

	mu      sync.Mutex
	inbox   []inMsg
	wakeC   chan struct{}
	local   *fanout.Fanout[protocol.Event] // events as they are stored (events tail)
	ackWait map[ackKey]int                 // lockers' stores whose ack.evt is due: events stored since the last
	lastAck map[ackKey]time.Time
}

type inMsg struct {
	topic   string
	payload []byte
}

// New opens the hub's store; Run connects.
func New(cfg Config) (*Hub, error) {
	if cfg.Prefix == "" {
		cfg.Prefix = protocol.DefaultPrefix
	}
	if cfg.ClientID == "" {
		cfg.ClientID = "lockerhub"
	}
	if cfg.CmdTTL <= 0 {
		cfg.CmdTTL = time.Minute
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if len(cfg.SigningKey) != ed25519.PrivateKeySize {
		return nil, errors.New("hub: signing key required")
	}
	if cfg.Replica == "" {
		cfg.Replica = cfg.ClientID
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 15 * time.Second
	}
	if cfg.ResendAfter <= 0 {
		cfg.ResendAfter = 30 * time.Second
	}
	if cfg.OfflineAfter <= 0 {
		cfg.OfflineAfter = 10 * time.Minute
	}
	if cfg.Circulation.MaxAttempts <= 0 {
		cfg.Circulation.MaxAttempts = 5
	}
	store := cfg.Store
	if store == nil {
		return nil, errors.New("hub: no store (hubbolt.Open or pgstore.Open)")
	}
	h := &Hub{cfg: cfg, store: store, log: cfg.Log.With("component", "hub"), wakeC: make(chan struct{}, 1), ownedSubs: partition.NewSubs(),
		local: fanout.New[protocol.Event](256), ackWait: map[ackKey]int{}, lastAck: map[ackKey]time.Time{}}
	h.metrics = hubmetrics.New(metricsSource{h})
	h.hooks = webhook.New(webhook.Config{Store: Capability(store, func(tx Tx) webhook.Tx { return tx.Webhooks }),
		Lease: namedLease{h, webhook.LeaseName}, Egress: egress.Policy{Allow: cfg.EgressAllow}, // every URL the hub calls goes through egress
		Deadline: cfg.WebhookDeadline, Timeout: cfg.WebhookTimeout, LeaseTTL: cfg.LeaseTTL, Log: cfg.Log})
	nc := cfg.Notices
	nc.Store, nc.Lease, nc.LeaseTTL, nc.Log = Capability(store, func(tx Tx) notice.Tx { return tx.Notices }), namedLease{h, notice.LeaseName}, cfg.LeaseTTL, cfg.Log
	h.notices = notice.New(nc)
	h.notices.OnSent(h.metrics.Notice)
	h.stock = stock.New(Capability(store, func(tx Tx) stock.Tx { return tx.Stock }))
	h.auth = auth.New(Capability(store, func(tx Tx) auth.Tx { return tx.Auth }), cfg.Log)
	h.circ = circulation.New(circulation.Config{Circulation: cfg.Circulation, Store: bridgeStore{h}, LeaseTTL: cfg.LeaseTTL,
		Raise: h.raiseParts, Hooks: h.hooks, Metrics: h.metrics, Log: cfg.Log})
	h.fleet = fleet.New(fleet.Config{Store: fleetStore{h}, Lockers: fleetLockers{h}, Prefix: cfg.Prefix, Brokers: cfg.Brokers,
		SigningKey: cfg.SigningKey, ReleaseKey: cfg.ReleaseKey, PickupKey: cfg.PickupKey, Provisioning: cfg.Provisioning,
		ReleasesDir: cfg.ReleasesDir, Raise: h.raiseParts, Audit: h.auth.Audit, Log: cfg.Log})
	if err := h.hooks.SyncConfig(cfg.Webhooks); err != nil {
		store.Close()
		return nil, fmt.Errorf("hub: %w", err)
	}
	for _, id := range cfg.Lockers {
		if err := h.AddLocker(id, "config"); err != nil {
			store.Close()
			return nil, fmt.Errorf("hub: configured locker: %w", err)
		}
	}
	h.newClient()
	return h, nil
}

// Close closes the store (after Run has returned).
func (h *Hub) Close() error { return h.store.Close() }

func (h *Hub) topics(lockerID string) protocol.Topics {
	return protocol.Topics{Prefix: h.cfg.Prefix, Locker: lockerID}
}

func (h *Hub) centralStatus(online bool) []byte {
	raw, _ := json.Marshal(protocol.CentralStatus{Online: online, TS: time.Now().UTC()})
	return raw
}

// newClient builds the hub's MQTT client; routes are added before it
// connects, so that messages queued for its session are not missed.
func (h *Hub) newClient() mqtt.Client {
	store := pahostore.New()
	statusTopic := h.cfg.Prefix + "/central/status"
	o := mqtt.NewClientOptions()
	for _, b := range h.cfg.Brokers {
		o.AddBroker(b)
	}
	o.SetClientID(h.cfg.ClientID).SetCleanSession(false).SetAutoReconnect(true).SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).SetMaxReconnectInterval(10*time.Second).
		SetKeepAlive(30*time.Second).SetOrderMatters(true).
		SetStore(store). // paho's MemoryStore, minus its resume races (see pahostore)
		SetConnectionAttemptHandler(store.AttemptHandler).
		SetBinaryWill(statusTopic, h.centralStatus(false), 1, true).
		SetOnConnectHandler(func(c mqtt.Client) {
			p := h.cfg.Prefix + "/+/"
			subs := map[string]byte{p + "status": 1, p + "up/req": 1, statusTopic: 1, h.heartbeatTopic(): 1}
			if !h.cfg.SubscribeOwned {
				subs[p+"up/evt"], subs[p+"up/ack"], subs[p+"up/tele"] = 1, 1, 0
			} else {
				h.ownedSubs.Reset() // subscribed again from scratch, by its own goroutine
				defer h.ownedSubs.Wake()
			}
			tok := c.SubscribeMultiple(subs, nil)
			if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
				// Not subscribed: its own heartbeat will not come back
				// either, and the heartbeat check reconnects.
				h.log.Error("hub could not subscribe", "err", tok.Error())
			} else {
				h.subscribed.Store(true)
			}
			store.WaitResumed(2 * time.Second) // (see pahostore.MarkConnect)
			c.Publish(statusTopic, 1, true, h.centralStatus(true))
			h.log.Info("hub connected to broker")
			h.heardAt.Store(time.Now().UnixNano()) // the heartbeat check starts now (see heartbeat)
		}).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			h.subscribed.Store(false)
			h.log.Warn("hub lost broker", "err", err)
		})
	if h.cfg.Username != "" {
		o.SetUsername(h.cfg.Username).SetPassword(h.cfg.Password)
	}
	if h.cfg.TLS != nil {
		o.SetTLSConfig(h.cfg.TLS)
	}
	h.cl = mqtt.NewClient(o)
	handler := func(_ mqtt.Client, m mqtt.Message) {
		// Bounded: an oversized message is never copied, and a full inbox
		// drops what comes (an event not stored is not acked, so its
		// locker sends it again).
		if len(m.Payload()) > maxUplink {
			h.dropped.Add(1)
			h.log.Warn("uplink message over the size limit dropped", "topic", m.Topic(), "bytes", len(m.Payload()), "limit", maxUplink)
			return
		}
		// Another replica's locker: dropped before it is copied. A card
		// request is the leader's, whoever owns the locker.
		isEvent := strings.HasSuffix(m.Topic(), "/up/evt")
		if isEvent {
			h.received.Add(1)
		}
		if id := lockerOfTopic(h.cfg.Prefix, m.Topic()); !h.shares.Owns(id) && !strings.HasSuffix(m.Topic(), "/up/req") {
			if isEvent {
				h.others.Add(1)
			}
			return
		}
		h.mu.Lock()
		if len(h.inbox) >= maxInbox {
			h.mu.Unlock()
			if h.dropped.Add(1)%1000 == 1 {
				h.log.Warn("hub inbox full: uplink messages dropped (lockers send unacked events again)", "dropped", h.dropped.Load())
			}
			return
		}
		h.inbox = append(h.inbox, inMsg{m.Topic(), append([]byte(nil), m.Payload()...)})
		h.mu.Unlock()
		h.wake()
	}
	for _, t := range []string{"status", "up/evt", "up/ack", "up/tele", "up/req"} {
		h.cl.AddRoute(h.cfg.Prefix+"/+/"+t, handler)
	}
	h.cl.AddRoute(h.heartbeatTopic(), func(mqtt.Client, mqtt.Message) { h.heardAt.Store(time.Now().UnixNano()) })
	h.cl.AddRoute(statusTopic, func(c mqtt.Client, m mqtt.Message) {
		// Another replica's will (it died) says the central is offline
		// while this one serves: say it is online again, or lockers would
		// believe no central hears them.
		var cs protocol.CentralStatus
		if json.Unmarshal(m.Payload(), &cs) == nil && !cs.Online && !h.stopping.Load() && c.IsConnectionOpen() {
			c.Publish(statusTopic, 1, true, h.centralStatus(true))
			h.log.Info("central status said offline (another replica's will): online again")
		}
	})
	return h.cl
}

// Run connects to the broker and serves until ctx ends.
func (h *Hub) Run(ctx context.Context) error {
	statusTopic := h.cfg.Prefix + "/central/status"
	h.Rebalance() // its share of the lockers, before it hears them
	h.cl.Connect()
	{
		wctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { h.hooks.Run(wctx); close(done) }()
		defer func() { cancel(); <-done }()
	}
	if h.notices.Enabled() {
		nctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { h.notices.Run(nctx); close(done) }()
		defer func() { cancel(); <-done }()
	}
	if h.cfg.Circulation.ILS != nil {
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { h.circ.Run(cctx); close(done) }()
		defer func() { cancel(); <-done }()
	}
	if h.cfg.SubscribeOwned {
		// Its own goroutine: subscribing to thousands of topics takes
		// round trips the drain loop must not wait for.
		sctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				select {
				case <-sctx.Done():
					return
				case <-h.ownedSubs.C():
					h.subscribeOwned()
				}
			}
		}()
		defer func() { cancel(); <-done }()
	}
	tick := time.NewTicker(h.cfg.LeaseTTL / 3)
	defer tick.Stop()
	h.lead() // at once: the leader answers card checks (cards.go)
	for {
		// A short gathering window: events that arrive together are
		// stored in one transaction (one sync to disk) instead of many.
		time.Sleep(batchWindow)
		h.drain()
		select {
		case <-ctx.Done():
			h.stopping.Store(true)
			h.release()
			h.unshare()
			h.cl.Publish(statusTopic, 1, true, h.centralStatus(false)).WaitTimeout(2 * time.Second)
			h.cl.Disconnect(300)
			return nil
		case <-tick.C:
			h.heartbeat()
			h.Rebalance()
			h.ownedSubs.Wake()
			if h.lead() {
				h.resendStale()
				h.sweepOffline(time.Now())
				h.fleet.Periodic(time.Now())
				h.Remind(time.Now())
			}
		case <-h.wakeC:
		}
	}
}

// Connected reports whether the hub's MQTT client is connected and its
// subscriptions are in place (what it is sent from now on reaches it).
func (h *Hub) Connected() bool {
	return h.cl != nil && h.subscribed.Load() && h.cl.IsConnectionOpen()
}

// drain handles every queued message, then sends the ack.evt that are due.
func (h *Hub) drain() {
	for {
		h.mu.Lock()
		batch := h.inbox
		h.inbox = nil
		h.mu.Unlock()
		if len(batch) == 0 {
			break
		}
		h.handleBatch(batch)
	}
	// ack.evt at most every ackEvery per locker: during a replay of
	// thousands of events one ack per batch would keep the locker busy
	// deleting rows one small transaction at a time.
	now := time.Now()
	h.mu.Lock()
	var due []ackKey
	later := false
	for id, n := range h.ackWait {
		if now.Sub(h.lastAck[id]) >= ackEvery || n >= ackEarly {
			due = append(due, id)
			delete(h.ackWait, id)
			h.lastAck[id] = now
		} else {
			later = true
		}
	}
	h.mu.Unlock()
	h.sendAckEvts(due)
	if later {
		time.AfterFunc(ackEvery, h.wake)
	}
}

// handleBatch handles messages in arrival order. Events are stored in one
// transaction per run of them: one sync to disk for many events, not one
// each.
func (h *Hub) handleBatch(batch []inMsg) {
	var events []inMsg
	for _, m := range batch {
		if strings.HasSuffix(m.topic, "/up/evt") {
			events = append(events, m)
			continue
		}
		h.storeEvents(events)
		events = nil
		h.handle(m.topic, m.payload)
	}
	h.storeEvents(events)
}

// Bounds of the uplink: an event, a status or telemetry is a few hundred
// bytes; the inbox holds what arrives between two drains.
const (
	maxUplink = 256 << 10
	maxInbox  = 50_000
)

// batchWindow is how long the hub gathers messages before storing them.
const batchWindow = 2 * time.Millisecond

// subscriptionCheck is how long the hub goes without its own heartbeat
// coming back before it takes its subscriptions for dead.
const subscriptionCheck = 20 * time.Second

func (h *Hub) heartbeatTopic() string { return h.cfg.Prefix + "/central/heartbeat/" + h.cfg.Replica }

// heartbeat publishes to the hub's own heartbeat topic, which it
// subscribes to; when nothing has come back for subscriptionCheck, its
// subscriptions give nothing — seen on a NATS cluster after a node's
// death, for a subscription made while its streams elected new leaders,
// and for sessions the broker lost under load — and only a new connection
// mends them. Lockers never see this topic.
func (h *Hub) heartbeat() {
	if h.cl == nil || !h.cl.IsConnectionOpen() || h.stopping.Load() {
		return
	}
	if since := time.Since(time.Unix(0, h.heardAt.Load())); since > subscriptionCheck {
		h.log.Warn("hub's subscriptions give nothing (its own heartbeat never came back): reconnecting", "silent_for", since.Round(time.Second))
		h.heardAt.Store(time.Now().UnixNano())
		h.cl.Disconnect(100)
		h.cl.Connect()
		return
	}
	h.cl.Publish(h.heartbeatTopic(), 1, false, []byte(`{}`))
}

// ackEvery spaces a locker's ack.evt messages; ackEarly events stored
// since the last send one at once: a locker has at most its ack window
// (1000 events by default) out beyond its last ack, and a replay waiting
// for the timer would go at 1000 events per 100 ms at best.
const (
	ackEvery = 100 * time.Millisecond
	ackEarly = 250
)

func (h *Hub) wake() {
	select {
	case h.wakeC <- struct{}{}:
	default:
	}
}

// HandleUplink handles one message from a locker as if it came from the
// broker, at once (the conformance suite drives a hub on each store this
// way, and a replica with it, without a broker's timing).
func (h *Hub) HandleUplink(topic string, payload []byte) { h.handle(topic, payload) }

// Uplink is one message from a locker.
type Uplink struct {
	Topic   string
	Payload []byte
}

// HandleUplinks handles messages as if they arrived in one gathering
// window: events in one transaction, as the broker's batches are (the
// ingest benchmark measures a store this way).
func (h *Hub) HandleUplinks(msgs []Uplink) {
	batch := make([]inMsg, len(msgs))
	for i, m := range msgs {
		batch[i] = inMsg{m.Topic, m.Payload}
	}
	h.handleBatch(batch)
}

func (h *Hub) handle(topic string, payload []byte) {
	rest, ok := strings.CutPrefix(topic, h.cfg.Prefix+"/")
	if !ok {
		return
	}
	id, kind, ok := strings.Cut(rest, "/")
	if !ok || id == "central" {
		return
	}
	if !h.isKnown(id) {
		h.stranger(id, kind)
		return
	}
	var err error
	switch kind {
	case "status":
		err = h.onStatus(id, payload)
	case "up/evt":
		h.storeEvents([]inMsg{{topic, payload}})
	case "up/ack":
		err = h.onAck(id, payload)
	case "up/req":
		h.onRequest(id, payload)
	case "up/tele":
		err = h.store.Update(func(tx Tx) error {
			li, err := tx.Lockers.Locker(id)
			if err != nil {
				return err
			}
			li.Telemetry = append(json.RawMessage(nil), payload...)
			return tx.Lockers.PutLocker(li)
		})
	}
	if err != nil {
		h.log.Warn("message from locker refused", "locker", id, "topic", kind, "err", err)
	}
}

func (h *Hub) onStatus(id string, payload []byte) error {
	if len(payload) == 0 {
		return nil // retained status cleared
	}
	var st protocol.Status
	if err := json.Unmarshal(payload, &st); err != nil {
		return err
	}
	if err := checkStoreID(st.Store); err != nil {
		return err
	}
	var resend []PendingMsg
	var acks []string
	err := h.store.Update(func(tx Tx) error {
		acks, resend = nil, nil
		li, err := tx.Lockers.Locker(id)
		if err != nil {
			return err
		}
		if !st.Online && (st.Boot < li.Boot || st.Instance != "" && li.Instance != "" && st.Instance != li.Instance) {
			return nil // an old will: a newer run is already known
		}
		now := time.Now().UTC()
		li.Online, li.Boot, li.Version, li.LastSeen = st.Online, st.Boot, st.Version, now
		if st.Online {
			if err := h.clear(tx, id, alarm.Offline, "", "back online"); err != nil {
				return err
			}
			if err := h.noteInstance(tx, &li, st.Instance, now); err != nil {
				return err
			}
			rec, fresh, err := h.storeRec(tx, &li, st.Store, now)
			if err != nil {
				return err
			}
			if st.Store != li.Store && (li.Store != "" || li.Epochs > 1) {
				if err := h.alarm(tx, id, alarm.StoreReplaced, fmt.Sprintf(
					"store %q replaced by %q (an SD card swapped or wiped?): its events count from seq %d; the old store's events stay here", li.Store, st.Store, st.OutboxTail)); err != nil {
					return err
				}
			}
			li.Store = st.Store
			// Events before the tail were acked to an earlier central
			// store, and are gone from the locker. Believed only for a
			// store met for the first time: a known store's mark moves
			// only over events stored here.
			if tail := st.OutboxTail; tail > 1 && tail-1 > rec.Acked {
				if fresh {
					rec.Base, rec.Acked = tail-1, tail-1
					h.log.Warn("store met for the first time: its events before the outbox tail were acked elsewhere", "locker", id, "store", st.Store, "tail", tail)
				} else if err := h.alarm(tx, id, alarm.TailAhead, fmt.Sprintf(
					"store %q reports events up to %d acknowledged, this hub has stored them up to %d: not believed", st.Store, tail-1, rec.Acked)); err != nil {
					return err
				}
			}
			if err := tx.Lockers.PutStoreRec(id, rec); err != nil {
				return err
			}
			li.Acked = rec.Acked
			li.OrdersRev, li.OutboxHead = st.OrdersRev, st.OutboxHead
			// Every change not acknowledged goes again, those with a rev
			// below the locker's too: orders_rev is the highest rev
			// applied, and with several replicas publishing, a lower one
			// may be the one lost. The locker skips what it has (stale)
			// and acknowledges each by its id.
			resend, err = tx.Orders.PrunePending(id, 0)
			if err != nil {
				return err
			}
			// Every replica hears the birth; one sends the changes again.
			// Should it die first, the leader's sweep sends them later.
			if len(resend) > 0 {
				if mine, err := tx.Leases.Claim("resend/"+id, h.cfg.Replica, resendClaim); err != nil {
					return err
				} else if !mine {
					resend = nil
				}
			}
			acks = append(acks, st.Store)
		}
		return tx.Lockers.PutLocker(li)
	})
	if err != nil {
		return err
	}
	h.log.Info("locker status", "locker", id, "online", st.Online, "boot", st.Boot, "store", st.Store, "orders_rev", st.OrdersRev, "resend", len(resend))
	for _, p := range resend {
		h.cl.Publish(p.Topic, 1, false, h.signedNow(p))
	}
	for _, store := range acks {
		h.markAck(id, store)
	}
	return nil
}

// isKnown reports whether the hub serves locker id.
func (h *Hub) isKnown(id string) bool {
	ok := false
	_ = h.store.View(func(tx Tx) error {
		var err error
		ok, err = tx.Lockers.Known(id)
		return err
	})
	return ok
}

// Bounds of the events the hub takes.
const (
	maxEventBytes = 16 << 10  // an event is a few hundred bytes
	maxSeqAhead   = 1_000_000 // beyond a store's mark and last reported head
	maxTSAhead    = 366 * 24 * time.Hour
)

// checkEvent decodes and checks one up/evt payload from locker id: its
// size, ids, type, store identity and time. (A seq far beyond the store's
// mark is refused where the mark is known, in storeEvents.) A locker's
// clock may be wrong — 1970 on a Pi without an RTC — so only a time
// beyond any plausible clock (a year ahead) is refused.
func checkEvent(id string, payload []byte, now time.Time) (protocol.Event, error) {
	var e protocol.Event
	if len(payload) > maxEventBytes {
		return e, fmt.Errorf("event of %d bytes is over the bound of %d", len(payload), maxEventBytes)
	}
	if err := json.Unmarshal(payload, &e); err != nil {
		return e, err
	}
	switch {
	case e.Locker != id || e.Seq == 0 || e.ID != protocol.EventID(id, e.Store, e.Seq):
		return e, fmt.Errorf("event %q on %s's topic: locker/store/id/seq disagree", e.ID, id)
	case checkStoreID(e.Store) != nil:
		return e, checkStoreID(e.Store)
	case !eventTypeRe.MatchString(e.Type):
		return e, fmt.Errorf("event type %q", e.Type)
	case e.TS.After(now.Add(maxTSAhead)):
		return e, fmt.Errorf("event time %s is more than a year ahead", e.TS.Format(time.RFC3339))
	}
	return e, nil
}

var eventTypeRe = regexp.MustCompile(`^[a-z][a-z_]{0,31}(\.[a-z_]{1,32}){0,2}$`)

// checkStoreID bounds a store identity from the wire.
func checkStoreID(s string) error {
	if len(s) > 64 || strings.ContainsAny(s, "\x00/+#- ") {
		return fmt.Errorf("bad store identity %q", s)
	}
	return nil
}

// storeRec returns the record of a locker's store, made (with the next
// epoch) if the hub meets it for the first time (fresh).
func (h *Hub) storeRec(tx Tx, li *LockerInfo, store string, now time.Time) (rec StoreRec, fresh bool, err error) {
	rec, found, err := tx.Lockers.StoreRec(li.ID, store)
	if err != nil {
		return rec, false, err
	}
	if !found {
		li.Epochs++
		rec = StoreRec{Store: store, Epoch: li.Epochs, FirstSeen: now}
	}
	rec.LastSeen = now
	return rec, !found, nil
}

// cloneWindow is how long an instance that gave way to another is
// remembered: if it announces itself again within it, two cabinets are
// taking turns with one locker id.
const cloneWindow = 10 * time.Minute

// noteInstance follows which process announces the locker. A new instance
// replacing the last is a restart; an instance that was replaced coming
// back is a second cabinet with the same locker id.
func (h *Hub) noteInstance(tx Tx, li *LockerInfo, inst string, now time.Time) error {
	if inst == "" || inst == li.Instance {
		return nil
	}
	for k, t := range li.Instances {
		if now.Sub(t) > cloneWindow {
			delete(li.Instances, k)
		}
	}
	cameBack := !li.Instances[inst].IsZero()
	if li.Instance != "" {
		if li.Instances == nil {
			li.Instances = map[string]time.Time{}
		}
		if len(li.Instances) < 8 {
			li.Instances[li.Instance] = now
		}
	}
	prev := li.Instance
	li.Instance = inst
	if !cameBack || now.Sub(li.CloneAlarm) < cloneWindow {
		return nil
	}
	li.CloneAlarm = now
	return h.alarm(tx, li.ID, alarm.Cloned, fmt.Sprintf(
		"two cabinets announce locker id %q and take turns (processes %s and %s, store %q): a cloned SD card? Order changes reach whichever is connected", li.ID, prev, inst, li.Store))
}

// alarm raises (or updates) an alarm of a locker in tx.
func (h *Hub) alarm(tx Tx, lockerID, typ, detail string) error {
	return h.raise(tx, alarm.Alarm{Locker: lockerID, Type: typ, Detail: detail})
}

// Alarms lists the alarms after seq after.
func (h *Hub) Alarms(after uint64) ([]alarm.Alarm, error) {
	var out []alarm.Alarm
	err := h.store.View(func(tx Tx) error {
		var err error
		out, err = tx.Alarms.Alarms(after)
		return err
	})
	return out, err
}

// markAck schedules an ack.evt for a locker's store.
func (h *Hub) markAck(id, store string) {
	h.mu.Lock()
	h.ackWait[ackKey{id, store}]++
	h.mu.Unlock()
}

type ackKey struct{ locker, store string }

// storeEvents stores a batch of up/evt messages in one transaction and
// marks their lockers' stores for an ack.evt. An event is kept under its
// store's epoch and seq: one id, one key, so a redelivery is found and
// dropped (and a different event under the same id is a second cabinet
// with the same identity and store). A store's mark moves only over
// events stored here.
func (h *Hub) storeEvents(msgs []inMsg) {
	if len(msgs) == 0 {
		return
	}
	type parsed struct {
		locker string
		e      protocol.Event
	}
	var evs []parsed
	now := time.Now()
	for _, m := range msgs {
		rest, _ := strings.CutPrefix(m.topic, h.cfg.Prefix+"/")
		id, _, _ := strings.Cut(rest, "/")
		e, err := checkEvent(id, m.payload, now)
		if err != nil {
			h.log.Warn("event refused", "locker", id, "err", err)
			continue
		}
		evs = append(evs, parsed{id, e})
	}
	var stored []protocol.Event
	var strangers, farAhead []parsed
	update := h.store.Update
	if s, ok := h.store.(LockerScoped); ok {
		update = s.UpdateLockers // it writes every locker's record it touches (below)
	}
	err := update(func(tx Tx) error {
		stored, strangers, farAhead = stored[:0], nil, nil
		now := time.Now().UTC()
		// What storing the batch needs is read at once, a few reads for
		// the whole batch: which lockers are served, their records, their
		// stores' records, the events already stored under these keys.
		var ids []string
		var storeKeys []StoreKey
		seenID, seenStore := map[string]bool{}, map[StoreKey]bool{}
		for _, p := range evs {
			if !seenID[p.locker] {
				seenID[p.locker] = true
				ids = append(ids, p.locker)
			}
			if k := (StoreKey{p.locker, p.e.Store}); !seenStore[k] {
				seenStore[k] = true
				storeKeys = append(storeKeys, k)
			}
		}
		known, err := tx.Lockers.KnownAmong(ids)
		if err != nil {
			return err
		}
		served := slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return !known[id] })
		lis, err := tx.Lockers.LockersOf(served)
		if err != nil {
			return err
		}
		storeKeys = slices.DeleteFunc(storeKeys, func(k StoreKey) bool { return !known[k.Locker] })
		found, err := tx.Lockers.StoreRecsOf(storeKeys)
		if err != nil {
			return err
		}
		infos := map[string]*LockerInfo{}
		for id, li := range lis {
			infos[id] = &li
		}
		recs := map[StoreKey]*StoreRec{}
		for _, k := range storeKeys { // in the order met: a new store's epoch is the next
			li := infos[k.Locker]
			rec, ok := found[k]
			if !ok {
				li.Epochs++
				rec = StoreRec{Store: k.Store, Epoch: li.Epochs, FirstSeen: now}
			}
			rec.LastSeen = now
			recs[k] = &rec
		}
		var keys []EventKey
		for _, p := range evs {
			if rec := recs[StoreKey{p.locker, p.e.Store}]; rec != nil {
				keys = append(keys, EventKey{p.locker, rec.Epoch, p.e.Seq})
			}
		}
		have, err := tx.Events.EventsAt(keys)
		if err != nil {
			return err
		}
		for _, p := range evs {
			if !known[p.locker] {
				strangers = append(strangers, p)
				continue
			}
			li, k := infos[p.locker], StoreKey{p.locker, p.e.Store}
			rec := recs[k]
			if p.e.Seq > max(rec.Acked, li.OutboxHead)+maxSeqAhead {
				// A seq no locker reaches from where this store stands:
				// stored, it would hold no meaning and be acked never.
				farAhead = append(farAhead, p)
				continue
			}
			ek := EventKey{p.locker, rec.Epoch, p.e.Seq}
			if old, ok := have[ek]; ok {
				if err := h.checkSame(tx, li, old, p.e); err != nil {
					return err
				}
				continue // a redelivery, by id
			}
			if err := tx.Events.PutEvent(p.locker, rec.Epoch, p.e); err != nil {
				return err
			}
			have[ek] = p.e
			li.Events++
			rec.Events++
			if err := h.applyEventToOrders(tx, p.locker, p.e); err != nil {
				return err
			}
			stored = append(stored, p.e)
		}
		// Each store's mark moves over the events now stored; the store
		// is asked about what lies beyond only when it holds events past
		// its mark (more events than the mark counts: some came early).
		for k, rec := range recs {
			for {
				for have[EventKey{k.Locker, rec.Epoch, rec.Acked + 1}].ID != "" {
					rec.Acked++
				}
				if rec.Events <= rec.Acked-rec.Base {
					break
				}
				next := EventKey{k.Locker, rec.Epoch, rec.Acked + 1}
				more, err := tx.Events.EventsAt([]EventKey{next})
				if err != nil {
					return err
				}
				if _, ok := more[next]; !ok {
					break
				}
				maps.Copy(have, more)
			}
		}
		for k, rec := range recs {
			if err := tx.Lockers.PutStoreRec(k.Locker, *rec); err != nil {
				return err
			}
			if li := infos[k.Locker]; li.Store == k.Store {
				li.Acked = rec.Acked
			}
		}
		// Every locker served in the batch has its record written, even
		// when nothing of it changed: that row is what serializes two
		// ingests of one locker (LockerScoped).
		for _, id := range served {
			if err := tx.Lockers.PutLocker(*infos[id]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		h.log.Error("events not stored", "err", err)
		return
	}
	for _, p := range strangers {
		h.stranger(p.locker, "up/evt")
	}
	for _, p := range farAhead {
		h.log.Warn("event refused", "locker", p.locker, "err", fmt.Sprintf("seq %d of store %q is more than %d beyond its mark", p.e.Seq, p.e.Store, maxSeqAhead))
	}
	for _, p := range evs {
		h.markAck(p.locker, p.e.Store)
	}
	for _, e := range stored {
		h.publishLocal(e)
	}
}

// checkSame compares a redelivered event with the one stored under its
// id: the same event again is normal; another one means two cabinets
// record under the same locker and store identity (a cloned SD card).
func (h *Hub) checkSame(tx Tx, li *LockerInfo, was, e protocol.Event) error {
	if was.Type == e.Type && was.Boot == e.Boot && was.TS.Equal(e.TS) {
		return nil
	}
	now := time.Now()
	if now.Sub(li.CloneAlarm) < cloneWindow {
		return nil
	}
	li.CloneAlarm = now
	return h.alarm(tx, li.ID, alarm.Cloned, fmt.Sprintf(
		"event %s arrived twice with different content (%s boot %d, then %s boot %d): two cabinets share locker id %q and store %q (a cloned SD card?)",
		e.ID, was.Type, was.Boot, e.Type, e.Boot, li.ID, e.Store))
}

// applyEventToOrders keeps the hub's view of orders in step with what
// happened at the locker.
func (h *Hub) applyEventToOrders(tx Tx, id string, e protocol.Event) error {
	data, err := protocol.DecodeEventData(e)
	if err != nil {
		return nil // stored as it came; nothing here to learn from it
	}
	var orderID, status string
	var compartments []string
	switch d := data.(type) {
	case *protocol.OrderLoaded:
		orderID, status = d.OrderID, "ready"
		if d.Compartment != "" {
			compartments = []string{d.Compartment}
		}
	case *protocol.PickupCompleted:
		orderID, status = d.OrderID, "picked_up"
	case *protocol.OrderExpired:
		orderID, status = d.OrderID, "expired"
	case *protocol.OrderRetrieved:
		orderID, status = d.OrderID, "retrieved"
	case *protocol.LoadNoSpace:
		if o, found, err := tx.Orders.Order(id, d.OrderID); err != nil {
			return err
		} else if found {
			o.NoSpace = e.TS.UTC()
			if err := tx.Orders.PutOrder(o); err != nil {
				return err
			}
		}
	}
	if err := h.circ.Queue(bridgeTx(tx, h.cfg.Replica), id, e, data); err != nil {
		return err
	}
	if err := h.alarmsFromEvent(tx, id, e, data); err != nil {
		return err
	}
	if err := h.hookFromEvent(tx, id, e, data); err != nil {
		return err
	}
	if err := h.fleet.FromEvent(fleetTx(tx), id, e, data); err != nil {
		return err
	}
	if orderID == "" {
		return nil
	}
	o, found, err := tx.Orders.Order(id, orderID)
	if err != nil || !found {
		return err
	}
	o.Status = status
	if compartments != nil {
		o.Compartments = compartments
	}
	if err := h.tell(tx, &o, status); err != nil {
		return err
	}
	return tx.Orders.PutOrder(o)
}

// sendAckEvts acks lockers' stores' events up to their marks, read in
// one transaction.
func (h *Hub) sendAckEvts(due []ackKey) {
	if len(due) == 0 {
		return
	}
	keys := make([]StoreKey, len(due))
	for i, k := range due {
		keys[i] = StoreKey{k.locker, k.store}
	}
	var recs map[StoreKey]StoreRec
	if err := h.store.View(func(tx Tx) error {
		var err error
		recs, err = tx.Lockers.StoreRecsOf(keys)
		return err
	}); err != nil {
		h.log.Warn("ack.evt not sent", "err", err)
		return
	}
	for _, k := range keys {
		if rec := recs[k]; rec.Acked > 0 {
			h.send(k.Locker, h.topics(k.Locker).DownAck(), protocol.TypeAckEvt, nil, protocol.AckEvt{Upto: rec.Acked, Store: k.Store})
		}
	}
}

func (h *Hub) onAck(id string, payload []byte) error {
	var m protocol.Message
	if err := json.Unmarshal(payload, &m); err != nil {
		return err
	}
	h.log.Info("reply from locker", "locker", id, "type", m.Type, "ref", m.Ref, "data", string(m.Data))
	return h.store.Update(func(tx Tx) error {
		li, err := tx.Lockers.Locker(id)
		if err != nil {
			return err
		}
		li.LastAck = append(json.RawMessage(nil), payload...)
		switch m.Type {
		case protocol.TypeAckOrders:
			var a protocol.AckOrders
			if json.Unmarshal(m.Data, &a) == nil {
				li.OrdersRev = max(li.OrdersRev, a.Rev)
				// The change acknowledged, by its message's id (not all up
				// to a.Rev: one below it may still be on its way, or lost).
				if _, err := tx.Orders.DropPending(id, m.Ref); err != nil {
					return err
				}
			}
		case protocol.TypeAckCmd:
			var a protocol.AckCmd
			if json.Unmarshal(m.Data, &a) == nil {
				if rec, found, _ := tx.Commands.Command(m.Ref); found {
					rec.Status, rec.Detail = a.Status, a.Detail
					if err := tx.Commands.PutCommand(rec); err != nil {
						return err
					}
				}
			}
		}
		return tx.Lockers.PutLocker(li)
	})
}

// seal builds and signs one downlink message; it returns its id and the
// envelope to publish.
func (h *Hub) seal(lockerID, typ string, exp *time.Time, data any) (string, []byte, error) {
	return h.sealMsg(protocol.Message{Type: typ, Locker: lockerID, Exp: exp}, data)
}

// sealReply signs a reply to message ref of lockerID.
func (h *Hub) sealReply(lockerID, typ, ref string, data any) ([]byte, error) {
	_, env, err := h.sealMsg(protocol.Message{Type: typ, Locker: lockerID, Ref: ref}, data)
	return env, err
}

// sealMsg fills in m's version, id and time, marshals data into it and
// signs it.
func (h *Hub) sealMsg(m protocol.Message, data any) (string, []byte, error) {
	id := fmt.Sprintf("hub-%d-%d", time.Now().UnixNano(), h.msgs.Add(1))
	m.V, m.ID, m.TS = protocol.Version, id, time.Now().UTC()
	raw, err := json.Marshal(data)
	if err != nil {
		return "", nil, err
	}
	m.Data = raw
	body, err := json.Marshal(m)
	if err != nil {
		return "", nil, err
	}
	env, err := protocol.Seal(body, h.cfg.SigningKey)
	return id, env, err
}

func (h *Hub) publish(topic string, env []byte) {
	if h.cl != nil {
		h.cl.Publish(topic, 1, false, env)
	}
}

// send signs and publishes one downlink message.
func (h *Hub) send(lockerID, topic, typ string, exp *time.Time, data any) {
	_, env, err := h.seal(lockerID, typ, exp, data)
	if err != nil {
		h.log.Error("seal", "err", err)
		return
	}
	h.publish(topic, env)
}

// Subscribe delivers events as they are stored (for events tail).
func (h *Hub) Subscribe() (<-chan protocol.Event, func()) { return h.local.Subscribe() }

func (h *Hub) publishLocal(e protocol.Event) { h.local.Publish(e) }

// Lockers lists the lockers the hub has heard from.
func (h *Hub) Lockers() ([]LockerInfo, error) {
	var out []LockerInfo
	err := h.store.View(func(tx Tx) error {
		var err error
		out, err = tx.Lockers.Lockers()
		return err
	})
	for i := range out {
		out[i].Telemetry = nil
	}
	return out, err
}

// Locker returns one locker's record.
func (h *Hub) Locker(id string) (LockerInfo, error) {
	var li LockerInfo
	err := h.store.View(func(tx Tx) error {
		var err error
		li, err = tx.Lockers.Locker(id)
		return err
	})
	return li, err
}

// Events returns a locker's stored events after the cursor, in order:
// store by store (in the order the hub met them), each in seq order; at
// most limit (0: all).
func (h *Hub) Events(lockerID string, after Cursor, limit int) ([]StoredEvent, error) {
	var out []StoredEvent
	err := h.store.View(func(tx Tx) error {
		var err error
		out, err = tx.Events.Events(lockerID, after, limit)
		return err
	})
	return out, err
}

// Orders returns a locker's orders, by rev.
func (h *Hub) Orders(lockerID string) ([]OrderRec, error) {
	var out []OrderRec
	err := h.store.View(func(tx Tx) error {
		var err error
		out, err = tx.Orders.Orders(lockerID)
		return err
	})
	return out, err
}

// Command returns a sent command's record.
func (h *Hub) Command(id string) (CmdRec, error) {
	var rec CmdRec
	err := h.store.View(func(tx Tx) error {
		var found bool
		var err error
		rec, found, err = tx.Commands.Command(id)
		if err == nil && !found {
			err = fmt.Errorf("no command %q", id)
		}
		return err
	})
	return rec, err
}

// RecentEvents returns up to n of a locker's latest events from its
// current store.
func (h *Hub) RecentEvents(lockerID string, n int) ([]StoredEvent, error) {
	var out []StoredEvent
	err := h.store.View(func(tx Tx) error {
		li, err := tx.Lockers.Locker(lockerID)
		if err != nil {
			return err
		}
		rec, found, err := tx.Lockers.StoreRec(lockerID, li.Store)
		if err != nil || !found {
			return err
		}
		from := uint64(0)
		if rec.Acked > uint64(n) {
			from = rec.Acked - uint64(n)
		}
		out, err = tx.Events.Events(lockerID, Cursor{Epoch: rec.Epoch, Seq: from}, n)
		return err
	})
	return out, err
}
