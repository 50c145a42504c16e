package locker

import (
	"encoding/json"
	"fmt"
	"time"
)

// EventType names an event the core records. Event types are the
// protocol's uplink events (docs/protocol.md, docs/asyncapi.yaml).
type EventType string

// Event types the core records.
const (
	EvDaemonStarted       EventType = "daemon.started"
	EvPickupCompleted     EventType = "pickup.completed"
	EvPickupDenied        EventType = "pickup.denied"
	EvLockoutStarted      EventType = "lockout.started"
	EvOrderLoaded         EventType = "order.loaded"
	EvOrderExpired        EventType = "order.expired"
	EvOrderRetrieved      EventType = "order.retrieved"
	EvItemReturned        EventType = "item.returned"
	EvReturnRefused       EventType = "return.refused"
	EvReturnBinFull       EventType = "return_bin.full"
	EvDoorOpened          EventType = "door.opened"
	EvDoorClosed          EventType = "door.closed"
	EvDoorForced          EventType = "door.forced"
	EvDoorLeftOpen        EventType = "door.left_open"
	EvDoorJammed          EventType = "door.jammed"
	EvCompartmentService  EventType = "compartment.service"
	EvScannerConnected    EventType = "scanner.connected"
	EvScannerDisconnected EventType = "scanner.disconnected"
	EvHardwareFault       EventType = "hardware.fault"
	EvHardwareRecovered   EventType = "hardware.recovered"
	EvMaintenanceOpen     EventType = "maintenance.open"
	EvStoreLowSpace       EventType = "store.low_space"
	EvLoadNoSpace         EventType = "load.no_space"
	EvHoldScanQueued      EventType = "hold.scan_queued"
	EvReturnBinEmptied    EventType = "return_bin.emptied"
	EvLoadEmpty           EventType = "load.empty"
	EvPickupItemsLeft     EventType = "pickup.items_left"
	EvRetrieveItemsLeft   EventType = "retrieve.items_left"
	EvConfigApplied       EventType = "config.applied"
	EvConfigRejected      EventType = "config.rejected"
	EvUpdateApplied       EventType = "update.applied"
	EvUpdateFailed        EventType = "update.failed"
	// EvIdentityConflict: another cabinet is using this locker's id (a
	// cloned SD card): its birth messages keep taking this one's place.
	EvIdentityConflict EventType = "identity.conflict"
)

// Denial reasons of pickup.denied.
const (
	DenyUnknown   = "unknown"
	DenyExpired   = "expired"
	DenyCancelled = "cancelled"
	DenyNotReady  = "not_ready"
	DenyLockedOut = "locked_out"
)

// Event is one outbox record. Seq is assigned by the store; Data is the
// JSON of the event's payload (one of the EventData types, by Type).
type Event struct {
	Seq  uint64          `json:"seq"`
	Type EventType       `json:"type"`
	TS   time.Time       `json:"ts"`
	Boot uint64          `json:"boot"`
	Data json.RawMessage `json:"data"`
}

// DataOf is the JSON of payload d, as Event.Data holds it. The payload
// types are plain structs: encoding them cannot fail.
func DataOf(d EventData) json.RawMessage {
	raw, err := json.Marshal(d)
	if err != nil {
		panic(fmt.Sprintf("event %s: %v", d.EventType(), err))
	}
	return raw
}

// Fields is the payload as a generic map, for tools and tests that match
// on fields by name (nil if it is not a JSON object).
func (e Event) Fields() map[string]any {
	var m map[string]any
	_ = json.Unmarshal(e.Data, &m)
	return m
}

// Payload decodes the event's data into a pointer to its type's payload
// (*PickupCompleted for pickup.completed, ...).
func (e Event) Payload() (EventData, error) {
	mk, ok := payloads[e.Type]
	if !ok {
		return nil, fmt.Errorf("event %d: unknown type %q", e.Seq, e.Type)
	}
	p := mk()
	if err := json.Unmarshal(e.Data, p); err != nil {
		return nil, fmt.Errorf("event %d (%s): %w", e.Seq, e.Type, err)
	}
	return p, nil
}

// ReturnSlotID names the return slot where a compartment id is expected
// (door events of the return flap).
const ReturnSlotID = "return"

// EventData is the payload of one event type. Each type's JSON fields are
// declared in name order: the wire form of protocol v1 was written from
// maps, whose keys encoding/json sorts, and stays byte for byte the same.
type EventData interface {
	EventType() EventType
}

// EventTypes lists every event type with a pointer to a zero payload.
func EventTypes() map[EventType]EventData {
	out := map[EventType]EventData{}
	for t, mk := range payloads {
		out[t] = mk()
	}
	return out
}

// payloads makes a pointer to a zero payload of each event type.
var payloads = map[EventType]func() EventData{
	EvDaemonStarted:       func() EventData { return &DaemonStarted{} },
	EvPickupCompleted:     func() EventData { return &PickupCompleted{} },
	EvPickupDenied:        func() EventData { return &PickupDenied{} },
	EvLockoutStarted:      func() EventData { return &LockoutStarted{} },
	EvOrderLoaded:         func() EventData { return &OrderLoaded{} },
	EvOrderExpired:        func() EventData { return &ExpiredOrder{} },
	EvOrderRetrieved:      func() EventData { return &RetrievedOrder{} },
	EvItemReturned:        func() EventData { return &ItemReturned{} },
	EvReturnRefused:       func() EventData { return &ReturnRefused{} },
	EvReturnBinFull:       func() EventData { return &ReturnBinFull{} },
	EvDoorOpened:          func() EventData { return &DoorOpened{} },
	EvDoorClosed:          func() EventData { return &DoorClosed{} },
	EvDoorForced:          func() EventData { return &DoorForced{} },
	EvDoorLeftOpen:        func() EventData { return &DoorLeftOpen{} },
	EvDoorJammed:          func() EventData { return &DoorJammed{} },
	EvCompartmentService:  func() EventData { return &CompartmentService{} },
	EvScannerConnected:    func() EventData { return &ScannerConnected{} },
	EvScannerDisconnected: func() EventData { return &ScannerDisconnected{} },
	EvHardwareFault:       func() EventData { return &HardwareFaulted{} },
	EvHardwareRecovered:   func() EventData { return &HardwareRecovered{} },
	EvMaintenanceOpen:     func() EventData { return &MaintenanceOpened{} },
	EvStoreLowSpace:       func() EventData { return &StoreLowSpace{} },
	EvLoadNoSpace:         func() EventData { return &LoadNoSpace{} },
	EvHoldScanQueued:      func() EventData { return &HoldScanQueued{} },
	EvReturnBinEmptied:    func() EventData { return &ReturnBinEmptied{} },
	EvLoadEmpty:           func() EventData { return &LoadEmpty{} },
	EvPickupItemsLeft:     func() EventData { return &PickupItemsLeft{} },
	EvRetrieveItemsLeft:   func() EventData { return &RetrieveItemsLeft{} },
	EvConfigApplied:       func() EventData { return &ConfigApplied{} },
	EvConfigRejected:      func() EventData { return &ConfigRejected{} },
	EvUpdateApplied:       func() EventData { return &UpdateApplied{} },
	EvUpdateFailed:        func() EventData { return &UpdateFailed{} },
	EvIdentityConflict:    func() EventData { return &IdentityConflict{} },
}

// DaemonStarted: lockerd started.
type DaemonStarted struct {
	Compartments int      `json:"compartments"` // how many
	DoorsOpen    []string `json:"doors_open"`   // ids found open
	Version      string   `json:"version"`
}

// PickupCompleted: every door of the order opened for the reader.
type PickupCompleted struct {
	// By is the name of the badge that collected it (a volunteer's).
	By           string   `json:"by,omitempty"`
	Compartments []string `json:"compartments"`
	Late         bool     `json:"late,omitempty"` // the door opened after its confirm window
	OrderID      string   `json:"order_id"`
	Scanner      string   `json:"scanner,omitempty"` // absent for a remote open
	Via          string   `json:"via"`               // ViaScan, ViaKeypad, ViaRemote
}

// Refusal is a refused code or return, aggregated in bursts (refusals.go):
// Count and Since sum up the refusals of a burst after its first.
type Refusal struct {
	Count   int       `json:"count,omitempty"`
	Reason  string    `json:"reason"`
	Scanner string    `json:"scanner"`
	Since   time.Time `json:"since,omitzero"`
	Until   time.Time `json:"until,omitzero"` // refused for a lockout: its end
}

// PickupDenied: a code refused; the code itself is never sent.
type PickupDenied struct{ Refusal }

// ReturnRefused: a return refused; the scanned text is never sent.
type ReturnRefused struct{ Refusal }

// LockoutStarted: too many failed codes on one input device.
type LockoutStarted struct {
	Scanner string    `json:"scanner"`
	Until   time.Time `json:"until"`
}

// OrderLoaded: staff closed the door on an order's books.
type OrderLoaded struct {
	By          string `json:"by,omitempty"` // the badge that loaded it
	Compartment string `json:"compartment"`
	OrderID     string `json:"order_id"`
	Via         string `json:"via,omitempty"` // "local": created at the locker
}

// ExpiredOrder: a ready order passed its expiry.
type ExpiredOrder struct {
	Compartments []string `json:"compartments"`
	OrderID      string   `json:"order_id"`
}

// RetrievedOrder: staff took an expired or cancelled order's books out.
type RetrievedOrder struct {
	By          string `json:"by,omitempty"` // the badge that took it out
	Compartment string `json:"compartment"`
	OrderID     string `json:"order_id"`
}

// ItemReturned: a returned item went through the return flap.
type ItemReturned struct {
	Barcode string `json:"barcode"`
	Late    bool   `json:"late,omitempty"` // the flap opened after its confirm window
	Scanner string `json:"scanner"`
}

// ReturnBinEmptied: staff emptied the return bin; Items are the
// barcodes returned since the last emptying (the newest MaxBinItems),
// Count all of them. StillFull: the bin-full sensor still reads full.
type ReturnBinEmptied struct {
	By        string   `json:"by,omitempty"`
	Count     int      `json:"count"`
	Items     []string `json:"items"`
	StillFull bool     `json:"still_full,omitempty"`
}

// LoadEmpty: a load's door closed and the compartment's item sensor
// reads nothing inside.
type LoadEmpty struct {
	Compartment string `json:"compartment"`
	OrderID     string `json:"order_id"`
}

// PickupItemsLeft: a pickup's door closed with the item sensor still
// reading something inside (the reopen grace lets the reader scan again).
type PickupItemsLeft struct {
	Compartment string `json:"compartment"`
	OrderID     string `json:"order_id"`
}

// RetrieveItemsLeft: a retrieval's door closed with something still
// inside.
type RetrieveItemsLeft struct {
	Compartment string `json:"compartment"`
	OrderID     string `json:"order_id"`
}

// ConfigApplied: a configuration the central pushed (cmd.config) runs,
// healthy.
type ConfigApplied struct {
	Version uint64 `json:"version"`
}

// ConfigRejected: a pushed configuration was refused (it does not
// validate here, it drops a compartment that holds an order) or did not
// become healthy in time and the previous one runs again.
type ConfigRejected struct {
	Reasons    []string `json:"reasons"`
	RolledBack bool     `json:"rolled_back,omitempty"` // it ran, and the previous one was restored
	Version    uint64   `json:"version"`
}

// UpdateApplied: lockerd runs a new version, healthy.
type UpdateApplied struct {
	From    string `json:"from"`
	Version string `json:"version"`
}

// UpdateFailed: a software update was refused (signature, hash,
// downgrade, it does not start) or ran and was not healthy in time and
// the previous version runs again.
type UpdateFailed struct {
	Reasons    []string `json:"reasons"`
	RolledBack bool     `json:"rolled_back,omitempty"`
	Version    string   `json:"version"`
}

// ReturnBinFull: the return bin reads full.
type ReturnBinFull struct {
	Source string `json:"source"` // "sensor" or "return_refused"
}

// DoorOpened: a door sensor reads open.
type DoorOpened struct {
	AtStart     bool   `json:"at_start,omitempty"` // found open at start-up
	Commanded   bool   `json:"commanded"`
	Compartment string `json:"compartment"`
	Late        bool   `json:"late,omitempty"` // a late opening of a pulse (completes its operation)
}

// DoorClosed: a door sensor reads closed.
type DoorClosed struct {
	Commanded   bool   `json:"commanded"` // whether its opening was commanded
	Compartment string `json:"compartment"`
}

// DoorForced: a door opened with no command: an alarm.
type DoorForced struct {
	Commanded   bool   `json:"commanded"` // false
	Compartment string `json:"compartment"`
}

// DoorLeftOpen: a door open longer than the alarm period, repeated every
// period.
type DoorLeftOpen struct {
	Commanded   bool   `json:"commanded"`
	Compartment string `json:"compartment"`
	OpenS       int    `json:"open_s"`
}

// DoorJammed: the lock was pulsed but the door did not open in time; it
// is not pulsed again by itself.
type DoorJammed struct {
	Commanded   bool   `json:"commanded"` // true
	Compartment string `json:"compartment"`
	Jams        *int   `json:"jams,omitempty"`       // jams in a row (absent for the return flap)
	LockError   string `json:"lock_error,omitempty"` // the lock driver itself failed: no jam counted
}

// CompartmentService: a compartment taken out of service or put back.
type CompartmentService struct {
	By          string `json:"by,omitempty"` // the badge that did it
	Compartment string `json:"compartment"`
	InService   bool   `json:"in_service"`
	Reason      string `json:"reason"` // "jammed" after two jams in a row, "technician", "remote", ...
}

// ScannerState is a serial scanner that appeared or went away.
type ScannerState struct {
	Detail  string `json:"detail,omitempty"`
	Scanner string `json:"scanner"`
}

// ScannerConnected: a scanner appeared.
type ScannerConnected struct{ ScannerState }

// ScannerDisconnected: a scanner went away.
type ScannerDisconnected struct{ ScannerState }

// HardwareState is part of the hardware that stopped answering, or
// answers again.
type HardwareState struct {
	Detail string `json:"detail,omitempty"`
	Device string `json:"device"`
}

// HardwareFaulted: part of the hardware stopped answering (its doors read
// as unknown).
type HardwareFaulted struct{ HardwareState }

// HardwareRecovered: it answers again.
type HardwareRecovered struct{ HardwareState }

// MaintenanceOpened: a technician or the central library opened a door;
// recorded before the lock is pulsed.
type MaintenanceOpened struct {
	By          string `json:"by,omitempty"` // the badge that opened it
	Compartment string `json:"compartment"`
	OrderID     string `json:"order_id,omitempty"` // a remote open of a ready order
	Reason      string `json:"reason"`
	Remote      bool   `json:"remote,omitempty"` // a cmd.open
}

// StoreLowSpace: the store's file system has less room than its floor
// plus the margin; recorded once per episode.
type StoreLowSpace struct {
	HeadroomBytes int64 `json:"headroom_bytes"`
	MinFreeBytes  int64 `json:"min_free_bytes"`
}

// LoadNoSpace: staff scanned an order to load and no free compartment
// fits it (nor any larger one): the central redirects it.
type LoadNoSpace struct {
	Accessible bool   `json:"accessible,omitempty"` // it needs an accessible compartment
	OrderID    string `json:"order_id"`
	Size       Size   `json:"size"`
}

// HoldScanQueued: staff scanned an item with no order here while the
// central could not be asked: the central asks the library system whose
// hold it is when the event reaches it, and the order it makes comes
// down like any other (staff load it on a later visit).
type HoldScanQueued struct {
	By    string `json:"by"`
	Item  string `json:"item"`
	Visit string `json:"visit"`
}

// IdentityConflict: another cabinet announces this locker's id.
type IdentityConflict struct {
	BirthsSeen       int    `json:"births_seen"`
	ConnectionLosses int    `json:"connection_losses"`
	OtherBoot        uint64 `json:"other_boot"`
	OtherInstance    string `json:"other_instance"`
	OtherStore       string `json:"other_store"`
	SameStore        bool   `json:"same_store"`
}

func (DaemonStarted) EventType() EventType       { return EvDaemonStarted }
func (PickupCompleted) EventType() EventType     { return EvPickupCompleted }
func (PickupDenied) EventType() EventType        { return EvPickupDenied }
func (ReturnRefused) EventType() EventType       { return EvReturnRefused }
func (LockoutStarted) EventType() EventType      { return EvLockoutStarted }
func (OrderLoaded) EventType() EventType         { return EvOrderLoaded }
func (ExpiredOrder) EventType() EventType        { return EvOrderExpired }
func (RetrievedOrder) EventType() EventType      { return EvOrderRetrieved }
func (ItemReturned) EventType() EventType        { return EvItemReturned }
func (ReturnBinFull) EventType() EventType       { return EvReturnBinFull }
func (ReturnBinEmptied) EventType() EventType    { return EvReturnBinEmptied }
func (LoadEmpty) EventType() EventType           { return EvLoadEmpty }
func (PickupItemsLeft) EventType() EventType     { return EvPickupItemsLeft }
func (RetrieveItemsLeft) EventType() EventType   { return EvRetrieveItemsLeft }
func (ConfigApplied) EventType() EventType       { return EvConfigApplied }
func (ConfigRejected) EventType() EventType      { return EvConfigRejected }
func (UpdateApplied) EventType() EventType       { return EvUpdateApplied }
func (UpdateFailed) EventType() EventType        { return EvUpdateFailed }
func (DoorOpened) EventType() EventType          { return EvDoorOpened }
func (DoorClosed) EventType() EventType          { return EvDoorClosed }
func (DoorForced) EventType() EventType          { return EvDoorForced }
func (DoorLeftOpen) EventType() EventType        { return EvDoorLeftOpen }
func (DoorJammed) EventType() EventType          { return EvDoorJammed }
func (CompartmentService) EventType() EventType  { return EvCompartmentService }
func (ScannerConnected) EventType() EventType    { return EvScannerConnected }
func (ScannerDisconnected) EventType() EventType { return EvScannerDisconnected }
func (HardwareFaulted) EventType() EventType     { return EvHardwareFault }
func (HardwareRecovered) EventType() EventType   { return EvHardwareRecovered }
func (MaintenanceOpened) EventType() EventType   { return EvMaintenanceOpen }
func (StoreLowSpace) EventType() EventType       { return EvStoreLowSpace }
func (IdentityConflict) EventType() EventType    { return EvIdentityConflict }
func (LoadNoSpace) EventType() EventType         { return EvLoadNoSpace }
func (HoldScanQueued) EventType() EventType      { return EvHoldScanQueued }
