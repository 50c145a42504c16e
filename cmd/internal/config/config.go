package config

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/lockerd/lockerd/drivers/pinname"
	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/locker/loopback"
	"github.com/lockerd/lockerd/sync/protocol"
)

// Config is lockerd's configuration file. Key names are binding: they are
// the technician's contract, documented in docs/config.md.
type Config struct {
	Locker       LockerSection `yaml:"locker"`
	Store        StoreSection  `yaml:"store"`
	Security     Security      `yaml:"security"`
	Policy       PolicySection `yaml:"policy"`
	Hardware     Hardware      `yaml:"hardware"`
	Scanners     []Scanner     `yaml:"scanners"`
	Compartments []Comp        `yaml:"compartments"`
	Returns      *Returns      `yaml:"returns"`
	API          API           `yaml:"api"`
	Log          Log           `yaml:"log"`
	MQTT         *MQTT         `yaml:"mqtt"`
	Update       *Update       `yaml:"update"`
	Kiosk        Kiosk         `yaml:"kiosk"`

	// Filled by Load.
	File      string         `yaml:"-"`
	PickupKey locker.CodeKey `yaml:"-"`
	// CentralKey is security.central_public_key decoded (nil if unset);
	// CentralNextKey security.central_public_key_next.
	CentralKey     ed25519.PublicKey `yaml:"-"`
	CentralNextKey ed25519.PublicKey `yaml:"-"`
	// MQTTPassword is the content of mqtt.password_file.
	MQTTPassword string `yaml:"-"`
	// Warnings are things to fix that do not stop the config being used
	// (lockerd logs them, lockerctl validate prints them).
	Warnings Problems `yaml:"-"`
	lines    map[string]int
}

type LockerSection struct {
	ID   string `yaml:"id"`
	Site string `yaml:"site"`
}

type StoreSection struct {
	Path string `yaml:"path"`
	// MinFree is the headroom (free disk, room under the file-size limit
	// and free pages in the file) below which store.low_space is raised.
	MinFree ByteSize `yaml:"min_free"`
	// Retention is how long an ended order (picked up, retrieved,
	// cancelled before loading) is kept before it is purged.
	Retention Duration `yaml:"retention"`
}

type Security struct {
	PickupKeyFile string `yaml:"pickup_key_file"`
	// StaffBadges is the anonymous list of before named badges: each is
	// a staff badge. Badges names each badge and gives it a role.
	StaffBadges      []string `yaml:"staff_badges"`
	Badges           []Badge  `yaml:"badges"`
	CentralPublicKey string   `yaml:"central_public_key"`
	// CentralPublicKeyNext is accepted beside it while the central's
	// signing key is rotated (docs/deploy-central.md).
	CentralPublicKeyNext     string `yaml:"central_public_key_next"`
	InsecureUnsignedDownlink bool   `yaml:"insecure_unsigned_downlink"`
}

// MQTT is the link to the central library; without it the locker runs
// standalone.
type MQTT struct {
	Brokers         []string `yaml:"brokers"`
	TopicPrefix     string   `yaml:"topic_prefix"`
	Keepalive       Duration `yaml:"keepalive"`
	TelemetryPeriod Duration `yaml:"telemetry_period"`
	Username        string   `yaml:"username"`
	PasswordFile    string   `yaml:"password_file"`
	TLS             *TLS     `yaml:"tls"`
	// MaxMessage bounds a downlink message; a larger one is refused
	// before it is copied.
	MaxMessage ByteSize `yaml:"max_message"`
	// PublishTimeout bounds the wait for a broker's acknowledgement; two
	// in a row without one and the next broker is tried.
	PublishTimeout Duration `yaml:"publish_timeout"`
	// AckWindow bounds the events out beyond the central's last ack.evt:
	// a broker's queue for a subscriber is bounded (Mosquitto's
	// max_queued_messages, 1000 by default).
	AckWindow int `yaml:"ack_window"`
	// SnapshotTimeout drops the staged parts of a snapshot that is not
	// complete within it.
	SnapshotTimeout Duration `yaml:"snapshot_timeout"`
	// ConfigProbation bounds how long a configuration the central pushed
	// has to come up healthy (store, hardware, broker) before the
	// previous one is restored.
	ConfigProbation Duration `yaml:"config_probation"`
}

// TLS names the files of a TLS client: the CA that signed the broker's
// certificate, and the locker's own certificate and key.
type TLS struct {
	CAFile   string `yaml:"ca_file"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

type PolicySection struct {
	MaxFailedCodes    int      `yaml:"max_failed_codes"`
	FailedWindow      Duration `yaml:"failed_window"`
	Lockout           Duration `yaml:"lockout"`
	LockoutMax        Duration `yaml:"lockout_max"`
	DoorOpenConfirm   Duration `yaml:"door_open_confirm"`
	DoorLeftOpenAlarm Duration `yaml:"door_left_open_alarm"`
	ReopenGrace       Duration `yaml:"reopen_grace"`
	StaffIdle         Duration `yaml:"staff_idle"`
	ClockTrust        string   `yaml:"clock_trust"`
	// StrictFiles refuses (instead of warning about) secret files that
	// others than their owner can read.
	StrictFiles bool `yaml:"strict_files"`
}

type Hardware struct {
	Backend             string   `yaml:"backend"`
	LockPulse           Duration `yaml:"lock_pulse"`
	MaxConcurrentPulses int      `yaml:"max_concurrent_pulses"`
	RelayActiveLow      bool     `yaml:"relay_active_low"`
	SensorActiveLow     bool     `yaml:"sensor_active_low"`
	Buzzer              string   `yaml:"buzzer"`
	StatusLED           string   `yaml:"status_led"`
	// SensorPull is the bias on GPIO and expander sensor inputs: up (a
	// switch to ground), down, or none (external resistors).
	SensorPull string `yaml:"sensor_pull"`
	// Debounce is how long an input must stay quiet before its level
	// counts; Reread is how often every input is read again whether or
	// not an edge was seen.
	Debounce Duration `yaml:"debounce"`
	Reread   Duration `yaml:"reread"`
	// I2CBus is the bus of expanders named without one (/dev/i2c-N).
	I2CBus    int       `yaml:"i2c_bus"`
	LockBoard LockBoard `yaml:"lockboard"`
	Sim       Sim       `yaml:"sim"`
}

// LockBoard is the RS-485 bus of lock-control boards
// (hardware.backend: lockboard).
type LockBoard struct {
	Port     string `yaml:"port"`
	Protocol string `yaml:"protocol"` // cu or 8a
	Baud     int    `yaml:"baud"`     // 0: the protocol's own (cu 19200, 8a 9600)
	// Echo: the USB–RS-485 adapter reads back what it sends (half-duplex
	// without echo suppression); lockerd then drops each frame's echo.
	Echo bool `yaml:"echo"`
	// ReplyTimeout bounds the wait for a board's answer; Quiet is the gap
	// kept between frames on the bus; Poll is how often every board's
	// door status is queried.
	ReplyTimeout Duration `yaml:"reply_timeout"`
	Quiet        Duration `yaml:"quiet"`
	Poll         Duration `yaml:"poll"`
}

// Kiosk is the reader's screen served on api.listen.
type Kiosk struct {
	OrderURL    string   `yaml:"order_url"`
	HelpText    string   `yaml:"help_text"`
	DefaultLang string   `yaml:"default_lang"`
	Columns     int      `yaml:"columns"`
	IdleTimeout Duration `yaml:"idle_timeout"`
}

type Sim struct {
	OpenDelay Duration `yaml:"open_delay"`
	AutoClose Duration `yaml:"auto_close"`
}

type Scanner struct {
	Name string `yaml:"name"`
	// Type is serial (a serial or USB virtual-COM scanner, the default)
	// or hid (a USB keyboard-wedge scanner read through evdev).
	Type string `yaml:"type"`
	// Port is a device path (/dev/serial/by-id/..., /dev/input/by-id/...)
	// or auto: the serial port of the USB device usb_vid:usb_pid.
	Port      string `yaml:"port"`
	Baud      int    `yaml:"baud"`
	Role      string `yaml:"role"`
	USBVendor string `yaml:"usb_vid"`
	USBProd   string `yaml:"usb_pid"`
	USBSerial string `yaml:"usb_serial"`
	// GM65 configures a GM65-family module on start (serial only).
	GM65 *GM65 `yaml:"gm65"`
}

// GM65 is a scanner module's start-up set-up.
type GM65 struct {
	Mode  string `yaml:"mode"` // trigger, continuous or sensor; empty leaves it
	AIMID bool   `yaml:"aim_id"`
}

// Update is where software updates come from (cmd.update): only this
// hub, and where versions are kept on the cabinet.
type Update struct {
	HubURL string `yaml:"hub_url"`
	CAFile string `yaml:"ca_file"`
	// Probation: a new version must be healthy within it, or the previous
	// one runs again.
	Probation Duration `yaml:"probation"`
	// Dir keeps the versions (default: "versions" beside the store).
	Dir string `yaml:"dir"`
	// ReleaseKey (base64 Ed25519): a release's manifest must be signed
	// with this key, kept off the hub, and with no other (not the
	// central's). Unset: the central's key signs releases.
	ReleaseKey string            `yaml:"release_key"`
	ReleasePub ed25519.PublicKey `yaml:"-"`
}

// Badge is one named badge: the keyed hash of its code (lockerctl
// hash-code prints it; the code itself is never in the file) and its role.
type Badge struct {
	Name string `yaml:"name"`
	Hash string `yaml:"hash"`
	Role string `yaml:"role"` // staff, volunteer or technician
}

type Comp struct {
	ID     string `yaml:"id"`
	Size   string `yaml:"size"`
	Lock   string `yaml:"lock"`
	Sensor string `yaml:"sensor"`
	// Accessible: reachable from a wheelchair; accessible orders are
	// loaded only here.
	Accessible bool `yaml:"accessible"`
	// ItemSensor reads active while something lies inside: checked after
	// a load, a pickup and a retrieval ("" = none).
	ItemSensor string `yaml:"item_sensor"`
	// Row and Col place the door in the cabinet drawing on the kiosk
	// (1-based); 0 places it automatically.
	Row int `yaml:"row"`
	Col int `yaml:"col"`
}

type Returns struct {
	Lock           string `yaml:"lock"`
	Sensor         string `yaml:"sensor"`
	BinFullSensor  string `yaml:"bin_full_sensor"`
	BarcodePattern string `yaml:"barcode_pattern"`
	// ServiceLock opens the bin's staff door for emptying (EMPTYBIN in a
	// staff session); ServiceSensor is that door's sensor. Both optional.
	ServiceLock   string `yaml:"service_lock"`
	ServiceSensor string `yaml:"service_sensor"`

	pattern *regexp.Regexp
}

type API struct {
	Listen string `yaml:"listen"`
	// TokenFile is where lockerd writes its per-boot API token for
	// lockerctl (mode 0600); default: api.token beside the store.
	TokenFile string `yaml:"token_file"`
}

type Log struct {
	Level string `yaml:"level"`
}

// Defaults and bounds.
const (
	DefaultBarcodePattern = `^[0-9]{8,14}$`
	DefaultRetention      = 30 * 24 * time.Hour
	DefaultListen         = "127.0.0.1:8480"
	// DefaultPath is where the Debian package puts the config.
	DefaultPath    = "/etc/lockerd/lockerd.yaml"
	DefaultBaud    = 9600
	MaxPulsesBound = 16
)

func defaults() Config {
	p := locker.DefaultPolicy()
	return Config{
		Policy: PolicySection{
			MaxFailedCodes: p.MaxFailedCodes, FailedWindow: Duration(p.FailedWindow),
			Lockout: Duration(p.Lockout), LockoutMax: Duration(p.LockoutMax),
			DoorOpenConfirm: Duration(p.DoorOpenConfirm), DoorLeftOpenAlarm: Duration(p.DoorLeftOpenAlarm),
			ReopenGrace: Duration(p.ReopenGrace), StaffIdle: Duration(p.StaffIdle),
			ClockTrust: locker.ClockTrustAuto,
		},
		Hardware: Hardware{
			Backend: "sim", LockPulse: Duration(500 * time.Millisecond), MaxConcurrentPulses: 2,
			RelayActiveLow: true, SensorPull: "up", Debounce: Duration(30 * time.Millisecond),
			Reread: Duration(500 * time.Millisecond), I2CBus: 1,
			LockBoard: LockBoard{Protocol: "cu", ReplyTimeout: Duration(1500 * time.Millisecond),
				Quiet: Duration(20 * time.Millisecond), Poll: Duration(500 * time.Millisecond)},
			Sim: Sim{OpenDelay: Duration(50 * time.Millisecond), AutoClose: Duration(2 * time.Second)},
		},
		Store: StoreSection{MinFree: 20 << 20, Retention: Duration(DefaultRetention)},
		API:   API{Listen: DefaultListen},
		Log:   Log{Level: "info"},
		Kiosk: Kiosk{DefaultLang: "zh-CN", Columns: 4, IdleTimeout: Duration(30 * time.Second)},
	}
}

// Load reads, decodes and checks the config file at path. Relative paths
// inside it are taken relative to the file's directory. The error, if
// any, is Problems (every problem found) or a read error.
func Load(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, raw, true)
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// Parse decodes and checks config text; name is used in messages and to
// resolve relative paths. With checkFiles false, files named by the
// config (the pickup key) are not read: for fuzzing and syntax checks.
func Parse(name string, raw []byte, checkFiles bool) (*Config, error) {
	cfg := defaults()
	cfg.File = name
	lines, problems := DecodeStrict(name, raw, &cfg)
	if lines == nil {
		return nil, problems
	}
	d := &decoder{file: name, lines: lines, problems: problems}
	cfg.lines = d.lines
	cfg.check(d, checkFiles)
	if len(d.problems) > 0 {
		return nil, d.problems
	}
	return &cfg, nil
}

// line is the line of key, or of its nearest parent that has one.
func (c *Config) line(key string) int {
	for k := key; k != ""; {
		if l, ok := c.lines[k]; ok {
			return l
		}
		i := strings.LastIndexAny(k, ".[")
		if i < 0 {
			break
		}
		k = k[:i]
	}
	return 1
}

var (
	compIDRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,15}$`)
	nameRe   = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)
	hashRe   = regexp.MustCompile(`^[0-9a-f]{64}$`)
	bauds    = map[int]bool{1200: true, 2400: true, 4800: true, 9600: true, 19200: true, 38400: true, 57600: true, 115200: true}
)

// Resolve makes a path from the config absolute, relative to its file.
func (c *Config) Resolve(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(filepath.Dir(c.File), p)
}

func (c *Config) check(d *decoder, checkFiles bool) {
	bad := func(key, format string, args ...any) {
		// One problem per cause: a section that was not even a mapping
		// does not also get "required" for each of its keys.
		for _, p := range d.problems {
			if p.Key != "" && strings.HasPrefix(key, p.Key+".") {
				return
			}
		}
		d.addf(c.line(key), key, format, args...)
	}

	if c.Locker.ID == "" {
		bad("locker.id", "required")
	} else if err := locker.CheckLockerID(c.Locker.ID); err != nil {
		bad("locker.id", "%v", err)
	}
	if c.Store.Path == "" {
		bad("store.path", "required")
	}
	if r := c.Store.Retention.D(); r < 24*time.Hour || r > 10*365*24*time.Hour {
		bad("store.retention", "%v is out of bounds 24h..87600h (10 years)", r)
	}
	if c.Store.MinFree < 64<<10 {
		bad("store.min_free", "%d bytes is under the bound of 64KB", c.Store.MinFree)
	}
	if c.Security.PickupKeyFile == "" {
		bad("security.pickup_key_file", "required (a file with 32 or more random bytes in hex)")
	} else if checkFiles {
		p := c.Resolve(c.Security.PickupKeyFile)
		c.checkSecretFile("security.pickup_key_file", p, bad)
		raw, err := os.ReadFile(p)
		if err != nil {
			bad("security.pickup_key_file", "cannot read %s: %v", p, errors.Unwrap(err))
		} else if c.PickupKey, err = locker.ParseCodeKey(string(raw)); err != nil {
			bad("security.pickup_key_file", "%s: %v", p, err)
		}
	}
	for i, h := range c.Security.StaffBadges {
		if !hashRe.MatchString(h) {
			bad(fmt.Sprintf("security.staff_badges[%d]", i), "want 64 lowercase hex digits (lockerctl hash-code prints them), got %q", h)
		}
	}
	badgeNames, badgeHashes := map[string]string{}, map[string]string{}
	for i, h := range c.Security.StaffBadges {
		badgeHashes[h] = fmt.Sprintf("security.staff_badges[%d]", i)
	}
	for i, b := range c.Security.Badges {
		k := fmt.Sprintf("security.badges[%d]", i)
		switch {
		case b.Name == "" || len(b.Name) > locker.MaxBadgeName:
			bad(k+".name", "want 1 to %d characters", locker.MaxBadgeName)
		case badgeNames[b.Name] != "":
			bad(k+".name", "%q already used by %s", b.Name, badgeNames[b.Name])
		default:
			badgeNames[b.Name] = k
		}
		switch {
		case !hashRe.MatchString(b.Hash):
			bad(k+".hash", "want 64 lowercase hex digits (lockerctl hash-code prints them)")
		case badgeHashes[b.Hash] != "":
			bad(k+".hash", "the same badge as %s", badgeHashes[b.Hash])
		default:
			badgeHashes[b.Hash] = k
		}
		if !locker.BadgeRole(b.Role).Valid() {
			bad(k+".role", "%q: want staff, volunteer or technician", b.Role)
		}
	}

	p := c.Policy
	if p.MaxFailedCodes < 1 || p.MaxFailedCodes > 100 {
		bad("policy.max_failed_codes", "%d is out of bounds 1..100", p.MaxFailedCodes)
	}
	for key, v := range map[string]Duration{
		"policy.failed_window": p.FailedWindow, "policy.lockout": p.Lockout, "policy.lockout_max": p.LockoutMax,
		"policy.door_open_confirm": p.DoorOpenConfirm, "policy.door_left_open_alarm": p.DoorLeftOpenAlarm,
		"policy.reopen_grace": p.ReopenGrace, "policy.staff_idle": p.StaffIdle,
	} {
		if v <= 0 {
			bad(key, "must be positive")
		}
	}
	// Lower bounds: a window or a lockout this short protects nothing.
	if p.FailedWindow > 0 && p.FailedWindow.D() < 10*time.Second {
		bad("policy.failed_window", "%v is under the bound of 10s: failures this far apart would never add up to a lockout", p.FailedWindow.D())
	}
	if p.Lockout > 0 && p.Lockout.D() < time.Second {
		bad("policy.lockout", "%v is under the bound of 1s", p.Lockout.D())
	}
	if p.LockoutMax > 0 && p.LockoutMax.D() < 5*time.Minute {
		bad("policy.lockout_max", "%v is under the bound of 5m: lockouts must grow long enough to stop guessing", p.LockoutMax.D())
	}
	if p.MaxFailedCodes > 20 {
		bad("policy.max_failed_codes", "%d is over the bound of 20", p.MaxFailedCodes)
	}
	if p.LockoutMax < p.Lockout {
		bad("policy.lockout_max", "%v is shorter than policy.lockout %v", p.LockoutMax.D(), p.Lockout.D())
	}
	if p.ClockTrust != locker.ClockTrustAuto && p.ClockTrust != locker.ClockTrustAlways {
		bad("policy.clock_trust", "%q: want auto or always", p.ClockTrust)
	}
	if p.DoorOpenConfirm.D() > 30*time.Second {
		bad("policy.door_open_confirm", "%v is over the bound of 30s", p.DoorOpenConfirm.D())
	}

	h := c.Hardware
	switch h.Backend {
	case BackendSim, BackendGPIO, BackendLockBoard:
	default:
		bad("hardware.backend", "%q: want sim, gpio or lockboard", h.Backend)
	}
	switch h.SensorPull {
	case "up", "down", "none":
	default:
		bad("hardware.sensor_pull", "%q: want up, down or none", h.SensorPull)
	}
	if d := h.Debounce.D(); d < 0 || d > 500*time.Millisecond {
		bad("hardware.debounce", "%v is out of bounds 0..500ms", d)
	}
	if d := h.Reread.D(); d < 10*time.Millisecond || d > time.Second {
		bad("hardware.reread", "%v is out of bounds 10ms..1s (a missed edge must heal within a second)", d)
	}
	if h.I2CBus < 0 || h.I2CBus > 99 {
		bad("hardware.i2c_bus", "%d is out of bounds 0..99", h.I2CBus)
	}
	if h.Backend == BackendLockBoard {
		c.checkLockBoard(bad)
	}
	if h.LockPulse.D() < locker.MinLockPulse || h.LockPulse.D() > locker.MaxLockPulse {
		bad("hardware.lock_pulse", "%v is out of bounds %v..%v (a lock is pulsed, never held)", h.LockPulse.D(), locker.MinLockPulse, locker.MaxLockPulse)
	}
	if h.MaxConcurrentPulses < 1 || h.MaxConcurrentPulses > MaxPulsesBound {
		bad("hardware.max_concurrent_pulses", "%d is out of bounds 1..%d", h.MaxConcurrentPulses, MaxPulsesBound)
	}
	if h.Sim.OpenDelay < 0 {
		bad("hardware.sim.open_delay", "must not be negative")
	}
	if h.Sim.AutoClose < 0 {
		bad("hardware.sim.auto_close", "must not be negative (0 means the door stays open)")
	}

	names := map[string]string{}
	devices := map[string]string{} // the device a scanner reads → its key
	for i, s := range c.Scanners {
		k := fmt.Sprintf("scanners[%d]", i)
		if s.Baud == 0 {
			c.Scanners[i].Baud = DefaultBaud
		} else if !bauds[s.Baud] {
			bad(k+".baud", "%d is not a standard baud rate (9600, 115200, ...)", s.Baud)
		}
		if !nameRe.MatchString(s.Name) {
			bad(k+".name", "%q: want lowercase letters, digits, '-' or '_'", s.Name)
		} else if s.Name == locker.KeypadDevice {
			bad(k+".name", "%q is reserved for the on-screen keypad", s.Name)
		} else if prev, dup := names[s.Name]; dup {
			bad(k+".name", "%q already used by %s", s.Name, prev)
		} else {
			names[s.Name] = k
		}
		c.checkScanner(k, &c.Scanners[i], bad)
		if dev := scannerDevice(c.Scanners[i], checkFiles); dev != "" {
			if prev, dup := devices[dev]; dup {
				bad(k+".port", "%q is already read by %s: two readers on one device each get part of the scans", s.Port, prev)
			} else {
				devices[dev] = k
			}
		}
		if s.Role != string(locker.RolePickup) && s.Role != string(locker.RoleReturn) {
			bad(k+".role", "%q: want pickup or return", s.Role)
		}
		if s.Role == string(locker.RoleReturn) && c.Returns == nil {
			bad(k+".role", "a return scanner needs a returns section")
		}
	}

	pins := map[string]string{}
	// usePin checks a pin name against the backend: what the function
	// wants (a lock, a sensor, a signal output) and what the backend
	// drives (board channels only on lock boards, never on GPIO).
	usePin := func(key, name string, required bool, role pinRole) {
		if name == "" {
			if required {
				bad(key, "required")
			}
			return
		}
		p, err := pinname.Parse(name)
		if err != nil {
			bad(key, "%v", err)
			return
		}
		if msg := c.pinFits(p, role); msg != "" {
			bad(key, "%s: %s", name, msg)
			return
		}
		if prev, dup := pins[p.Key()]; dup {
			bad(key, "pin %s already used by %s", name, prev)
		} else {
			pins[p.Key()] = key
		}
	}
	if len(c.Compartments) == 0 {
		bad("compartments", "at least one compartment is required")
	}
	ids := map[string]string{}
	for i, cp := range c.Compartments {
		k := fmt.Sprintf("compartments[%d]", i)
		switch {
		case !compIDRe.MatchString(cp.ID):
			bad(k+".id", "%q: want letters, digits, '-' or '_' (up to 16)", cp.ID)
		case strings.EqualFold(cp.ID, locker.ReturnSlotID):
			bad(k+".id", "%q is reserved for the return slot", cp.ID)
		default:
			if prev, dup := ids[cp.ID]; dup {
				bad(k+".id", "compartment %s already defined at %s", cp.ID, prev)
			} else {
				ids[cp.ID] = k
			}
		}
		if !locker.Size(cp.Size).Valid() {
			bad(k+".size", "%q: want S, M, L or XL", cp.Size)
		}
		usePin(k+".lock", cp.Lock, true, roleLock)
		usePin(k+".sensor", cp.Sensor, true, roleSensor)
		usePin(k+".item_sensor", cp.ItemSensor, false, roleSensor)
		if cp.Row < 0 || cp.Row > 50 {
			bad(k+".row", "%d is out of bounds 0..50", cp.Row)
		}
		if cp.Col < 0 || cp.Col > 50 {
			bad(k+".col", "%d is out of bounds 0..50", cp.Col)
		}
	}
	usePin("hardware.buzzer", c.Hardware.Buzzer, false, roleSignal)
	usePin("hardware.status_led", c.Hardware.StatusLED, false, roleSignal)
	if r := c.Returns; r != nil {
		usePin("returns.lock", r.Lock, true, roleLock)
		usePin("returns.sensor", r.Sensor, false, roleSensor)
		usePin("returns.bin_full_sensor", r.BinFullSensor, false, roleSensor)
		usePin("returns.service_lock", r.ServiceLock, false, roleLock)
		usePin("returns.service_sensor", r.ServiceSensor, false, roleSensor)
		if r.ServiceSensor != "" && r.ServiceLock == "" {
			bad("returns.service_sensor", "needs returns.service_lock (the door it watches)")
		}
		if r.BarcodePattern == "" {
			r.BarcodePattern = DefaultBarcodePattern
		}
		var err error
		if r.pattern, err = regexp.Compile(r.BarcodePattern); err != nil {
			bad("returns.barcode_pattern", "not a valid regular expression: %v", err)
		}
	}

	if err := loopback.Check(c.API.Listen); err != nil {
		bad("api.listen", "%v: the local API opens doors and must listen on loopback only (127.0.0.1:PORT)", err)
	}
	c.checkMQTT(bad, checkFiles)
	if u := c.Update; u != nil {
		p, err := url.Parse(u.HubURL)
		switch {
		case u.HubURL == "" || err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "":
			bad("update.hub_url", "want https://HOST:PORT, the hub releases are downloaded from")
		case p.Scheme == "http" && loopback.Check(p.Host) != nil:
			bad("update.hub_url", "%s: beyond loopback only https (the binary is verified, but its download should not be seen)", u.HubURL)
		}
		if u.Probation == 0 {
			u.Probation = Duration(time.Minute)
		}
		if d := u.Probation.D(); d < 2*time.Second || d > 10*time.Minute {
			bad("update.probation", "%v is out of bounds 2s..10m", d)
		}
		if u.Dir == "" {
			// Beside the store, in the state directory: the one place
			// the service may write executables (/etc is configuration).
			u.Dir = filepath.Join(filepath.Dir(c.StorePath()), "versions")
		}
		u.Dir = c.Resolve(u.Dir)
		u.CAFile = c.Resolve(u.CAFile)
		if u.ReleaseKey != "" {
			if pub, err := protocol.ParsePublicKey(u.ReleaseKey); err != nil {
				bad("update.release_key", "%v (the .pub lockerhub keygen -name release wrote)", err)
			} else {
				u.ReleasePub = pub
			}
		}
	}
	switch c.Kiosk.DefaultLang {
	case "zh-CN", "en":
	default:
		bad("kiosk.default_lang", "%q: want zh-CN or en", c.Kiosk.DefaultLang)
	}
	if c.Kiosk.Columns < 1 || c.Kiosk.Columns > 20 {
		bad("kiosk.columns", "%d is out of bounds 1..20", c.Kiosk.Columns)
	}
	if d := c.Kiosk.IdleTimeout.D(); d < 5*time.Second || d > 10*time.Minute {
		bad("kiosk.idle_timeout", "%v is out of bounds 5s..10m", d)
	}
	if u := c.Kiosk.OrderURL; u != "" && !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") {
		bad("kiosk.order_url", "%q: want an http(s) link", u)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q: want debug, info, warn or error", c.Log.Level)
	}
}

// scannerDevice names the device a scanner reads, so that two scanners on
// one device are found: the port's path (its link resolved when the
// files are there: /dev/serial/by-id/... is /dev/ttyACM0), or the USB ids
// of port: auto.
func scannerDevice(s Scanner, checkFiles bool) string {
	switch s.Port {
	case "":
		return ""
	case PortAuto:
		return strings.ToLower("usb:" + s.USBVendor + ":" + s.USBProd + ":" + s.USBSerial)
	}
	p := filepath.Clean(s.Port)
	if checkFiles {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
	}
	return p
}

// checkSecretFile warns about a secret file that its group or others can
// read (a problem with policy.strict_files).
func (c *Config) checkSecretFile(key, path string, bad func(key, format string, args ...any)) {
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm()&0o077 == 0 {
		return
	}
	msg := fmt.Sprintf("%s is readable by its group or others (mode %04o): chmod 600 it", path, info.Mode().Perm())
	if c.Policy.StrictFiles {
		bad(key, "%s (policy.strict_files)", msg)
		return
	}
	c.Warnings = append(c.Warnings, Problem{File: c.File, Line: c.line(key), Key: key, Msg: msg})
}

// Settings turns the config into the core's settings.
func (c *Config) Settings() locker.Settings {
	p := c.Policy
	s := locker.Settings{
		LockerID: c.Locker.ID,
		Policy: locker.Policy{
			MaxFailedCodes: p.MaxFailedCodes, FailedWindow: p.FailedWindow.D(), Lockout: p.Lockout.D(),
			LockoutMax: p.LockoutMax.D(), DoorOpenConfirm: p.DoorOpenConfirm.D(),
			DoorLeftOpenAlarm: p.DoorLeftOpenAlarm.D(), ReopenGrace: p.ReopenGrace.D(), StaffIdle: p.StaffIdle.D(),
		},
		LockPulse:           c.Hardware.LockPulse.D(),
		MaxConcurrentPulses: c.Hardware.MaxConcurrentPulses,
		StaffBadges:         c.Security.StaffBadges,
		Badges:              badges(c.Security.Badges),
		Buzzer:              c.Hardware.Buzzer,
		StatusLED:           c.Hardware.StatusLED,
		Retention:           c.Store.Retention.D(),
		Standalone:          c.MQTT == nil,
	}
	for _, cp := range c.Compartments {
		s.Compartments = append(s.Compartments, locker.Compartment{ID: cp.ID, Size: locker.Size(cp.Size), Lock: cp.Lock, Sensor: cp.Sensor, Accessible: cp.Accessible, ItemSensor: cp.ItemSensor})
	}
	s.Devices = append(s.Devices, locker.Device{Name: locker.KeypadDevice, Role: locker.RolePickup})
	for _, sc := range c.Scanners {
		s.Devices = append(s.Devices, locker.Device{Name: sc.Name, Role: locker.Role(sc.Role)})
	}
	if r := c.Returns; r != nil {
		s.Return = &locker.ReturnSlot{Lock: r.Lock, Sensor: r.Sensor, BinFullSensor: r.BinFullSensor, Pattern: r.pattern,
			ServiceLock: r.ServiceLock, ServiceSensor: r.ServiceSensor}
	}
	return s
}

func badges(in []Badge) []locker.Badge {
	var out []locker.Badge
	for _, b := range in {
		out = append(out, locker.Badge{Name: b.Name, Hash: b.Hash, Role: locker.BadgeRole(b.Role)})
	}
	return out
}

// APITokenFile is api.token_file resolved, or api.token in the store's
// directory.
func (c *Config) APITokenFile() string {
	if c.API.TokenFile != "" {
		return c.Resolve(c.API.TokenFile)
	}
	return filepath.Join(filepath.Dir(c.StorePath()), "api.token")
}

// StorePath is store.path resolved against the config's directory.
// (Settings takes mqtt.snapshot_timeout when there is an mqtt section.)
func (c *Config) StorePath() string { return c.Resolve(c.Store.Path) }
