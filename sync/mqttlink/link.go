package mqttlink

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/sync/pahostore"
	"github.com/lockerd/lockerd/sync/protocol"
)

// Config is the link's configuration.
type Config struct {
	// Configurer applies a configuration the central pushes (cmd.config);
	// nil: such commands are rejected.
	Configurer      Configurer
	Updater         Updater  // takes software releases (cmd.update); nil: refused
	Brokers         []string // tried in order
	Prefix          string
	LockerID        string
	Keepalive       time.Duration
	TelemetryPeriod time.Duration
	Username        string
	Password        string
	TLS             *tls.Config
	CentralKey      ed25519.PublicKey // nil only with InsecureUnsigned
	// CentralNextKey is accepted beside CentralKey while the central
	// rotates its signing key (nil otherwise).
	CentralNextKey   ed25519.PublicKey
	InsecureUnsigned bool // accept unsigned downlink (testing only)
	Version          string
	// FirstRetransmit is how long events out and no ack.evt wait before
	// they are sent again (0: 2 s); each silent resend doubles it, up to
	// RetransmitAfter. A central that (re)subscribed after they went out —
	// on a broker that kept no session for it, and with no central/status
	// of its own to say it is back — gets them within seconds, not after
	// RetransmitAfter.
	FirstRetransmit time.Duration
	// RetransmitAfter is the longest wait before un-acked events are sent
	// again while connected (0: 30 s); no ack.evt for (maxSilentResends+1)
	// of them takes the connection for broken.
	RetransmitAfter time.Duration
	// AckWindow bounds the events sent beyond the central's last ack.evt
	// (0: DefaultAckWindow). A broker queues a bounded number of messages
	// for a slow subscriber (Mosquitto: max_queued_messages, 1000 by
	// default) and drops the rest; a replay of thousands of events sent
	// at the broker's pace overflowed an outside central's queue, and what
	// was dropped came only with the retransmit timer.
	AckWindow int
	// OfflineRate bounds events per second while the central library's
	// status says it is offline (the broker keeps them for it).
	OfflineRate float64
	// PublishTimeout bounds the wait for a publish's PUBACK (0: 10 s); no
	// progress for two of them in a row is a broken connection (the next
	// broker is tried).
	PublishTimeout time.Duration
	// MaxMessage bounds a downlink message (bytes, 0: DefaultMaxMessage):
	// a larger one is refused before it is copied or parsed — its payload
	// is never read into memory (boundedConn).
	MaxMessage int
	// StoreSize reports the store file's size for telemetry.
	StoreSize func() int64
	// State keeps the link's own durable state (staged snapshot parts,
	// command ids handled); required.
	State State
	// SnapshotTimeout drops the staged parts of a snapshot not completed
	// within it (0: never).
	SnapshotTimeout time.Duration
	// Now is the clock of staging and command claims (nil: time.Now).
	Now func() time.Time
	Log *slog.Logger
}

// Link is one locker's connection to the central library.
type Link struct {
	cfg    Config
	l      Core
	topics protocol.Topics
	client mqtt.Client
	log    *slog.Logger
	start  time.Time

	queue    inbox
	kick     chan struct{} // wakes the publisher
	replies  atomic.Uint64
	instance string // random per process: tells this run's births from any other's
	// ownBirthSeen: this connection's birth came back on the status
	// topic (under mu).
	ownBirthSeen bool
	clones       cloneWatch
	brokers      []*url.URL   // mqtt.brokers, parsed
	rotation     atomic.Int64 // how far the broker list is turned (see dial)
	stalls       int          // publisher only: publish timeouts in a row

	mu            sync.Mutex
	connected     bool
	connGen       uint64    // counts connections
	histUpTo      uint64    // events up to this seq were recorded before the current connection
	cursor        uint64    // last seq published on this connection
	lastAckChange time.Time // when acked_seq last moved (or the link connected, or the central came back)
	lastSend      time.Time // when a publish of an event was last acknowledged by the broker
	lastResend    time.Time // when un-acked events were last sent again
	silentResends int       // un-acked events sent again since the last ack.evt (or connection)
	centralOnline bool
	runCtx        context.Context // Run's, once it runs

	pstore *pahostore.Store // paho's store of the client

	askMu    sync.Mutex
	askWaits map[string]chan protocol.Message // questions waiting for the central's answer, by request id
}

// Bounds of the downlink.
const (
	// DefaultMaxMessage is well above the largest legitimate message, a
	// snapshot part of 500 orders (about 250 KB signed).
	DefaultMaxMessage = 1 << 20
	inboxItems        = 256 // messages waiting for the worker
	// DefaultAckWindow is Mosquitto's default queue for a subscriber
	// (max_queued_messages 1000; 20 more in flight): one locker's replay
	// fits in a slow central's queue. lockerhub acks every 250 events or
	// 100 ms, so a replay to it flows on (BENCHMARKS.md, outbox replay).
	DefaultAckWindow = 1000
	inboxBytes       = 8 << 20 // their bytes
)

// New builds a link for l; nothing connects until Run.
func New(cfg Config, l Core) (*Link, error) {
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("mqtt: no broker")
	}
	if cfg.State == nil {
		return nil, errors.New("mqtt: no link state")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.CentralKey == nil && !cfg.InsecureUnsigned {
		return nil, errors.New("mqtt: central public key required (or insecure_unsigned_downlink)")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = protocol.DefaultPrefix
	}
	if cfg.Keepalive <= 0 {
		cfg.Keepalive = 30 * time.Second
	}
	if cfg.TelemetryPeriod <= 0 {
		cfg.TelemetryPeriod = 300 * time.Second
	}
	if cfg.RetransmitAfter <= 0 {
		cfg.RetransmitAfter = 30 * time.Second
	}
	if cfg.FirstRetransmit <= 0 {
		cfg.FirstRetransmit = 2 * time.Second
	}
	cfg.FirstRetransmit = min(cfg.FirstRetransmit, cfg.RetransmitAfter)
	if cfg.AckWindow <= 0 {
		cfg.AckWindow = DefaultAckWindow
	}
	if cfg.OfflineRate <= 0 {
		cfg.OfflineRate = 5
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.MaxMessage <= 0 {
		cfg.MaxMessage = DefaultMaxMessage
	}
	if cfg.PublishTimeout <= 0 {
		cfg.PublishTimeout = 10 * time.Second
	}
	k := &Link{cfg: cfg, l: l, topics: protocol.Topics{Prefix: cfg.Prefix, Locker: cfg.LockerID},
		log: cfg.Log.With("component", "mqtt"), kick: make(chan struct{}, 1), centralOnline: true, start: time.Now()}
	inst := make([]byte, 8)
	if _, err := rand.Read(inst); err != nil {
		return nil, err
	}
	k.instance = hex.EncodeToString(inst)
	k.queue.init(cfg.MaxMessage, inboxItems, max(inboxBytes, 2*cfg.MaxMessage), oversizeMarker(k.instance))
	for _, b := range cfg.Brokers {
		u, err := url.Parse(b)
		if err != nil {
			return nil, fmt.Errorf("mqtt broker %q: %w", b, err)
		}
		k.brokers = append(k.brokers, u)
	}
	opts, err := k.options()
	if err != nil {
		return nil, err
	}
	k.client = mqtt.NewClient(opts)
	handler := func(_ mqtt.Client, m mqtt.Message) { k.queue.push(m.Topic(), m.Payload()) }
	for _, t := range k.downFilters() {
		k.client.AddRoute(t, handler)
	}
	return k, nil
}

func (k *Link) wake() {
	select {
	case k.kick <- struct{}{}:
	default:
	}
}

func (k *Link) status(online bool) ([]byte, error) {
	st, err := k.l.SyncState()
	if err != nil {
		return nil, err
	}
	return json.Marshal(protocol.Status{V: protocol.Version, Type: protocol.TypeStatus, Online: online, Boot: st.Boot,
		Store: st.StoreID, Instance: k.instance, Version: k.cfg.Version, OrdersRev: st.OrdersRev,
		OutboxHead: st.OutboxHead, OutboxTail: st.OutboxTail, TS: time.Now().UTC()})
}

func (k *Link) options() (*mqtt.ClientOptions, error) {
	store := pahostore.New()
	k.pstore = store
	o := mqtt.NewClientOptions()
	for _, b := range k.cfg.Brokers {
		o.AddBroker(b)
	}
	will, err := k.status(false)
	if err != nil {
		return nil, err
	}
	o.SetClientID(k.cfg.LockerID).
		SetCleanSession(false). // the broker keeps our downlink while we are away
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).
		SetMaxReconnectInterval(30*time.Second).
		SetKeepAlive(k.cfg.Keepalive).
		SetConnectTimeout(10*time.Second).
		SetWriteTimeout(10*time.Second).
		SetOrderMatters(true).             // in arrival order; the handlers only queue, never block
		SetCustomOpenConnectionFn(k.dial). // the broker list turns at every failure (brokers.go)
		SetStore(store).                   // paho's MemoryStore, minus its resume races (see pahostore)
		SetConnectionAttemptHandler(store.AttemptHandler).
		SetBinaryWill(k.topics.Status(), will, 1, true).
		SetOnConnectHandler(k.onConnect).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			k.mu.Lock()
			k.connected = false
			k.mu.Unlock()
			k.clones.lost(k.now())
			k.log.Warn("mqtt connection lost", "err", err)
			k.rotate("connection lost")
		})
	if k.cfg.Username != "" {
		o.SetUsername(k.cfg.Username)
		o.SetPassword(k.cfg.Password)
	}
	if k.cfg.TLS != nil {
		o.SetTLSConfig(k.cfg.TLS)
	}
	return o, nil
}

// downFilters are subscribed on every connect; routes for them are added
// before Connect so that messages the broker kept for us are not missed.
func (k *Link) downFilters() []string {
	return []string{k.topics.Down(), k.topics.CentralStatus(), k.topics.Status()}
}

// exactDown are the down topics as earlier lockerd subscribed to
// them, one by one: a session it left on the broker still has them, and
// with down/+ besides, Mosquitto would send each message twice.
func (k *Link) exactDown() []string {
	return []string{k.topics.DownOrders(), k.topics.DownCmd(), k.topics.DownAck()}
}

func (k *Link) onConnect(c mqtt.Client) {
	// The down topics as one filter: one subscription (on NATS, one
	// JetStream consumer) for orders, commands and acks. Three were seen
	// to break one at a time after a node's death — acks coming, orders
	// never — where one breaks as a whole, and the silent-downlink check
	// (no ack.evt for un-acked events) mends it with a new connection.
	subs := map[string]byte{}
	for _, f := range k.downFilters() {
		subs[f] = 1
	}
	tok := c.SubscribeMultiple(subs, nil)
	if !tok.WaitTimeout(k.cfg.PublishTimeout) {
		// Connected, but not answered: a broker that takes connections
		// and acknowledges nothing. Try the next one.
		go k.reconnect(k.runContext(), fmt.Sprintf("no SUBACK within %v", k.cfg.PublishTimeout))
		return
	}
	if tok.Error() != nil {
		k.log.Error("mqtt subscribe", "err", tok.Error())
	}
	// Not waited for: a session without them just acknowledges. (paho
	// drops the routes of what it unsubscribes: none is on these.)
	c.Unsubscribe(k.exactDown()...)
	birth, err := k.status(true)
	if err != nil {
		k.log.Error("birth", "err", err)
		return
	}
	st, _ := k.l.SyncState()
	k.pstore.WaitResumed(2 * time.Second) // (see pahostore.MarkConnect)
	c.Publish(k.topics.Status(), 1, true, birth)
	k.mu.Lock()
	k.connected = true
	k.connGen++
	gen := k.connGen
	k.ownBirthSeen = false
	k.histUpTo = st.OutboxHead
	k.cursor = st.AckedSeq
	k.lastAckChange = k.now()
	k.silentResends = 0
	k.mu.Unlock()
	k.log.Info("mqtt connected", "boot", st.Boot, "outbox_depth", st.Depth, "replay_from", st.AckedSeq+1)
	k.wake()
	// The birth comes back on the status topic this link subscribed to.
	// If it does not, the subscription gives nothing — seen on a NATS
	// cluster with a client that subscribed while the streams elected new
	// leaders after a node's death — and only a new connection mends it.
	time.AfterFunc(2*k.cfg.PublishTimeout, func() {
		k.mu.Lock()
		broken := k.connGen == gen && k.connected && !k.ownBirthSeen
		k.mu.Unlock()
		if broken {
			k.reconnect(k.runContext(), fmt.Sprintf("own birth not received back within %v: the subscription gives nothing", 2*k.cfg.PublishTimeout))
		}
	})
}

// Run connects and serves until ctx ends; then it publishes an offline
// status and disconnects.
func (k *Link) Run(ctx context.Context) error {
	if k.cfg.InsecureUnsigned {
		k.log.Warn("accepting UNSIGNED downlink messages (security.insecure_unsigned_downlink): anyone who can publish to this locker's topics can open its doors")
	}
	k.mu.Lock()
	k.runCtx = ctx
	k.mu.Unlock()
	k.client.Connect() // with ConnectRetry it keeps trying in the background
	events, unsubscribe := k.l.Subscribe()
	defer unsubscribe()

	var wg sync.WaitGroup
	wg.Add(4)
	go func() { defer wg.Done(); k.worker(ctx) }()
	go func() { defer wg.Done(); k.publisher(ctx, events) }()
	go func() { defer wg.Done(); k.telemetry(ctx) }()
	go func() { defer wg.Done(); k.housekeeping(ctx) }()
	<-ctx.Done()
	k.queue.close()
	wg.Wait()
	if k.client.IsConnectionOpen() {
		if off, err := k.status(false); err == nil {
			k.client.Publish(k.topics.Status(), 1, true, off).WaitTimeout(2 * time.Second)
		}
	}
	k.client.Disconnect(500)
	return nil
}

// housekeeping drops a staged snapshot left incomplete too long, even
// when no part arrives any more.
func (k *Link) housekeeping(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	idle := time.NewTicker(5 * time.Second)
	defer idle.Stop()
	var downSince time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			k.expireStaged(k.now())
		case <-idle.C:
			// Down, and paho is not trying either (neither connecting nor
			// reconnecting): its state machine lost a race between its own
			// reconnect and ours (the central's chaos test caught a locker
			// that never came back). Connect again.
			if up, _ := k.isConnected(); up || k.client.IsConnected() {
				downSince = time.Time{}
				continue
			}
			if downSince.IsZero() {
				downSince = time.Now()
				continue
			}
			if time.Since(downSince) >= 10*time.Second {
				k.log.Warn("mqtt down and no connection being tried: connecting again", "down_for", time.Since(downSince).Round(time.Second))
				downSince = time.Time{}
				k.client.Connect()
			}
		}
	}
}

func (k *Link) now() time.Time { return k.cfg.Now() }

// Connected reports whether the link is up.
func (k *Link) Connected() bool { up, _ := k.isConnected(); return up }

func (k *Link) isConnected() (bool, uint64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.connected && k.client.IsConnectionOpen(), k.connGen
}

// publisher sends outbox events in seq order on every connection.
func (k *Link) publisher(ctx context.Context, events <-chan locker.Event) {
	retransmit := time.NewTicker(time.Second)
	defer retransmit.Stop()
	for ctx.Err() == nil {
		sent, err := k.safeBatch(ctx)
		if err != nil {
			k.log.Warn("event publish", "err", err)
		}
		if errors.Is(err, errPublishTimeout) {
			// Connected, but nothing acknowledged: a broker that takes
			// publishes and never answers. Twice in a row, the connection
			// is taken for broken and the next broker is tried.
			if k.stalls++; k.stalls >= 2 {
				k.stalls = 0
				k.reconnect(ctx, fmt.Sprintf("no PUBACK for %v", 2*k.cfg.PublishTimeout))
			}
		} else if sent > 0 {
			k.stalls = 0
		}
		if sent > 0 && err == nil {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-events:
		case <-k.kick:
		case <-retransmit.C:
			k.maybeRetransmit()
		}
	}
}

// safeBatch is publishBatch with a panic turned into a fault of the
// locker (and an error here).
func (k *Link) safeBatch(ctx context.Context) (sent int, err error) {
	defer func() {
		if r := recover(); r != nil {
			k.l.Fault(fmt.Sprintf("panic in the sync path (uplink): %v", r))
			sent, err = 0, fmt.Errorf("panic: %v", r)
		}
	}()
	return k.publishBatch(ctx)
}

func (k *Link) maybeRetransmit() {
	st, err := k.l.SyncState()
	if err != nil {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.connected || k.cursor <= st.AckedSeq {
		return
	}
	now := k.now()
	limit := maxSilentResends
	if !k.centralOnline {
		// Silence is expected while the central is offline — unless the
		// news that it is back never reached this subscription either:
		// then later.
		limit = maxSilentResendsOffline
	}
	if now.Sub(k.lastAckChange) > time.Duration(limit+1)*k.cfg.RetransmitAfter {
		// The broker takes every publish, yet no ack comes: a
		// subscription that gives nothing (a clustered broker after a
		// node's death). A new connection mends it.
		k.silentResends = 0
		k.lastAckChange = now
		why := fmt.Sprintf("no ack.evt for %v (central online: %v)", time.Duration(limit+1)*k.cfg.RetransmitAfter, k.centralOnline)
		go func() { k.reconnect(k.runContext(), why) }() // runContext takes mu, held here
		return
	}
	quiet := k.lastAckChange // the latest of: progress, a publish acknowledged, a resend
	for _, t := range []time.Time{k.lastSend, k.lastResend} {
		if t.After(quiet) {
			quiet = t
		}
	}
	if now.Sub(quiet) < k.resendWait() {
		return
	}
	k.silentResends++
	k.log.Info("no ack.evt for a while: sending un-acked events again", "from_seq", st.AckedSeq+1, "resend", k.silentResends)
	k.cursor = st.AckedSeq
	k.lastResend = now
	k.wake()
}

// resendWait is how long events out wait for an ack.evt before they are
// sent again: FirstRetransmit, doubled at each silent resend, up to
// RetransmitAfter (mu held).
func (k *Link) resendWait() time.Duration {
	w := k.cfg.FirstRetransmit
	for i := 0; i < k.silentResends && w < k.cfg.RetransmitAfter; i++ {
		w *= 2
	}
	return min(w, k.cfg.RetransmitAfter)
}

// With events out and no ack.evt progress for (maxSilentResends+1) ×
// RetransmitAfter, the connection to an online central is taken for
// broken (they were sent again meanwhile); to one last said to be
// offline, after (maxSilentResendsOffline+1) × RetransmitAfter.
const (
	maxSilentResends        = 2
	maxSilentResendsOffline = 10
)

// publishBatch publishes the next events after the cursor; it returns how
// many went out.
func (k *Link) publishBatch(ctx context.Context) (int, error) {
	up, gen := k.isConnected()
	if !up {
		return 0, nil
	}
	k.mu.Lock()
	cursor, hist, centralUp := k.cursor, k.histUpTo, k.centralOnline
	k.mu.Unlock()
	st, err := k.l.SyncState()
	if err != nil {
		return 0, err
	}
	// No more than AckWindow events beyond the central's last ack.evt:
	// the broker's queue for the central is bounded (see AckWindow). An
	// ack.evt wakes the publisher for the next ones.
	upTo := st.AckedSeq + uint64(k.cfg.AckWindow)
	if cursor >= upTo {
		return 0, nil
	}
	evs, err := k.l.Events(cursor, int(min(100, upTo-cursor)))
	if err != nil || len(evs) == 0 {
		return 0, err
	}
	for i, e := range evs {
		if e.Seq > upTo {
			evs = evs[:i]
			break
		}
	}
	if len(evs) == 0 {
		return 0, nil
	}
	store := k.l.StoreID()
	// Up to publishWindow publishes are in flight at once (one connection
	// keeps them in order); the cursor moves as their PUBACKs arrive, in
	// order. Nothing leaves the outbox until ack.evt either way.
	type inflight struct {
		tok mqtt.Token
		seq uint64
	}
	var window []inflight
	sent := 0
	settle := func(upto int) error {
		for len(window) > upto {
			f := window[0]
			window = window[1:]
			if !f.tok.WaitTimeout(k.cfg.PublishTimeout) {
				return errPublishTimeout
			}
			if f.tok.Error() != nil {
				return f.tok.Error()
			}
			k.mu.Lock()
			if k.connGen != gen { // reconnected meanwhile: the new connection replays
				k.mu.Unlock()
				return errReconnected
			}
			k.cursor = max(k.cursor, f.seq)
			k.lastSend = k.now()
			k.mu.Unlock()
			sent++
		}
		return nil
	}
	for _, e := range evs {
		payload, err := json.Marshal(protocol.Event{V: protocol.Version, ID: protocol.EventID(k.cfg.LockerID, store, e.Seq),
			Type: string(e.Type), Locker: k.cfg.LockerID, Store: store, Boot: e.Boot, Seq: e.Seq, TS: e.TS, Hist: e.Seq <= hist, Data: e.Data})
		if err != nil {
			return sent, err
		}
		window = append(window, inflight{k.client.Publish(k.topics.UpEvt(), 1, false, payload), e.Seq})
		limit := publishWindow
		if !centralUp {
			limit = 1
		}
		if err := settle(limit - 1); err != nil {
			return sent, ignoreReconnect(err)
		}
		if !centralUp {
			// The central library is away: the broker queues for it;
			// keep publishing, gently.
			select {
			case <-ctx.Done():
				return sent, nil
			case <-time.After(time.Duration(float64(time.Second) / k.cfg.OfflineRate)):
			}
		}
	}
	return sent, ignoreReconnect(settle(0))
}

// publishWindow bounds the event publishes awaiting their PUBACK.
const publishWindow = 64

var (
	errReconnected    = errors.New("reconnected")
	errPublishTimeout = errors.New("publish not acknowledged in time")
)

// runContext is Run's context: a reconnect started from a paho callback
// must not connect again once Run has ended.
func (k *Link) runContext() context.Context {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.runCtx == nil {
		return context.Background()
	}
	return k.runCtx
}

// reconnect drops the connection and connects again, starting at the
// next broker.
func (k *Link) reconnect(ctx context.Context, why string) {
	k.log.Warn("mqtt connection taken for broken", "why", why)
	k.mu.Lock()
	k.connected = false
	k.mu.Unlock()
	k.rotate(why)
	k.client.Disconnect(100)
	if ctx.Err() == nil {
		k.client.Connect() // with ConnectRetry it keeps trying in the background
	}
}

func ignoreReconnect(err error) error {
	if errors.Is(err, errReconnected) {
		return nil
	}
	return err
}

func (k *Link) telemetry(ctx context.Context) {
	t := time.NewTicker(k.cfg.TelemetryPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if up, _ := k.isConnected(); !up {
			continue
		}
		tel, err := k.l.Telemetry()
		if err != nil {
			k.log.Error("telemetry", "err", err)
			continue
		}
		body := protocol.Telemetry{V: protocol.Version, Type: protocol.TypeTelemetry, Locker: k.cfg.LockerID,
			TS: time.Now().UTC(), UptimeS: int(time.Since(k.start).Seconds()), Data: telemetryData(tel)}
		if k.cfg.StoreSize != nil {
			n := k.cfg.StoreSize()
			body.StoreBytes = &n
		}
		raw, _ := json.Marshal(body)
		k.client.Publish(k.topics.UpTele(), 0, false, raw) // QoS 0, never in the outbox
	}
}

// telemetryData is the core's summary in its wire form.
func telemetryData(t locker.Telemetry) protocol.TelemetryData {
	bySize := func(m map[locker.Size]int) map[string]int {
		out := make(map[string]int, len(m))
		for k, v := range m {
			out[string(k)] = v
		}
		return out
	}
	comps := make([]protocol.TeleCompartment, len(t.Compartments))
	for i, c := range t.Compartments {
		comps[i] = protocol.TeleCompartment{ID: c.ID, Size: string(c.Size), State: c.State, DoorOpen: c.DoorOpen, OutOfService: c.OutOfService}
	}
	return protocol.TelemetryData{Free: bySize(t.Free), Used: bySize(t.Used), OutOfServ: t.OutOfServ, DoorsOpen: t.DoorsOpen,
		OutboxDepth: t.OutboxDepth, BinFull: t.BinFull, Scanners: t.Scanners, Compartments: comps}
}

// reply publishes an ack.* or nack on up/ack.
func (k *Link) reply(typ, ref string, data any) {
	id := fmt.Sprintf("%s-r%d-%d", k.cfg.LockerID, k.l.Boot(), k.replies.Add(1))
	raw, err := protocol.Encode(typ, id, k.cfg.LockerID, ref, time.Now(), data)
	if err != nil {
		k.log.Error("reply encode", "err", err)
		return
	}
	tok := k.client.Publish(k.topics.UpAck(), 1, false, raw)
	if tok.WaitTimeout(10*time.Second) && tok.Error() != nil {
		k.log.Warn("reply not published", "type", typ, "ref", ref, "err", tok.Error())
	}
}

func (k *Link) nack(ref string, err error) {
	k.log.Warn("downlink refused", "ref", ref, "err", err)
	k.reply(protocol.TypeNack, ref, protocol.Nack{Error: err.Error()})
}

// worker handles downlink messages one at a time, in arrival order.
func (k *Link) worker(ctx context.Context) {
	for {
		it, dropped, ok := k.queue.pop()
		if dropped > 0 {
			k.nack("", fmt.Errorf("downlink inbox full: %d messages dropped (send again)", dropped))
		}
		if !ok {
			return
		}
		if it.refused != "" {
			k.nack("", errors.New(it.refused))
			continue
		}
		func() {
			// A panic here (a damaged store read by bbolt) must not leave
			// the locker running as if healthy.
			defer k.l.Recover("the sync path (downlink " + it.topic + ")")
			k.handle(ctx, it.topic, it.payload)
		}()
	}
}

func (k *Link) handle(ctx context.Context, topic string, payload []byte) {
	switch topic {
	case k.topics.CentralStatus():
		var cs protocol.CentralStatus
		if json.Unmarshal(payload, &cs) == nil {
			st, _ := k.l.SyncState()
			k.mu.Lock()
			cameBack := cs.Online && !k.centralOnline
			k.centralOnline = cs.Online
			if cs.Online {
				// The central library (re)connected: what it missed while
				// away is sent again from the last ack, so nothing waits for
				// the retransmit timer.
				k.cursor = st.AckedSeq
				k.lastAckChange = k.now()
				k.silentResends = 0
			}
			k.mu.Unlock()
			k.log.Info("central status", "online", cs.Online, "came_back", cameBack)
			k.wake()
		}
		return
	case k.topics.Status():
		var st protocol.Status
		if json.Unmarshal(payload, &st) != nil {
			return
		}
		if st.Online && st.Instance == k.instance && st.Boot == k.l.Boot() {
			k.mu.Lock()
			k.ownBirthSeen = true // the subscription works (see onConnect)
			k.mu.Unlock()
		}
		ownEarlierRun := st.Store == k.l.StoreID() && st.Boot < k.l.Boot()
		if st.Online && st.Instance != "" && st.Instance != k.instance && !ownEarlierRun {
			// Another process announced itself as this locker. Once, it is
			// this cabinet's previous run (its last birth, retained); again
			// and again, it is another cabinet with this locker's id.
			if conflict, n, losses := k.clones.foreign(st.Instance, k.now()); conflict {
				k.l.RecordIdentityConflict(locker.IdentityConflict{OtherInstance: st.Instance, OtherStore: st.Store,
					OtherBoot: st.Boot, SameStore: st.Store == k.l.StoreID(), BirthsSeen: n, ConnectionLosses: losses})
			}
		}
		if !st.Online && st.Boot == k.l.Boot() && (st.Instance == "" || st.Instance == k.instance) {
			// Our own will fired for a connection the broker thought dead
			// while we are connected: say we are here.
			if up, _ := k.isConnected(); up {
				if birth, err := k.status(true); err == nil {
					k.client.Publish(k.topics.Status(), 1, true, birth)
					k.log.Info("republished birth over a stale will")
				}
			}
		}
		return
	}
	body, err := k.open(payload)
	if err != nil {
		k.nack(refOf(payload), err)
		return
	}
	m, err := protocol.Decode(body, k.cfg.LockerID)
	if err != nil {
		k.nack(m.ID, err)
		return
	}
	if !k.cfg.InsecureUnsigned {
		// Authenticated: the central library's time — taken in after the
		// message is handled, so that a command's exp is judged by what
		// was known before it (a message cannot vouch for itself).
		defer k.l.ObserveCentralTime(m.TS)
	}
	if !strings.HasSuffix(topic, "/"+topicKind(m.Type)) {
		k.nack(m.ID, fmt.Errorf("%w: %s on %s", protocol.ErrUnknownType, m.Type, topic))
		return
	}
	switch m.Type {
	case protocol.TypeAckEvt:
		k.handleAckEvt(m)
	case protocol.TypeRespPatron, protocol.TypeRespHold:
		k.handleAnswer(m)
	case protocol.TypeOrdersUpsert, protocol.TypeOrdersCancel, protocol.TypeOrdersSnapshot:
		k.handleOrders(m)
	default:
		k.handleCmd(ctx, m)
	}
}

func topicKind(typ string) string {
	switch {
	case strings.HasPrefix(typ, "orders."):
		return "orders"
	case strings.HasPrefix(typ, "cmd."):
		return "cmd"
	}
	return "ack"
}

// open verifies a signed envelope; unsigned messages pass only in
// insecure mode.
func (k *Link) open(payload []byte) ([]byte, error) {
	if k.cfg.InsecureUnsigned && !isEnvelope(payload) {
		return payload, nil
	}
	body, err := protocol.Open(payload, k.cfg.CentralKey)
	if err != nil && k.cfg.CentralNextKey != nil {
		// During a rotation of the central's signing key, its next key.
		if next, nerr := protocol.Open(payload, k.cfg.CentralNextKey); nerr == nil {
			return next, nil
		}
	}
	return body, err
}

func isEnvelope(payload []byte) bool {
	var probe struct {
		Body *string `json:"body"`
		Sig  *string `json:"sig"`
	}
	return json.Unmarshal(payload, &probe) == nil && probe.Body != nil && probe.Sig != nil
}

// refOf digs the id out of a refused message, if it has one, for the nack.
func refOf(payload []byte) string {
	var env protocol.Envelope
	if json.Unmarshal(payload, &env) == nil && env.Body != "" {
		if body, err := decodeB64(env.Body); err == nil {
			payload = body
		}
	}
	var m struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(payload, &m) != nil {
		return ""
	}
	return m.ID
}

func (k *Link) handleAckEvt(m protocol.Message) {
	var a protocol.AckEvt
	if err := protocol.DecodeData(m, &a); err != nil {
		k.nack(m.ID, err)
		return
	}
	if a.Store != "" && a.Store != k.l.StoreID() {
		// For another store of this locker id (the one this card replaced,
		// or a clone's): deleting up to its seq here would drop events the
		// central library never stored.
		k.log.Warn("ack.evt for another store ignored", "ack_store", a.Store, "store", k.l.StoreID(), "upto", a.Upto)
		return
	}
	n, err := k.l.AckEvents(a.Upto)
	if err != nil {
		k.log.Error("ack.evt", "err", err)
		return
	}
	k.mu.Lock()
	if n > 0 {
		k.lastAckChange = k.now()
	}
	k.silentResends = 0 // acks arrive: the downlink works
	k.cursor = max(k.cursor, a.Upto)
	k.mu.Unlock()
	k.wake() // the ack window has room again
	k.log.Debug("events acked", "upto", a.Upto, "removed", n)
}
