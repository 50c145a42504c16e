package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const keyHex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

// write puts text in a temp config next to a valid key file and returns its path.
func write(t *testing.T, text string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pickup.key"), []byte(keyHex+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "lockerd.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const good = `locker: {id: nb-main-01, site: "Main library"}
store: {path: lockerd.db}
security:
  pickup_key_file: pickup.key
hardware:
  backend: sim
  lock_pulse: 500ms
scanners:
  - {name: front, port: /dev/ttyACM0, baud: 9600, role: pickup}
  - {name: returns, role: return}
compartments:
  - {id: A01, size: S, lock: GPIO5, sensor: GPIO6}
  - {id: A02, size: M, lock: GPIO7, sensor: GPIO8}
returns: {lock: GPIO20, sensor: GPIO21, bin_full_sensor: GPIO26}
`

func TestGoodConfigAndDefaults(t *testing.T) {
	p := write(t, good)
	cfg, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Policy.MaxFailedCodes != 5 || cfg.Policy.Lockout.D() != 30*time.Second || cfg.Policy.ReopenGrace.D() != 2*time.Minute {
		t.Errorf("policy defaults not applied: %+v", cfg.Policy)
	}
	if cfg.Hardware.MaxConcurrentPulses != 2 || !cfg.Hardware.RelayActiveLow || cfg.API.Listen != DefaultListen {
		t.Errorf("hardware/api defaults not applied: %+v %+v", cfg.Hardware, cfg.API)
	}
	if cfg.Scanners[1].Baud != 9600 {
		t.Errorf("default baud not applied")
	}
	if cfg.StorePath() != filepath.Join(filepath.Dir(p), "lockerd.db") {
		t.Errorf("store path not resolved against config dir: %s", cfg.StorePath())
	}
	if len(cfg.PickupKey) != 32 {
		t.Errorf("pickup key not loaded")
	}
	set := cfg.Settings()
	if len(set.Badges) != 0 {
		t.Errorf("badges from nowhere: %+v", set.Badges)
	}
	if len(set.Compartments) != 2 || set.Return == nil || !set.Return.Pattern.MatchString("12345678") {
		t.Errorf("settings: %+v", set)
	}
}

// Each case edits the good config and expects one problem naming the
// file, the line and the key.
func TestConfigProblems(t *testing.T) {
	tests := []struct {
		name     string
		old, new string
		want     string // "LINE: key: fragment"
	}{
		{"unknown key", "  lock_pulse: 500ms", "  lock_pulse: 500ms\n  lock_puls: 1s", "8: hardware.lock_puls: unknown key"},
		{"wrong type", "  lock_pulse: 500ms", "  lock_pulse: [1]", "7: hardware.lock_pulse: want a duration"},
		{"wrong int", "baud: 9600", "baud: fast", "9: scanners[0].baud: want a whole number"},
		{"duplicate compartment id", "id: A02", "id: A01", "13: compartments[1].id: compartment A01 already defined"},
		{"pin used twice", "lock: GPIO7", "lock: 5", "13: compartments[1].lock: pin 5 already used by compartments[0].lock"},
		{"pulse too long", "lock_pulse: 500ms", "lock_pulse: 3s", "7: hardware.lock_pulse: 3s is out of bounds"},
		{"pulse too short", "lock_pulse: 500ms", "lock_pulse: 10ms", "7: hardware.lock_pulse: 10ms is out of bounds"},
		{"bad regex", "bin_full_sensor: GPIO26}", "bin_full_sensor: GPIO26, barcode_pattern: '[0-9'}", "14: returns.barcode_pattern: not a valid regular expression"},
		{"missing key file", "pickup_key_file: pickup.key", "pickup_key_file: nope.key", "4: security.pickup_key_file: cannot read"},
		{"bad size", "size: M", "size: XXL", "13: compartments[1].size: \"XXL\": want S, M, L or XL"},
		{"bad role", "role: pickup", "role: both", "9: scanners[0].role: \"both\": want pickup or return"},
		{"api not loopback", "returns:", "api: {listen: 0.0.0.0:8480}\nreturns:", "14: api.listen: 0.0.0.0 is not a loopback address: the local API opens doors and must listen on loopback only"},
		{"api on every address", "returns:", "api: {listen: \":8480\"}\nreturns:", "14: api.listen: \":8480\" listens on every address"},
		{"duplicate key", "  backend: sim", "  backend: sim\n  backend: gpio", "7: hardware.backend: given twice (first on line 6)"},
		{"bad backend", "backend: sim", "backend: gpiod", "6: hardware.backend: \"gpiod\": want sim, gpio or lockboard"},
		{"bad expander pin", "lock: GPIO7", "lock: mcp23017@0x20/C1", "13: compartments[1].lock: mcp23017@0x20/C1: MCP23017 pins are A0..A7 and B0..B7"},
		{"same pin two names", "lock: GPIO7", "lock: 5", "13: compartments[1].lock: pin 5 already used by compartments[0].lock"},
		{"bad locker id", "id: nb-main-01", "id: nb/main", "1: locker.id: locker id \"nb/main\": use ASCII letters"},
		{"locker id with a wildcard", "id: nb-main-01", "id: \"nb+1\"", "1: locker.id: locker id \"nb+1\""},
		{"badge with a bad role", "  pickup_key_file: pickup.key", "  pickup_key_file: pickup.key\n  badges: [{name: Wang, hash: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa, role: janitor}]", "5: security.badges[0].role: \"janitor\": want staff, volunteer or technician"},
		{"badge name used twice", "  pickup_key_file: pickup.key", "  pickup_key_file: pickup.key\n  badges:\n  - {name: Wang, hash: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa, role: staff}\n  - {name: Wang, hash: bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb, role: volunteer}", "7: security.badges[1].name: \"Wang\" already used by security.badges[0]"},
		{"badge that is not a hash", "  pickup_key_file: pickup.key", "  pickup_key_file: pickup.key\n  badges: [{name: Li, hash: BADGE1234, role: technician}]", "5: security.badges[0].hash: want 64 lowercase hex digits"},
		{"item sensor on a used pin", "sensor: GPIO8}", "sensor: GPIO8, item_sensor: GPIO6}", "13: compartments[1].item_sensor: pin GPIO6 already used by compartments[0].sensor"},
		{"bin service sensor without its lock", "bin_full_sensor: GPIO26}", "bin_full_sensor: GPIO26, service_sensor: GPIO19}", "14: returns.service_sensor: needs returns.service_lock"},
		{"locker id with a dot", "id: nb-main-01", "id: nb.main", "1: locker.id: locker id \"nb.main\""},
		{"locker id not ASCII", "id: nb-main-01", "id: 宁波-01", "1: locker.id: locker id"},
		{"two scanners on one port", "{name: returns, role: return}", "{name: returns, port: /dev/ttyACM0, role: return}", "10: scanners[1].port: \"/dev/ttyACM0\" is already read by scanners[0]"},
		{"two scanners on one port, other spelling", "{name: returns, role: return}", "{name: returns, port: /dev/../dev/ttyACM0, role: return}", "10: scanners[1].port: \"/dev/../dev/ttyACM0\" is already read by scanners[0]"},
		{"window too short", "hardware:", "policy: {failed_window: 1s}\nhardware:", "5: policy.failed_window: 1s is under the bound of 10s"},
		{"lockout too short", "hardware:", "policy: {lockout: 100ms}\nhardware:", "5: policy.lockout: 100ms is under the bound of 1s"},
		{"lockout_max too short", "hardware:", "policy: {lockout: 30s, lockout_max: 1m}\nhardware:", "5: policy.lockout_max: 1m0s is under the bound of 5m"},
		{"bad staff badge", "pickup_key_file: pickup.key", "pickup_key_file: pickup.key\n  staff_badges: [abc]", "5: security.staff_badges[0]: want 64 lowercase hex"},
		{"lockout_max below lockout", "hardware:", "policy: {lockout: 10m, lockout_max: 5m}\nhardware:", "5: policy.lockout_max: 5m0s is shorter"},
		{"section of wrong kind", "store: {path: lockerd.db}", "store: lockerd.db", "2: store: want a mapping"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(good, tt.old) {
				t.Fatalf("test edit %q not in good config", tt.old)
			}
			p := write(t, strings.Replace(good, tt.old, tt.new, 1))
			_, err := Load(p)
			if err == nil {
				t.Fatal("config accepted")
			}
			ps, ok := err.(Problems)
			if !ok {
				t.Fatalf("error is %T, want Problems: %v", err, err)
			}
			want := p + ":" + tt.want
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("got\n%v\nwant a line containing\n%s", err, want)
			}
			if n := 1; len(ps) != n {
				t.Errorf("want %d problems, got %d:\n%v", n, len(ps), err)
			}
		})
	}
}

func TestAllProblemsAtOnce(t *testing.T) {
	text := strings.NewReplacer("lock_pulse: 500ms", "lock_pulse: 5s", "id: A02", "id: A01", "role: pickup", "role: nope").Replace(good)
	_, err := Load(write(t, text))
	ps, ok := err.(Problems)
	if !ok || len(ps) != 3 {
		t.Fatalf("want 3 problems, got %v", err)
	}
}

func TestSyntaxErrorNamesLine(t *testing.T) {
	p := write(t, "locker: {id: x\nstore: [\n")
	_, err := Load(p)
	if err == nil || !strings.HasPrefix(err.Error(), p+":") || !strings.Contains(err.Error(), "not valid YAML") {
		t.Fatalf("got %v", err)
	}
	p = write(t, "")
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("empty file: %v", err)
	}
}

// The shipped configs are valid. The Pi config names the key file of a
// real installation; it is checked against a stand-in key.
func TestShippedConfigs(t *testing.T) {
	if _, err := Load("../../../configs/demo.yaml"); err != nil {
		t.Errorf("demo.yaml: %v", err)
	}
	for _, tc := range []struct {
		file    string
		doors   int
		backend string
	}{{"pi-16door.yaml", 16, BackendGPIO}, {"pi-48door-lockboard.yaml", 47, BackendLockBoard}} {
		raw, err := os.ReadFile("../../../configs/" + tc.file)
		if err != nil {
			t.Fatal(err)
		}
		text := strings.Replace(string(raw), "/etc/lockerd/pickup.key", "pickup.key", 1)
		cfg, err := Load(write(t, text))
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		if len(cfg.Compartments) != tc.doors || cfg.Hardware.Backend != tc.backend {
			t.Errorf("%s: %d compartments, backend %s", tc.file, len(cfg.Compartments), cfg.Hardware.Backend)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte("locker: {id: [\n"))
	f.Add([]byte("compartments: [{id: A, size: S, lock: &a x, sensor: *a}]"))
	f.Add([]byte("policy: {lockout: -1s}\nhardware: {max_concurrent_pulses: 99999999999999999999}"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		cfg, err := Parse("fuzz.yaml", raw, false)
		if err == nil {
			if cfg.Locker.ID == "" || len(cfg.Compartments) == 0 {
				t.Fatal("accepted a config without id or compartments")
			}
			_ = cfg.Settings()
			return
		}
		if _, ok := err.(Problems); !ok {
			t.Fatalf("error of type %T: %v", err, err)
		}
		for _, line := range strings.Split(err.Error(), "\n") {
			if !strings.HasPrefix(line, "fuzz.yaml:") {
				t.Fatalf("problem line without file name: %q", line)
			}
		}
	})
}

func TestBackendPins(t *testing.T) {
	board := strings.NewReplacer("backend: sim", "backend: lockboard\n  lockboard: {port: /dev/ttyUSB0, protocol: cu}",
		"lock: GPIO5, sensor: GPIO6", "lock: B1/L1, sensor: B1/S1", "lock: GPIO7, sensor: GPIO8", "lock: B1/L2, sensor: B2/I2",
		"returns: {lock: GPIO20, sensor: GPIO21, bin_full_sensor: GPIO26}", "returns: {lock: B1/L3, sensor: B1/S3, bin_full_sensor: B1/I3}").Replace(good)
	cfg, err := Load(write(t, board))
	if err != nil {
		t.Fatalf("lock-board config refused: %v", err)
	}
	if cfg.Hardware.LockBoard.LockBoardBaud() != 19200 || cfg.Hardware.LockBoard.ReplyTimeout.D() != 1500*time.Millisecond {
		t.Errorf("lockboard defaults: %+v", cfg.Hardware.LockBoard)
	}
	for _, tc := range []struct{ name, text, want string }{
		{"board pin on gpio", strings.Replace(strings.Replace(good, "backend: sim", "backend: gpio", 1), "lock: GPIO5", "lock: B1/L1", 1), "compartments[0].lock: B1/L1: lock-board channels need hardware.backend: lockboard"},
		{"gpio pin on lockboard", strings.Replace(board, "lock: B1/L2", "lock: GPIO7", 1), "compartments[1].lock: GPIO7: hardware.backend lockboard drives board channels only"},
		{"sensor as lock", strings.Replace(board, "lock: B1/L2", "lock: B1/S2", 1), "compartments[1].lock: B1/S2: a lock is a board's L channel"},
		{"no port", strings.Replace(board, "port: /dev/ttyUSB0, ", "", 1), "hardware.lockboard.port: required"},
		{"bad protocol", strings.Replace(board, "protocol: cu", "protocol: modbus", 1), "hardware.lockboard.protocol: \"modbus\""},
		{"reread too slow", strings.Replace(good, "lock_pulse: 500ms", "lock_pulse: 500ms\n  reread: 5s", 1), "hardware.reread: 5s is out of bounds"},
		{"bad pull", strings.Replace(good, "lock_pulse: 500ms", "lock_pulse: 500ms\n  sensor_pull: sideways", 1), "hardware.sensor_pull: \"sideways\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(write(t, tc.text))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v\nwant %q", err, tc.want)
			}
		})
	}
}

func TestScannerKinds(t *testing.T) {
	ok := strings.Replace(good, "  - {name: returns, role: return}", `  - {name: returns, role: return, port: auto, usb_vid: 1eab, usb_pid: 1A03, gm65: {mode: continuous, aim_id: true}}
  - {name: side, role: pickup, type: hid, port: /dev/input/by-id/usb-Scanner-event-kbd}`, 1)
	cfg, err := Load(write(t, ok))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Scanners[0].Type != ScannerSerial || cfg.Scanners[2].Type != ScannerHID || cfg.Scanners[1].GM65.Mode != "continuous" {
		t.Errorf("scanners %+v", cfg.Scanners)
	}
	for _, tc := range []struct{ edit, want string }{
		{"usb_vid: 1eab", "scanners[1].usb_vid: \"\": port auto needs"},
		{"mode: continuous", "scanners[1].gm65.mode: \"blink\""},
		{"type: hid", "scanners[2].type: \"ps2\""},
	} {
		repl := map[string]string{"usb_vid: 1eab": "usb_vid: ''", "mode: continuous": "mode: blink", "type: hid": "type: ps2"}[tc.edit]
		_, err := Load(write(t, strings.Replace(ok, tc.edit, repl, 1)))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.edit, err, tc.want)
		}
	}
}

// A pickup key others can read is a warning, and a problem with
// policy.strict_files; the same HID device named through a link is found
// when the files are there.
func TestSecretFileModesAndDeviceLinks(t *testing.T) {
	p := write(t, good)
	key := filepath.Join(filepath.Dir(p), "pickup.key")
	os.Chmod(key, 0o644)
	cfg, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings.Error(), "4: security.pickup_key_file: "+key+" is readable by its group or others (mode 0644)") {
		t.Fatalf("warnings: %v", cfg.Warnings)
	}
	strict := write(t, strings.Replace(good, "hardware:", "policy: {strict_files: true}\nhardware:", 1))
	os.Chmod(filepath.Join(filepath.Dir(strict), "pickup.key"), 0o640)
	if _, err := Load(strict); err == nil || !strings.Contains(err.Error(), "(policy.strict_files)") {
		t.Fatalf("strict_files: %v", err)
	}

	dir := t.TempDir()
	dev := filepath.Join(dir, "event3")
	os.WriteFile(dev, nil, 0o600)
	link := filepath.Join(dir, "usb-Scanner-event-kbd")
	os.Symlink(dev, link)
	two := strings.Replace(good, "{name: front, port: /dev/ttyACM0, baud: 9600, role: pickup}",
		"{name: front, type: hid, port: "+link+", role: pickup}", 1)
	two = strings.Replace(two, "{name: returns, role: return}", "{name: returns, type: hid, port: "+dev+", role: return}", 1)
	if _, err := Load(write(t, two)); err == nil || !strings.Contains(err.Error(), "scanners[1].port: \""+dev+"\" is already read by scanners[0]") {
		t.Fatalf("one HID device through a link and its path: %v", err)
	}
}

// TestProvision: provisioning fills in the cabinet's id, keys and broker
// over what the template says, keeps the rest, and the result is a valid
// configuration.
func TestProvision(t *testing.T) {
	tmpl := strings.Replace(good, "locker: {id: nb-main-01, site: \"Main library\"}", "locker: {id: placeholder, site: \"Main library\"}", 1)
	tmpl += "mqtt: {brokers: [tcp://old:1883], keepalive: 5s}\n"
	out, err := Provision([]byte(tmpl), Provisioned{Locker: "nb-east-07", Prefix: "lockers/v1", BrokerURLs: []string{"tls://hub.example:8883"},
		Username: "nb-east-07", CentralPublicKey: "YcREdGGnW8YmfCuxPVNLljMxcdz4FaPOFtDYIZ+fbcA=", PickupKeyFile: "pickup.key",
		PasswordFile: "mqtt.password"})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(write(t, string(out)))
	if err := os.WriteFile(filepath.Join(dir, "mqtt.password"), []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(filepath.Join(dir, "lockerd.yaml"))
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if cfg.Locker.ID != "nb-east-07" || cfg.Locker.Site != "Main library" || cfg.MQTT == nil || len(cfg.MQTT.Brokers) != 1 ||
		cfg.MQTT.Brokers[0] != "tls://hub.example:8883" || cfg.MQTT.Keepalive.D() != 5*time.Second || cfg.MQTT.Username != "nb-east-07" ||
		len(cfg.Compartments) != 2 {
		t.Fatalf("provisioned config: %+v %+v\n%s", cfg.Locker, cfg.MQTT, out)
	}
	if _, err := Provision([]byte("- a list"), Provisioned{}); err == nil {
		t.Fatal("a list at the top provisioned")
	}
	// A cabinet issued a broker certificate: mqtt.tls names it beside
	// the CA, over what the template had.
	out, err = Provision([]byte(tmpl), Provisioned{Locker: "nb-east-07", BrokerURLs: []string{"tls://hub.example:8883"},
		BrokerCAFile: "broker-ca.pem", ClientCertFile: "mqtt.crt", ClientKeyFile: "mqtt.key"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "tls: {ca_file: broker-ca.pem, cert_file: mqtt.crt, key_file: mqtt.key}") {
		t.Fatalf("mqtt.tls:\n%s", out)
	}
}

// TestUpdateDirDefault: versions are kept beside the store (the state
// directory, where the service may write), unless update.dir says.
func TestUpdateDirDefault(t *testing.T) {
	for _, tc := range []struct{ section, store, want string }{
		{`update: {hub_url: "https://hub.example:8490"}`, "/var/lib/lockerd/lockerd.db", "/var/lib/lockerd/versions"},
		{`update: {hub_url: "https://hub.example:8490", dir: /srv/lockerd/versions}`, "/var/lib/lockerd/lockerd.db", "/srv/lockerd/versions"},
	} {
		text := strings.Replace(good, "store: {path: lockerd.db}", "store: {path: "+tc.store+"}", 1) + tc.section + "\n"
		c, err := Load(write(t, text))
		if err != nil {
			t.Fatal(err)
		}
		if c.Update.Dir != tc.want {
			t.Errorf("%s: update.dir %q, want %q", tc.section, c.Update.Dir, tc.want)
		}
	}
}

// TestReleaseKey: update.release_key is checked (FILE:LINE) and read;
// provisioning pins it where the template takes updates, and adds no
// update section where there is none.
func TestReleaseKey(t *testing.T) {
	const pub = "YcREdGGnW8YmfCuxPVNLljMxcdz4FaPOFtDYIZ+fbcA="
	c, err := Load(write(t, good+`update: {hub_url: "https://hub.example:8490", release_key: "`+pub+`"}`+"\n"))
	if err != nil || len(c.Update.ReleasePub) != 32 {
		t.Fatalf("a release key: %v", err)
	}
	_, err = Load(write(t, good+`update: {hub_url: "https://hub.example:8490", release_key: "AAAA"}`+"\n"))
	if err == nil || !strings.Contains(err.Error(), "lockerd.yaml:15: update.release_key: an Ed25519 public key has 32 bytes, this one 3") {
		t.Fatalf("a short release key: %v", err)
	}
	for _, tc := range []struct {
		tmpl   string
		pinned bool
	}{
		{good + `update: {hub_url: "https://hub.example:8490"}` + "\n", true},
		{good, false},
	} {
		out, err := Provision([]byte(tc.tmpl), Provisioned{Locker: "nb-east-07", ReleaseKey: pub, PickupKeyFile: "pickup.key"})
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(string(out), "release_key: "+pub); got != tc.pinned || (!tc.pinned && strings.Contains(string(out), "update:")) {
			t.Errorf("provisioned (update section %v):\n%s", tc.pinned, out)
		}
	}
}
