package locker

import "time"

// Event types the core records. They are the protocol's uplink events.
const (
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
	EvDaemonStarted       = "daemon.started"
	// EvIdentityConflict: another cabinet is using this locker's id (a
	// cloned SD card): its birth messages keep taking this one's place.
	EvIdentityConflict = "identity.conflict"
)

// Denial reasons of pickup.denied.
const (
	DenyUnknown   = "unknown"
	DenyExpired   = "expired"
	DenyCancelled = "cancelled"
	DenyNotReady  = "not_ready"
	DenyLockedOut = "locked_out"
)

// Event is one outbox record. Seq is assigned by the store.
type Event struct {
	Seq  uint64         `json:"seq"`
	Type string         `json:"type"`
	TS   time.Time      `json:"ts"`
	Boot uint64         `json:"boot"`
	Data map[string]any `json:"data"`
}

// ReturnSlotID names the return slot where a compartment id is expected
// (door events of the return flap).
const ReturnSlotID = "return"
