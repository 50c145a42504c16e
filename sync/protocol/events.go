package protocol

import (
	"encoding/json"
	"fmt"
	"time"
)

// The wire form of each uplink event's data (Event.Data), by event type.
// The locker core records the same fields (locker.EventData); a test
// checks the two agree field for field, and docs/protocol.md and
// docs/asyncapi.yaml list exactly these. Fields are in name order (v1's
// JSON was written from maps, whose keys encoding/json sorts).

// Event types.
const (
	EvDaemonStarted       = "daemon.started"
	EvPickupCompleted     = "pickup.completed"
	EvPickupDenied        = "pickup.denied"
	EvLockoutStarted      = "lockout.started"
	EvOrderLoaded         = "order.loaded"
	EvOrderExpired        = "order.expired"
	EvOrderRetrieved      = "order.retrieved"
	EvItemReturned        = "item.returned"
	EvReturnRefused       = "return.refused"
	EvReturnBinFull       = "return_bin.full"
	EvDoorOpened          = "door.opened"
	EvDoorClosed          = "door.closed"
	EvDoorForced          = "door.forced"
	EvDoorLeftOpen        = "door.left_open"
	EvDoorJammed          = "door.jammed"
	EvCompartmentService  = "compartment.service"
	EvScannerConnected    = "scanner.connected"
	EvScannerDisconnected = "scanner.disconnected"
	EvHardwareFault       = "hardware.fault"
	EvHardwareRecovered   = "hardware.recovered"
	EvMaintenanceOpen     = "maintenance.open"
	EvStoreLowSpace       = "store.low_space"
	EvLoadNoSpace         = "load.no_space"
	EvHoldScanQueued      = "hold.scan_queued"
	EvReturnBinEmptied    = "return_bin.emptied"
	EvLoadEmpty           = "load.empty"
	EvPickupItemsLeft     = "pickup.items_left"
	EvRetrieveItemsLeft   = "retrieve.items_left"
	EvConfigApplied       = "config.applied"
	EvConfigRejected      = "config.rejected"
	EvUpdateApplied       = "update.applied"
	EvUpdateFailed        = "update.failed"
	EvIdentityConflict    = "identity.conflict"
)

// DaemonStarted is daemon.started.
type DaemonStarted struct {
	Compartments int      `json:"compartments"`
	DoorsOpen    []string `json:"doors_open"`
	Version      string   `json:"version"`
}

// PickupCompleted is pickup.completed.
type PickupCompleted struct {
	By           string   `json:"by,omitempty"` // the volunteer badge that collected it (since 0.16)
	Compartments []string `json:"compartments"`
	Late         bool     `json:"late,omitempty"`
	OrderID      string   `json:"order_id"`
	Scanner      string   `json:"scanner,omitempty"`
	Via          string   `json:"via"`
}

// Refusal is pickup.denied and return.refused.
type Refusal struct {
	Count   int       `json:"count,omitempty"`
	Reason  string    `json:"reason"`
	Scanner string    `json:"scanner"`
	Since   time.Time `json:"since,omitzero"`
	Until   time.Time `json:"until,omitzero"`
}

// LockoutStarted is lockout.started.
type LockoutStarted struct {
	Scanner string    `json:"scanner"`
	Until   time.Time `json:"until"`
}

// OrderLoaded is order.loaded.
type OrderLoaded struct {
	By          string `json:"by,omitempty"` // since 0.16
	Compartment string `json:"compartment"`
	OrderID     string `json:"order_id"`
	Via         string `json:"via,omitempty"`
}

// OrderExpired is order.expired.
type OrderExpired struct {
	Compartments []string `json:"compartments"`
	OrderID      string   `json:"order_id"`
}

// OrderRetrieved is order.retrieved.
type OrderRetrieved struct {
	By          string `json:"by,omitempty"` // since 0.16
	Compartment string `json:"compartment"`
	OrderID     string `json:"order_id"`
}

// ItemReturned is item.returned.
type ItemReturned struct {
	Barcode string `json:"barcode"`
	Late    bool   `json:"late,omitempty"`
	Scanner string `json:"scanner"`
}

// ReturnBinFull is return_bin.full.
type ReturnBinFull struct {
	Source string `json:"source"`
}

// DoorOpened is door.opened.
type DoorOpened struct {
	AtStart     bool   `json:"at_start,omitempty"`
	Commanded   bool   `json:"commanded"`
	Compartment string `json:"compartment"`
	Late        bool   `json:"late,omitempty"`
}

// DoorChange is door.closed and door.forced.
type DoorChange struct {
	Commanded   bool   `json:"commanded"`
	Compartment string `json:"compartment"`
}

// DoorLeftOpen is door.left_open.
type DoorLeftOpen struct {
	Commanded   bool   `json:"commanded"`
	Compartment string `json:"compartment"`
	OpenS       int    `json:"open_s"`
}

// DoorJammed is door.jammed.
type DoorJammed struct {
	Commanded   bool   `json:"commanded"`
	Compartment string `json:"compartment"`
	Jams        *int   `json:"jams,omitempty"`
	LockError   string `json:"lock_error,omitempty"`
}

// CompartmentService is compartment.service.
type CompartmentService struct {
	By          string `json:"by,omitempty"` // since 0.16
	Compartment string `json:"compartment"`
	InService   bool   `json:"in_service"`
	Reason      string `json:"reason"`
}

// ScannerState is scanner.connected and scanner.disconnected.
type ScannerState struct {
	Detail  string `json:"detail,omitempty"`
	Scanner string `json:"scanner"`
}

// HardwareState is hardware.fault and hardware.recovered.
type HardwareState struct {
	Detail string `json:"detail,omitempty"`
	Device string `json:"device"`
}

// MaintenanceOpen is maintenance.open.
type MaintenanceOpen struct {
	By          string `json:"by,omitempty"` // since 0.16
	Compartment string `json:"compartment"`
	OrderID     string `json:"order_id,omitempty"`
	Reason      string `json:"reason"`
	Remote      bool   `json:"remote,omitempty"`
}

// StoreLowSpace is store.low_space.
type StoreLowSpace struct {
	HeadroomBytes int64 `json:"headroom_bytes"`
	MinFreeBytes  int64 `json:"min_free_bytes"`
}

// LoadNoSpace is load.no_space.
type LoadNoSpace struct {
	Accessible bool   `json:"accessible,omitempty"`
	OrderID    string `json:"order_id"`
	Size       string `json:"size"`
}

// HoldScanQueued is hold.scan_queued: staff scanned an item with no order
// while the central could not be asked (since 0.19).
type HoldScanQueued struct {
	By    string `json:"by"`
	Item  string `json:"item"`
	Visit string `json:"visit"`
}

// ReturnBinEmptied is return_bin.emptied: the barcodes returned since the
// last emptying (the newest 2000) and how many there were.
type ReturnBinEmptied struct {
	By        string   `json:"by,omitempty"`
	Count     int      `json:"count"`
	Items     []string `json:"items"`
	StillFull bool     `json:"still_full,omitempty"`
}

// ItemsCheck is load.empty, pickup.items_left and retrieve.items_left:
// what a compartment's item sensor read when its door closed.
type ItemsCheck struct {
	Compartment string `json:"compartment"`
	OrderID     string `json:"order_id"`
}

// ConfigApplied is config.applied.
type ConfigApplied struct {
	Version uint64 `json:"version"`
}

// ConfigRejected is config.rejected.
type ConfigRejected struct {
	Reasons    []string `json:"reasons"`
	RolledBack bool     `json:"rolled_back,omitempty"`
	Version    uint64   `json:"version"`
}

// UpdateApplied is update.applied.
type UpdateApplied struct {
	From    string `json:"from"`
	Version string `json:"version"`
}

// UpdateFailed is update.failed.
type UpdateFailed struct {
	Reasons    []string `json:"reasons"`
	RolledBack bool     `json:"rolled_back,omitempty"`
	Version    string   `json:"version"`
}

// IdentityConflict is identity.conflict.
type IdentityConflict struct {
	BirthsSeen       int    `json:"births_seen"`
	ConnectionLosses int    `json:"connection_losses"`
	OtherBoot        uint64 `json:"other_boot"`
	OtherInstance    string `json:"other_instance"`
	OtherStore       string `json:"other_store"`
	SameStore        bool   `json:"same_store"`
}

// EventPayloads makes, for each event type, a pointer to its zero data.
var EventPayloads = map[string]func() any{
	EvDaemonStarted:       func() any { return &DaemonStarted{} },
	EvPickupCompleted:     func() any { return &PickupCompleted{} },
	EvPickupDenied:        func() any { return &Refusal{} },
	EvLockoutStarted:      func() any { return &LockoutStarted{} },
	EvOrderLoaded:         func() any { return &OrderLoaded{} },
	EvOrderExpired:        func() any { return &OrderExpired{} },
	EvOrderRetrieved:      func() any { return &OrderRetrieved{} },
	EvItemReturned:        func() any { return &ItemReturned{} },
	EvReturnRefused:       func() any { return &Refusal{} },
	EvReturnBinFull:       func() any { return &ReturnBinFull{} },
	EvDoorOpened:          func() any { return &DoorOpened{} },
	EvDoorClosed:          func() any { return &DoorChange{} },
	EvDoorForced:          func() any { return &DoorChange{} },
	EvDoorLeftOpen:        func() any { return &DoorLeftOpen{} },
	EvDoorJammed:          func() any { return &DoorJammed{} },
	EvCompartmentService:  func() any { return &CompartmentService{} },
	EvScannerConnected:    func() any { return &ScannerState{} },
	EvScannerDisconnected: func() any { return &ScannerState{} },
	EvHardwareFault:       func() any { return &HardwareState{} },
	EvHardwareRecovered:   func() any { return &HardwareState{} },
	EvMaintenanceOpen:     func() any { return &MaintenanceOpen{} },
	EvStoreLowSpace:       func() any { return &StoreLowSpace{} },
	EvLoadNoSpace:         func() any { return &LoadNoSpace{} },
	EvHoldScanQueued:      func() any { return &HoldScanQueued{} },
	EvReturnBinEmptied:    func() any { return &ReturnBinEmptied{} },
	EvLoadEmpty:           func() any { return &ItemsCheck{} },
	EvPickupItemsLeft:     func() any { return &ItemsCheck{} },
	EvRetrieveItemsLeft:   func() any { return &ItemsCheck{} },
	EvConfigApplied:       func() any { return &ConfigApplied{} },
	EvConfigRejected:      func() any { return &ConfigRejected{} },
	EvUpdateApplied:       func() any { return &UpdateApplied{} },
	EvUpdateFailed:        func() any { return &UpdateFailed{} },
	EvIdentityConflict:    func() any { return &IdentityConflict{} },
}

// DecodeEventData decodes e's data into a pointer to its type's wire form
// (*PickupCompleted for pickup.completed, ...). An unknown type (a newer
// locker's) is an error the caller may ignore: the event is still stored.
func DecodeEventData(e Event) (any, error) {
	mk, ok := EventPayloads[e.Type]
	if !ok {
		return nil, fmt.Errorf("%w: event %s", ErrUnknownType, e.Type)
	}
	p := mk()
	if err := json.Unmarshal(e.Data, p); err != nil {
		return nil, fmt.Errorf("%w: event %s data: %v", ErrMalformed, e.Type, err)
	}
	return p, nil
}

// Fields is the event's data as a generic map, for tools and tests that
// match on fields by name (nil if it is not a JSON object).
func (e Event) Fields() map[string]any {
	var m map[string]any
	_ = json.Unmarshal(e.Data, &m)
	return m
}
