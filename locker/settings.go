package locker

import (
	"fmt"
	"regexp"
	"time"
)

// CheckLockerID checks a locker id: it becomes an MQTT topic level and a
// client id in every supported broker (Mosquitto, NATS, the embedded one),
// and part of event ids, so only ASCII letters, digits, '-' and '_', up to
// 64, starting with a letter or digit ('+', '#', '/', '.', spaces and
// non-ASCII are refused).
func CheckLockerID(id string) error {
	if id == "" || len(id) > 64 {
		return fmt.Errorf("locker id %q: want 1 to 64 characters", id)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || i > 0 && (c == '-' || c == '_')
		if !ok {
			return fmt.Errorf("locker id %q: use ASCII letters, digits, '-' and '_', starting with a letter or digit (it becomes an MQTT topic level)", id)
		}
	}
	return nil
}

// Policy holds the timing rules of the flows.
type Policy struct {
	MaxFailedCodes    int
	FailedWindow      time.Duration
	Lockout           time.Duration
	LockoutMax        time.Duration
	DoorOpenConfirm   time.Duration
	DoorLeftOpenAlarm time.Duration
	ReopenGrace       time.Duration
	StaffIdle         time.Duration
}

// DefaultPolicy is the policy of a config that sets none.
func DefaultPolicy() Policy {
	return Policy{
		MaxFailedCodes:    5,
		FailedWindow:      60 * time.Second,
		Lockout:           30 * time.Second,
		LockoutMax:        15 * time.Minute,
		DoorOpenConfirm:   3 * time.Second,
		DoorLeftOpenAlarm: 60 * time.Second,
		ReopenGrace:       2 * time.Minute,
		StaffIdle:         2 * time.Minute,
	}
}

// Lock pulse bounds: a lock coil held longer overheats, and a shorter pulse
// does not reliably release the latch.
const (
	MinLockPulse = 50 * time.Millisecond
	MaxLockPulse = 2 * time.Second
)

// ClampPulse bounds d to [MinLockPulse, MaxLockPulse]. Drivers call it too,
// so that no caller can hold a lock energised.
func ClampPulse(d time.Duration) time.Duration { return min(max(d, MinLockPulse), MaxLockPulse) }

// Role is what an input device is for.
type Role string

const (
	RolePickup Role = "pickup" // readers' pickup codes and staff badges
	RoleReturn Role = "return" // returned items' barcodes
)

// Device is an input device (scanner or keypad).
type Device struct {
	Name string
	Role Role
}

// ReturnSlot is the return flap with its bin.
type ReturnSlot struct {
	Lock          string
	Sensor        string // flap sensor; empty if the flap has none
	BinFullSensor string // empty if the bin has none
	// ServiceLock is the lock of the bin's staff door ("" = a keyed door:
	// EMPTYBIN records the emptying at once); ServiceSensor its door
	// sensor ("" = the emptying is recorded when the lock is pulsed).
	ServiceLock   string
	ServiceSensor string
	Pattern       *regexp.Regexp
}

// Settings is everything the core needs from the configuration.
type Settings struct {
	LockerID            string
	Policy              Policy
	LockPulse           time.Duration
	MaxConcurrentPulses int
	Compartments        []Compartment // id, size, lock, sensor
	Devices             []Device
	Return              *ReturnSlot // nil: no return slot
	StaffBadges         []string    // anonymous staff badges: code hashes (security.staff_badges)
	Badges              []Badge     // named badges with roles (security.badges)
	Buzzer              string      // signal output pin; "" = none
	StatusLED           string      // signal output pin; "" = none
	// Retention is how long an ended order is kept (0: for ever).
	Retention time.Duration
	// Standalone: no central library acknowledges events, so an ended
	// order is purged without waiting for its fact to be acknowledged.
	Standalone bool
}

func (s Settings) validate() error {
	if s.LockerID == "" {
		return fmt.Errorf("settings: locker id is empty")
	}
	if s.MaxConcurrentPulses < 1 {
		return fmt.Errorf("settings: max concurrent pulses must be at least 1")
	}
	if s.Policy.MaxFailedCodes < 1 {
		return fmt.Errorf("settings: max failed codes must be at least 1")
	}
	seen := map[string]bool{}
	for _, c := range s.Compartments {
		if seen[c.ID] || c.ID == ReturnSlotID || c.ID == ReturnBinID {
			return fmt.Errorf("settings: compartment id %q used twice or reserved", c.ID)
		}
		seen[c.ID] = true
		if !c.Size.Valid() {
			return fmt.Errorf("settings: compartment %s: bad size %q", c.ID, c.Size)
		}
	}
	return nil
}
