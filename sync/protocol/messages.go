package protocol

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// Message types.
const (
	TypeStatus         = "status"
	TypeOrdersUpsert   = "orders.upsert"
	TypeOrdersCancel   = "orders.cancel"
	TypeOrdersSnapshot = "orders.snapshot"
	TypeCmdOpen        = "cmd.open"
	TypeCmdService     = "cmd.service"
	TypeCmdResync      = "cmd.resync"
	TypeCmdPing        = "cmd.ping"
	TypeCmdBadges      = "cmd.badges"
	TypeCmdConfig      = "cmd.config"
	TypeCmdUpdate      = "cmd.update"
	TypeReqPatron      = "req.patron"  // up/req: a library card and PIN to check
	TypeRespPatron     = "resp.patron" // down/ack: the central's signed answer
	TypeReqHold        = "req.hold"    // up/req: staff scanned an item with no order here
	TypeRespHold       = "resp.hold"   // down/ack: the order made for its hold, or why none
	TypeAckEvt         = "ack.evt"
	TypeAckOrders      = "ack.orders"
	TypeAckCmd         = "ack.cmd"
	TypeNack           = "nack"
)

// Message is the envelope of every protocol message in both directions;
// message-specific fields are in Data. Unknown fields are ignored.
type Message struct {
	V      int             `json:"v"`
	Type   string          `json:"type"`
	ID     string          `json:"id,omitempty"`
	Locker string          `json:"locker"`
	TS     time.Time       `json:"ts"`
	Exp    *time.Time      `json:"exp,omitempty"` // commands: not to be acted on after this
	Ref    string          `json:"ref,omitempty"` // replies: the id of the message answered
	Data   json.RawMessage `json:"data,omitempty"`
}

// Event is one uplink event (topic up/evt).
type Event struct {
	V      int    `json:"v"`
	ID     string `json:"id"` // EventID(locker, store, seq)
	Type   string `json:"type"`
	Locker string `json:"locker"`
	// Store is the identity of the locker's store that recorded the event
	// (a random id made with the store): seq counts within it, and starts
	// at 1 again in a replaced store. "" from lockers before it was sent.
	Store string          `json:"store,omitempty"`
	Boot  uint64          `json:"boot"`
	Seq   uint64          `json:"seq"`
	TS    time.Time       `json:"ts"`
	Hist  bool            `json:"hist"`
	Data  json.RawMessage `json:"data"` // the type's data (events.go)
}

// EventID is the id of event seq of a locker's store: <locker>-<store>-<seq>,
// or <locker>-<seq> for a locker that sends no store identity.
func EventID(locker, store string, seq uint64) string {
	if store == "" {
		return locker + "-" + strconv.FormatUint(seq, 10)
	}
	return locker + "-" + store + "-" + strconv.FormatUint(seq, 10)
}

// Status is the locker's birth (online) and will (offline) message.
type Status struct {
	V      int    `json:"v"`
	Type   string `json:"type"`
	Online bool   `json:"online"`
	Boot   uint64 `json:"boot"`
	// Store is the identity of the locker's store; Instance is random per
	// process start. The same locker id with another store means the store
	// was replaced; two instances taking turns mean two cabinets share
	// one locker id (a cloned SD card).
	Store      string    `json:"store,omitempty"`
	Instance   string    `json:"instance,omitempty"`
	Version    string    `json:"version,omitempty"`
	OrdersRev  uint64    `json:"orders_rev"`
	OutboxHead uint64    `json:"outbox_head"` // last seq recorded
	OutboxTail uint64    `json:"outbox_tail"` // first seq not yet acked (head+1 when empty)
	TS         time.Time `json:"ts"`
}

// CentralStatus is the central library's own birth and will.
type CentralStatus struct {
	Online bool      `json:"online"`
	TS     time.Time `json:"ts"`
}

// Item is one book of an order.
type Item struct {
	Barcode string `json:"barcode"`
	Title   string `json:"title,omitempty"`
}

// Order is an order as the central library sends it. Exactly one of
// CodeHash and Code is set; Code is hashed on receipt and never stored.
type Order struct {
	ID          string `json:"id"`
	Rev         uint64 `json:"rev"`
	State       string `json:"state"` // assigned | ready
	Size        string `json:"size"`
	Compartment string `json:"compartment,omitempty"`
	Items       []Item `json:"items"`
	// Accessible: load only into an accessible compartment (absent: any).
	Accessible bool      `json:"accessible,omitempty"`
	CodeHash   string    `json:"code_hash,omitempty"`
	Code       string    `json:"code,omitempty"`
	ExpiresAt  time.Time `json:"expires_at"`
	// PatronHash is the keyed hash of the reader's library card
	// (HMAC-SHA256 with the pickup key over "patron" 0x00 card): a card
	// and PIN the central checked open the reader's orders (absent: no
	// card pickup for it). Since lockerd 0.16.
	PatronHash string `json:"patron_hash,omitempty"`
	// Delivery: a community volunteer or courier collects it for the
	// reader; a volunteer badge opens it. Since lockerd 0.16.
	Delivery bool `json:"delivery,omitempty"`
}

// OrdersUpsert is the data of orders.upsert.
type OrdersUpsert struct {
	Orders []Order `json:"orders"`
}

// OrdersCancel is the data of orders.cancel.
type OrdersCancel struct {
	OrderIDs []string `json:"order_ids"`
	Rev      uint64   `json:"rev"`
}

// OrdersSnapshot is the data of one part of orders.snapshot: the complete
// set of orders the locker should hold, sent in Parts parts.
type OrdersSnapshot struct {
	SnapID string  `json:"snap_id"`
	Part   int     `json:"part"` // 1..Parts
	Parts  int     `json:"parts"`
	Rev    uint64  `json:"rev"`
	Orders []Order `json:"orders"`
}

// CmdOpen is the data of cmd.open.
type CmdOpen struct {
	Compartment string `json:"compartment"`
	Reason      string `json:"reason"`
}

// CmdService is the data of cmd.service.
type CmdService struct {
	Compartment string `json:"compartment"`
	InService   bool   `json:"in_service"`
}

// CmdBadges is the data of cmd.badges: badges to add (or change) and to
// revoke, by hash or by name. A revocation takes effect on receipt, and
// ends a staff session the badge holds. Since lockerd 0.16.
type CmdBadges struct {
	Add    []BadgeSpec `json:"add,omitempty"`
	Revoke []BadgeRef  `json:"revoke,omitempty"`
}

// BadgeSpec is a badge the central adds: its name, the keyed hash of its
// code (as code_hash), and its role (staff, volunteer, technician).
type BadgeSpec struct {
	Name string `json:"name"`
	Hash string `json:"hash"`
	Role string `json:"role"`
}

// BadgeRef names a badge to revoke by its hash or its name.
type BadgeRef struct {
	Hash string `json:"hash,omitempty"`
	Name string `json:"name,omitempty"`
}

// ReqPatron is the data of req.patron (up/req, QoS 1, never retained,
// never in the outbox): a library card and the PIN typed for it, for the
// central to check with the library system. Neither is stored or logged
// on either side. Since lockerd 0.16.
type ReqPatron struct {
	Card string `json:"card"`
	PIN  string `json:"pin"`
}

// Reasons of a refused resp.patron.
const (
	PatronWrongPIN    = "pin"         // the PIN is wrong
	PatronRefused     = "refused"     // the library system refuses the card
	PatronUnavailable = "unavailable" // no library system to ask, or it cannot be asked now
)

// RespPatron is the data of resp.patron (down/ack, signed, ref = the
// request's id): OK with the card's patron hash (as orders carry it), or
// a reason.
type RespPatron struct {
	OK         bool   `json:"ok"`
	PatronHash string `json:"patron_hash,omitempty"`
	Reason     string `json:"reason,omitempty"`
	Message    string `json:"message,omitempty"` // the library system's screen message
}

// MaxReqPatron bounds a req.patron message.
const MaxReqPatron = 1024

// ReqHold is the data of req.hold (up/req, QoS 1, never retained): staff
// at a cabinet scanned an item this locker has no order for. The central
// asks the library system whose hold it is and for which pickup point,
// and answers with the order made for that reader. Visit is the staff
// session's id: the same reader's items of one visit join one order.
// Card is the reader's card scanned from the hold slip, sent only when
// the central asked for it (HoldNoReader): with it the central checks
// the item is among that reader's holds (SIP2 63). Loading lists the
// orders whose doors are open for loading now: an item of the same
// reader joins one of those (the same door), else it gets an order of
// its own sharing the reader's code. Since lockerd 0.19.
type ReqHold struct {
	Item    string   `json:"item"`
	Card    string   `json:"card,omitempty"`
	By      string   `json:"by"`
	Visit   string   `json:"visit"`
	Loading []string `json:"loading,omitempty"`
}

// Reasons of a refused resp.hold.
const (
	HoldUnknownItem = "unknown_item" // the library system does not know the item
	HoldNone        = "no_hold"      // no reader's hold waits for this item (on the shelf, on loan)
	HoldElsewhere   = "other_pickup" // the hold is for another pickup point (Message names it)
	// HoldNoReader: the library system says the item is held but not for
	// whom (no CY): staff scan the reader's card from the hold slip.
	HoldNoReader    = "no_reader"
	HoldNotTheirs   = "not_their_hold" // the slip's card has no hold on this item
	HoldRefused     = "refused"        // the reader's card is refused, or no order can be made
	HoldUnavailable = "unavailable"    // no library system, or it cannot be asked now
)

// RespHold is the data of resp.hold (down/ack, signed, ref = the
// request's id): OK with the order (as orders.upsert carries it, and as
// it also comes there), or a reason and the message for the staff.
type RespHold struct {
	OK      bool   `json:"ok"`
	Order   *Order `json:"order,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
}

// MaxReqHold bounds a req.hold message.
const MaxReqHold = 1024

// CmdConfig is the data of cmd.config: a configuration for the locker
// (lockerd.yaml), version numbered by the central, with its SHA-256.
// Since lockerd 0.16.
type CmdConfig struct {
	Version uint64 `json:"version"`
	Config  string `json:"config"`
	SHA256  string `json:"sha256"`
}

// CmdUpdate is the data of cmd.update: a software release, with the
// signed manifest (an Envelope, as the downlink's, whose body is a
// Manifest) of each architecture's binary. The locker takes its own
// architecture's, checks its signature, and downloads the binary from
// the hub it is configured with (update.hub_url): never from anywhere a
// message names. Since lockerd 0.16.
type CmdUpdate struct {
	Version   string                     `json:"version"`
	Artifacts map[string]json.RawMessage `json:"artifacts"`
}

// Manifest describes one binary of a release.
type Manifest struct {
	Version  string    `json:"version"`
	Arch     string    `json:"arch"` // arm64, armv7, armv6, amd64
	Size     int64     `json:"size"`
	SHA256   string    `json:"sha256"`
	Rollback bool      `json:"rollback,omitempty"` // may replace a newer version
	Created  time.Time `json:"created"`
	// NextKey (base64 Ed25519) is a release key's successor, authorized
	// by this manifest's signature: a locker pinned to a release key
	// takes manifests signed with it from then on (a key rotation).
	NextKey string `json:"next_key,omitempty"`
}

// MaxConfig bounds a pushed configuration.
const MaxConfig = 256 << 10

// MaxBadgesPerCmd bounds one cmd.badges.
const MaxBadgesPerCmd = 500

// CmdResync is the data of cmd.resync.
type CmdResync struct {
	FromSeq uint64 `json:"from_seq"`
}

// AckEvt is the data of ack.evt: central stored every event up to Upto
// of store Store. A locker takes an ack for another store than its own
// as no ack at all ("" from a central that sends no store: taken).
type AckEvt struct {
	Upto  uint64 `json:"upto"`
	Store string `json:"store,omitempty"`
}

// Conflict is an order change the locker refused because a physical fact
// recorded here contradicts it.
type Conflict struct {
	OrderID string `json:"order_id"`
	Reason  string `json:"reason"`
	State   string `json:"state"` // the order's state at the locker
}

// AckOrders is the data of ack.orders.
type AckOrders struct {
	Rev uint64 `json:"rev"` // highest rev applied at the locker (orders_rev)
	// Applied and Stale list at most 100 ids; the counts are exact.
	Applied      []string   `json:"applied,omitempty"`
	Stale        []string   `json:"stale,omitempty"`
	AppliedCount int        `json:"applied_count,omitempty"`
	StaleCount   int        `json:"stale_count,omitempty"`
	Conflicts    []Conflict `json:"conflicts,omitempty"`
	Rejected     []Conflict `json:"rejected,omitempty"` // malformed orders
	Pending      bool       `json:"pending,omitempty"`  // snapshot part staged, not complete
}

// Statuses of ack.cmd.
const (
	CmdDone      = "done"
	CmdRejected  = "rejected"
	CmdExpired   = "expired"
	CmdDuplicate = "duplicate"
)

// AckCmd is the data of ack.cmd.
type AckCmd struct {
	Status string `json:"status"`
	Detail string `json:"detail,omitempty"`
}

// Nack is the data of nack: a downlink message refused.
type Nack struct {
	Error string `json:"error"`
}

// Topics names a locker's topics under a prefix.
type Topics struct {
	Prefix string
	Locker string
}

func (t Topics) root() string       { return t.Prefix + "/" + t.Locker }
func (t Topics) Status() string     { return t.root() + "/status" }
func (t Topics) UpEvt() string      { return t.root() + "/up/evt" }
func (t Topics) UpAck() string      { return t.root() + "/up/ack" }
func (t Topics) UpTele() string     { return t.root() + "/up/tele" }
func (t Topics) UpReq() string      { return t.root() + "/up/req" }
func (t Topics) DownOrders() string { return t.root() + "/down/orders" }
func (t Topics) DownCmd() string    { return t.root() + "/down/cmd" }
func (t Topics) DownAck() string    { return t.root() + "/down/ack" }

// Down is the one filter of the three down topics: one subscription, so
// that what proves one of them alive (ack.evt coming) proves all.
func (t Topics) Down() string          { return t.root() + "/down/+" }
func (t Topics) CentralStatus() string { return t.Prefix + "/central/status" }

// DefaultPrefix is mqtt.topic_prefix's default.
const DefaultPrefix = "lockers/v1"

// CheckPrefix bounds a topic prefix: levels of 1 to 64 ASCII letters,
// digits, '-' and '_', separated by single '/'. Besides MQTT's wildcards
// this keeps out what a NATS cluster's MQTT listener cannot carry: it
// maps '/' to '.' and drops the connection of a client that publishes to
// a topic with '.' or a space (a QoS 1 message then comes back at every
// reconnect), and '*' and '>' are its wildcards. Locker ids are bounded
// the same way (locker.CheckLockerID).
func CheckPrefix(p string) error {
	if p == "" || len(p) > 128 {
		return fmt.Errorf("topic prefix %q: want 1 to 128 characters", p)
	}
	for _, level := range strings.Split(p, "/") {
		if level == "" || len(level) > 64 {
			return fmt.Errorf("topic prefix %q: levels of 1 to 64 characters, no leading, trailing or double '/'", p)
		}
		for _, c := range level {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("topic prefix %q: %q: use ASCII letters, digits, '-' and '_' between '/' (no wildcards, and no '.', space, '*' or '>', which a NATS cluster's MQTT listener cannot carry)", p, c)
			}
		}
	}
	return nil
}

// Errors of Decode, for nack reasons.
var (
	ErrUnknownType  = errors.New("unknown message type")
	ErrWrongLocker  = errors.New("message for another locker")
	ErrMissingField = errors.New("missing field")
)

// downTypes are the types each down topic accepts.
var downTypes = map[string]bool{
	TypeOrdersUpsert: true, TypeOrdersCancel: true, TypeOrdersSnapshot: true,
	TypeCmdOpen: true, TypeCmdService: true, TypeCmdResync: true, TypeCmdPing: true, TypeCmdBadges: true, TypeCmdConfig: true, TypeCmdUpdate: true, TypeAckEvt: true, TypeRespPatron: true, TypeRespHold: true,
}

// Decode reads a downlink message body for locker and checks its
// envelope: version, a known type, an id, the locker it is for.
func Decode(body []byte, locker string) (Message, error) {
	var m Message
	if err := json.Unmarshal(body, &m); err != nil {
		return m, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if m.V != Version {
		return m, fmt.Errorf("%w: v=%d", ErrVersion, m.V)
	}
	if !downTypes[m.Type] {
		return m, fmt.Errorf("%w %q", ErrUnknownType, m.Type)
	}
	if m.ID == "" {
		return m, fmt.Errorf("%w: id", ErrMissingField)
	}
	if m.Locker != locker {
		return m, fmt.Errorf("%w: %q", ErrWrongLocker, m.Locker)
	}
	return m, nil
}

// DecodeData reads m.Data into v strictly enough to catch wrong types.
func DecodeData(m Message, v any) error {
	if len(m.Data) == 0 {
		return fmt.Errorf("%w: data", ErrMissingField)
	}
	if err := json.Unmarshal(m.Data, v); err != nil {
		return fmt.Errorf("%w: data: %v", ErrMalformed, err)
	}
	return nil
}

// Encode builds a message with data marshalled into Data.
func Encode(typ, id, locker, ref string, ts time.Time, data any) ([]byte, error) {
	m := Message{V: Version, Type: typ, ID: id, Locker: locker, Ref: ref, TS: ts.UTC()}
	if data != nil {
		raw, err := json.Marshal(data)
		if err != nil {
			return nil, err
		}
		m.Data = raw
	}
	return json.Marshal(m)
}

// TypeTelemetry is the type of a telemetry message (up/tele, QoS 0, never
// in the outbox).
const TypeTelemetry = "telemetry"

// Telemetry is a locker's periodic summary on up/tele.
type Telemetry struct {
	V          int           `json:"v"`
	Type       string        `json:"type"` // TypeTelemetry
	Locker     string        `json:"locker"`
	TS         time.Time     `json:"ts"`
	UptimeS    int           `json:"uptime_s"`
	StoreBytes *int64        `json:"store_bytes,omitempty"`
	Data       TelemetryData `json:"data"`
}

// TelemetryData is what a locker reports of itself.
type TelemetryData struct {
	Free        map[string]int  `json:"free"` // free compartments by size
	Used        map[string]int  `json:"used"`
	OutOfServ   []string        `json:"out_of_service,omitempty"`
	DoorsOpen   []string        `json:"doors_open,omitempty"`
	OutboxDepth int             `json:"outbox_depth"`
	BinFull     bool            `json:"bin_full"`
	Scanners    map[string]bool `json:"scanners"` // connected, by name
	// Compartments and their states (since lockerd 0.15; absent before):
	// the central's console draws the cabinet from them.
	Compartments []TeleCompartment `json:"compartments,omitempty"`
}

// TeleCompartment is one compartment in the telemetry.
type TeleCompartment struct {
	ID           string `json:"id"`
	Size         string `json:"size"`
	State        string `json:"state"`
	DoorOpen     bool   `json:"door_open,omitempty"`
	OutOfService bool   `json:"out_of_service,omitempty"`
}

// SealManifest signs m (with the central's key, or a release key kept
// off the hub: lockerhub release sign).
func SealManifest(m Manifest, priv ed25519.PrivateKey) ([]byte, error) {
	body, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return Seal(body, priv)
}

// OpenManifest verifies a signed manifest with the first of keys that
// checks it and reads it; a manifest of no binary (no size, no SHA-256)
// is refused as well.
func OpenManifest(raw []byte, keys []ed25519.PublicKey) (Manifest, error) {
	var m Manifest
	if len(keys) == 0 {
		return m, errors.New("no key to check it with")
	}
	var body []byte
	var err error
	for _, k := range keys {
		if body, err = Open(raw, k); err == nil {
			break
		}
	}
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return m, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if m.Size <= 0 || len(m.SHA256) != 64 || m.Version == "" || m.Arch == "" {
		return m, fmt.Errorf("%w: a manifest of no binary", ErrMalformed)
	}
	if m.NextKey != "" {
		if _, err := ParsePublicKey(m.NextKey); err != nil {
			return m, fmt.Errorf("%w: next_key: %v", ErrMalformed, err)
		}
	}
	return m, nil
}

// Digest is what a manifest says of a binary read from r: its size and
// its SHA-256 (hex). The hub, lockerhub release sign and the locker all
// measure a binary with it.
func Digest(r io.Reader) (size int64, sha256Hex string, err error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	return n, hex.EncodeToString(h.Sum(nil)), err
}

// DigestFile is Digest of the file at path.
func DigestFile(path string) (size int64, sha256Hex string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	return Digest(f)
}
