package locker

import (
	"fmt"
	"time"
)

// Size is a compartment or order size. Sizes are ordered: an order fits
// any compartment of its own size or larger.
type Size string

const (
	SizeS  Size = "S"
	SizeM  Size = "M"
	SizeL  Size = "L"
	SizeXL Size = "XL"
)

// Rank orders sizes from small to large; 0 means not a size.
func (s Size) Rank() int {
	switch s {
	case SizeS:
		return 1
	case SizeM:
		return 2
	case SizeL:
		return 3
	case SizeXL:
		return 4
	}
	return 0
}

// Valid reports whether s is one of S, M, L, XL.
func (s Size) Valid() bool { return s.Rank() > 0 }

// Fits reports whether an order of size s fits a compartment of size c.
func (s Size) Fits(c Size) bool { return s.Valid() && c.Valid() && s.Rank() <= c.Rank() }

// CompartmentState is what a compartment holds, or that it cannot be used.
type CompartmentState string

const (
	CompFree         CompartmentState = "free"
	CompReserved     CompartmentState = "reserved" // pre-assigned to an order not yet loaded
	CompLoaded       CompartmentState = "loaded"   // holds an order's items
	CompOpen         CompartmentState = "open"     // door open for a pickup, load or retrieval
	CompOutOfService CompartmentState = "out_of_service"
)

// Op is the operation a compartment's door was opened for; it decides what
// the door closing means.
type Op string

const (
	OpNone     Op = ""
	OpLoad     Op = "load"
	OpPickup   Op = "pickup"
	OpRetrieve Op = "retrieve"
)

// Compartment is one door of the cabinet.
type Compartment struct {
	ID     string `json:"id"`
	Size   Size   `json:"size"`
	Lock   string `json:"lock"`   // lock output pin name
	Sensor string `json:"sensor"` // door sensor input pin name
	// ItemSensor is the input that reads active while something lies in
	// the compartment ("" = none: nothing is checked).
	ItemSensor string `json:"item_sensor,omitempty"`
	// Accessible: reachable from a wheelchair (low enough, room in
	// front); orders marked accessible go only here.
	Accessible bool `json:"accessible,omitempty"`

	State   CompartmentState `json:"state"`
	OrderID string           `json:"order_id,omitempty"` // order reserved, loaded or being handled
	Op      Op               `json:"op,omitempty"`       // set while State is open
	By      string           `json:"by,omitempty"`       // the badge it is open for, while State is open
	// InService is false when the compartment was taken out of service (by
	// a technician, a remote command, or after repeated jams). The
	// occupancy state is kept so that nothing is forgotten meanwhile.
	OutOfService bool `json:"out_of_service,omitempty"`
	Jams         int  `json:"jams,omitempty"` // consecutive failed opens
}

// EffectiveState is State, or out_of_service when the compartment is out
// of service.
func (c Compartment) EffectiveState() CompartmentState {
	if c.OutOfService {
		return CompOutOfService
	}
	return c.State
}

// OrderState is where an order is in its life.
type OrderState string

const (
	OrderAssigned  OrderState = "assigned" // known here, books not yet loaded
	OrderReady     OrderState = "ready"    // loaded, waiting for the reader
	OrderPickedUp  OrderState = "picked_up"
	OrderExpired   OrderState = "expired"
	OrderCancelled OrderState = "cancelled"
	OrderRetrieved OrderState = "retrieved" // staff took uncollected books back out
)

// Valid reports whether s is a known order state.
func (s OrderState) Valid() bool {
	switch s {
	case OrderAssigned, OrderReady, OrderPickedUp, OrderExpired, OrderCancelled, OrderRetrieved:
		return true
	}
	return false
}

// Terminal reports whether nothing more can happen to an order in state s.
func (s OrderState) Terminal() bool { return s == OrderPickedUp || s == OrderRetrieved }

// transitions is the order state machine. cancelled → retrieved is only
// allowed for an order whose items were loaded (checked in Order.CanMove).
var transitions = map[OrderState][]OrderState{
	OrderAssigned:  {OrderReady, OrderCancelled},
	OrderReady:     {OrderPickedUp, OrderExpired, OrderCancelled},
	OrderExpired:   {OrderRetrieved},
	OrderCancelled: {OrderRetrieved},
}

// ErrIllegalTransition is wrapped by every refused state change.
var ErrIllegalTransition = fmt.Errorf("illegal order transition")

// CheckTransition returns nil if an order may go from one state to the other.
func CheckTransition(from, to OrderState) error {
	for _, t := range transitions[from] {
		if t == to {
			return nil
		}
	}
	return fmt.Errorf("%w: %s → %s", ErrIllegalTransition, from, to)
}

// Item is one book of an order.
type Item struct {
	Barcode string `json:"barcode"`
	Title   string `json:"title,omitempty"`
}

// Order is a reader's order waiting in (or on its way to) this locker.
type Order struct {
	ID    string     `json:"id"`
	Rev   uint64     `json:"rev"` // set by the central library; newer rev wins
	State OrderState `json:"state"`
	Size  Size       `json:"size"`
	Items []Item     `json:"items,omitempty"`
	// Accessible: the reader needs a compartment reachable from a
	// wheelchair; it is loaded only into an accessible one.
	Accessible bool `json:"accessible,omitempty"`
	// Assigned is the compartment the central library pre-assigned, if any.
	Assigned string `json:"compartment,omitempty"`
	// Compartments are the compartments the order's items are in once loaded.
	Compartments []string `json:"compartments,omitempty"`
	CodeHash     string   `json:"code_hash"`
	// PatronHash is the keyed hash of the reader's library card
	// (PatronHash), never the card number: a card and PIN checked by the
	// central open the reader's orders here.
	PatronHash string `json:"patron_hash,omitempty"`
	// Delivery: a community volunteer or courier collects it for the
	// reader (a volunteer badge opens every such ready order here).
	Delivery  bool      `json:"delivery,omitempty"`
	ExpiresAt time.Time `json:"expires_at"`
	// LoadedAt, PickedUpAt record the physical facts at this locker.
	LoadedAt   time.Time `json:"loaded_at,omitzero"`
	PickedUpAt time.Time `json:"picked_up_at,omitzero"`
	// Loaded is true once the order's items went into a compartment; it
	// decides whether a cancelled order needs retrieving.
	Loaded bool `json:"loaded,omitempty"`
	// FactSeq is the seq of the last event recording a physical fact about
	// the order here (loaded, picked up, retrieved). Until the central
	// library acks it, the central library cannot overrule that fact.
	FactSeq uint64 `json:"fact_seq,omitempty"`
	// EndedAt is when nothing more could happen to the order here (see
	// Ended): it is purged store.retention after.
	EndedAt time.Time `json:"ended_at,omitzero"`
}

// Ended reports whether the order is over at this locker: picked up,
// retrieved, or cancelled before its books were loaded.
func (o Order) Ended() bool {
	return o.State == OrderPickedUp || o.State == OrderRetrieved || o.State == OrderCancelled && !o.Loaded
}

// Live reports whether the order still holds its code here: not yet
// loaded, waiting, or expired and not yet taken back out.
func (o Order) Live() bool {
	return o.State == OrderAssigned || o.State == OrderReady || o.State == OrderExpired
}

// markEnded stamps EndedAt once the order has ended.
func (o *Order) markEnded(now time.Time) {
	if o.Ended() && o.EndedAt.IsZero() {
		o.EndedAt = now.UTC()
	}
}

// Move changes the order's state if the state machine allows it.
func (o *Order) Move(to OrderState) error {
	if err := CheckTransition(o.State, to); err != nil {
		return fmt.Errorf("order %s: %w", o.ID, err)
	}
	if o.State == OrderCancelled && to == OrderRetrieved && !o.Loaded {
		return fmt.Errorf("order %s: %w: cancelled before loading, nothing to retrieve", o.ID, ErrIllegalTransition)
	}
	o.State = to
	return nil
}

// NeedsRetrieval reports whether staff must take this order's items out.
func (o Order) NeedsRetrieval() bool {
	return o.Loaded && (o.State == OrderExpired || o.State == OrderCancelled)
}
