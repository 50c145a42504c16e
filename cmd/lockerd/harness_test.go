package main

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/lockerd/lockerd/drivers/sim"
	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/locker/httpapi"
	"github.com/lockerd/lockerd/locker/kiosk"
	"github.com/lockerd/lockerd/locker/lockertest"
)

// lockerdBin is the real lockerd binary, built once by TestMain.
var lockerdBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "lockerd-e2e-bin")
	if err != nil {
		panic(err)
	}
	lockerdBin = filepath.Join(dir, "lockerd")
	args := []string{"build", "-o", lockerdBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, ".")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building lockerd:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// cabinetConfig is a sim cabinet with two pseudo-terminal scanners.
var cabinetConfig = template.Must(template.New("cfg").Parse(`locker: {id: e2e-01, site: "Main library, east entrance"}
store: {path: {{.Store}}{{if .MinFree}}, min_free: {{.MinFree}}{{end}}}
security:
  pickup_key_file: {{.KeyFile}}
  staff_badges: ["{{.Badge}}"]
{{- if .Badges}}
  badges:
{{- range .Badges}}
    - {name: "{{.Name}}", hash: {{.Hash}}, role: {{.Role}}}
{{- end}}
{{- end}}
{{- if .CentralPub}}
  central_public_key: "{{.CentralPub}}"
{{- end}}
policy: {max_failed_codes: 5, failed_window: 60s, lockout: {{or .Lockout "30s"}}, lockout_max: 15m,
         door_open_confirm: 500ms, door_left_open_alarm: 60s, reopen_grace: 2m, clock_trust: always}
hardware:
  backend: sim
  lock_pulse: 50ms
  max_concurrent_pulses: 2
  relay_active_low: true
  sim: {open_delay: 5ms, auto_close: {{.AutoClose}}}
scanners:
  - {name: front, port: {{.Front}}, baud: 9600, role: pickup}
  - {name: returns, port: {{.Returns}}, baud: 9600, role: return}
compartments:
  - {id: A01, size: S, lock: L1, sensor: D1{{if .ItemSensors}}, item_sensor: I1{{end}}}
  - {id: A02, size: S, lock: L2, sensor: D2{{if .ItemSensors}}, item_sensor: I2{{end}}}
  - {id: A03, size: S, lock: L3, sensor: D3{{if .AccessibleA03}}, accessible: true{{end}}{{if .ItemSensors}}, item_sensor: I3{{end}}}
  - {id: B01, size: M, lock: L4, sensor: D4{{if .ItemSensors}}, item_sensor: I4{{end}}}
  - {id: B02, size: M, lock: L5, sensor: D5{{if .ItemSensors}}, item_sensor: I5{{end}}}
  - {id: C01, size: L, lock: L6, sensor: D6{{if .ItemSensors}}, item_sensor: I6{{end}}}
returns: {lock: LR, sensor: DR, bin_full_sensor: BIN, barcode_pattern: '^[0-9]{8,14}$'{{if .BinService}}, service_lock: LS, service_sensor: DS{{end}}}
api: {listen: "127.0.0.1:0"}
{{.Extra}}
`))

const staffBadge = "BADGE7788"

type cabinet struct {
	Dir, Store, KeyFile, Front, Returns, Badge, Config string
	AutoClose                                          string
	CentralPub                                         string // security.central_public_key
	Extra                                              string // more YAML (the mqtt section)
	MinFree                                            string // store.min_free
	Lockout                                            string // policy.lockout (default 30s)
	AccessibleA03                                      bool   // compartment A03 reachable from a wheelchair
	ItemSensors                                        bool   // every compartment has an item sensor (I1..I6)
	BinService                                         bool   // the return bin has a service door (lock LS, sensor DS)
	Badges                                             []locker.Badge
}

func newCabinet(t *testing.T, autoClose string, opts ...func(*cabinet)) *cabinet {
	t.Helper()
	dir := t.TempDir()
	c := &cabinet{Dir: dir, Store: filepath.Join(dir, "state", "lockerd.db"), KeyFile: filepath.Join(dir, "pickup.key"),
		Front: filepath.Join(dir, "scanner-front"), Returns: filepath.Join(dir, "scanner-returns"),
		Badge: lockertest.Key.Hash(staffBadge), Config: filepath.Join(dir, "lockerd.yaml"), AutoClose: autoClose}
	for _, o := range opts {
		o(c)
	}
	if err := os.WriteFile(c.KeyFile, []byte(fmt.Sprintf("%x\n", []byte(lockertest.Key))), 0o600); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := cabinetConfig.Execute(&buf, c); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.Config, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return c
}

// daemon is a running lockerd process.
type daemon struct {
	t     *testing.T
	cmd   *exec.Cmd
	api   string
	token string // the per-boot API token lockerd wrote for lockerctl
	mu    sync.Mutex
	log   bytes.Buffer
	// readies counts "ready" lines (lockerd runs itself again on a
	// pushed configuration); lastReady is the last one's API and token file.
	readies   int
	lastReady [2]string
	done      chan struct{}
	err       error
	ready     chan readyLine // the first "ready"

	seenMu sync.Mutex
	seenC  *sync.Cond
	seen   []locker.Event // every event, from the API's event stream
}

type readyLine struct{ Msg, API, TokenFile string }

// start runs lockerd on cfg and waits for its "ready" log line.
func start(t *testing.T, cfg string) *daemon {
	t.Helper()
	return startUnder(t, cfg)
}

// startUnder is start with lockerd run through a wrapper command (such as
// prlimit) that execs it.
func startUnder(t *testing.T, cfg string, wrapper ...string) *daemon {
	t.Helper()
	return launch(t, cfg, nil, wrapper...)
}

// launch starts lockerd with extra environment variables.
func launch(t *testing.T, cfg string, env []string, wrapper ...string) *daemon {
	t.Helper()
	return launchBin(t, lockerdBin, cfg, env, wrapper...)
}

// launchBin starts the lockerd binary bin (a cross build, say) and waits
// until it is ready.
func launchBin(t *testing.T, bin, cfg string, env []string, wrapper ...string) *daemon {
	t.Helper()
	d := startBin(t, bin, cfg, env, wrapper...)
	d.waitReady(60 * time.Second) // a cross build under qemu-user starts slowly
	return d
}

// startBin starts the lockerd binary bin; waitReady waits for its first
// "ready".
func startBin(t *testing.T, bin, cfg string, env []string, wrapper ...string) *daemon {
	t.Helper()
	argv := append(append(wrapper, bin), "-config", cfg)
	d := &daemon{t: t, cmd: exec.Command(argv[0], argv[1:]...), done: make(chan struct{})}
	if env != nil {
		d.cmd.Env = append(os.Environ(), env...)
	}
	stderr, err := d.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan readyLine, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			d.mu.Lock()
			d.log.WriteString(line + "\n")
			d.mu.Unlock()
			var rec struct {
				Msg, API  string
				TokenFile string `json:"api_token_file"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "ready" {
				d.mu.Lock()
				d.readies++
				d.lastReady = [2]string{rec.API, rec.TokenFile}
				d.mu.Unlock()
				select { // only the first is waited for here; see reattach
				case ready <- readyLine{rec.Msg, rec.API, rec.TokenFile}:
				default:
				}
			}
		}
		d.err = d.cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() { d.kill() })
	d.ready = ready
	return d
}

func (d *daemon) waitReady(within time.Duration) {
	t := d.t
	t.Helper()
	select {
	case r := <-d.ready:
		d.api = r.API
		tok, err := httpapi.ReadToken(r.TokenFile)
		if err != nil {
			t.Fatalf("lockerd's API token: %v", err)
		}
		d.token = tok
	case <-d.done:
		t.Fatalf("lockerd exited before ready: %v\n%s", d.err, d.logs())
	case <-time.After(within):
		t.Fatalf("lockerd not ready\n%s", d.logs())
	}
	d.follow()
}

// follow reads the daemon's event stream (Server-Sent Events) into d.seen:
// events stay visible to the test after the central library acked them
// out of the outbox.
func (d *daemon) follow() {
	if d.seenC == nil { // once: a stream of an earlier run may still signal it
		d.seenC = sync.NewCond(&d.seenMu)
	}
	resp, err := http.Get("http://" + d.api + "/v1/events/stream")
	if err != nil {
		d.t.Fatalf("event stream: %v", err)
	}
	// The stream holds what is committed from now on; what was recorded
	// before it (between lockerd's start and "ready": its link connects
	// meanwhile) and is still in the outbox is added too, once by seq.
	seqs := map[uint64]bool{}
	add := func(e locker.Event) {
		d.seenMu.Lock()
		if !seqs[e.Seq] {
			seqs[e.Seq] = true
			d.seen = append(d.seen, e)
		}
		d.seenMu.Unlock()
		d.seenC.Broadcast()
	}
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			var e locker.Event
			if json.Unmarshal([]byte(data), &e) != nil {
				continue
			}
			add(e)
		}
	}()
	var before []locker.Event
	if d.call("GET", "/v1/events?after=0&limit=10000", nil, &before) == nil {
		for _, e := range before {
			add(e)
		}
		d.seenMu.Lock()
		slices.SortStableFunc(d.seen, func(a, b locker.Event) int { return cmp.Compare(a.Seq, b.Seq) })
		d.seenMu.Unlock()
	}
}

func (d *daemon) logs() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.log.String()
}

func (d *daemon) kill() {
	if d.cmd.Process != nil {
		d.cmd.Process.Signal(syscall.SIGKILL)
		<-d.done
	}
}

// reattach waits (up to within) until lockerd has said "ready" n times in
// all (it ran itself again), then talks to the new run: its API address,
// token and event stream.
func (d *daemon) reattach(n int, within time.Duration) {
	d.t.Helper()
	deadline := time.Now().Add(within)
	for {
		d.mu.Lock()
		got, last := d.readies, d.lastReady
		d.mu.Unlock()
		if got >= n {
			tok, err := httpapi.ReadToken(last[1])
			if err != nil {
				d.t.Fatalf("lockerd's API token after its restart: %v", err)
			}
			d.api, d.token = last[0], tok
			d.seenMu.Lock()
			d.seen = nil
			d.seenMu.Unlock()
			d.follow()
			return
		}
		select {
		case <-d.done:
			d.t.Fatalf("lockerd exited instead of running again: %v\n%s", d.err, d.logs())
		default:
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("lockerd did not say ready %d times within %v\n%s", n, within, d.logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readyCount is how many times lockerd has said "ready".
func (d *daemon) readyCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.readies
}

// stop sends SIGTERM and waits for a clean exit.
func (d *daemon) stop() {
	d.t.Helper()
	d.stopWith(syscall.SIGTERM)
}

// stopWith sends sig and waits for a clean exit.
func (d *daemon) stopWith(sig os.Signal) {
	d.t.Helper()
	d.cmd.Process.Signal(sig)
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
		d.t.Fatalf("lockerd did not stop on %v", sig)
	}
	if d.err != nil {
		d.t.Fatalf("lockerd exit after %v: %v\n%s", sig, d.err, d.logs())
	}
}

// client is an API client with the daemon's token, as lockerctl's.
func (d *daemon) client() *httpapi.Client {
	c := httpapi.NewClient(d.api)
	c.Token = d.token
	return c
}

// call is one API request (must adds the daemon's log to failures).
func (d *daemon) call(method, path string, body, into any) error {
	return d.client().Do(method, path, body, into)
}

func (d *daemon) must(method, path string, body, into any) {
	d.t.Helper()
	if err := d.call(method, path, body, into); err != nil {
		d.t.Fatalf("%v\n%s", err, d.logs())
	}
}

func (d *daemon) addOrder(req httpapi.AddOrderRequest) httpapi.AddOrderReply {
	d.t.Helper()
	var rep httpapi.AddOrderReply
	d.must("POST", "/v1/orders", req, &rep)
	return rep
}

func (d *daemon) scan(scanner, text string) locker.ScanResult {
	d.t.Helper()
	var res locker.ScanResult
	d.must("POST", "/v1/scan", httpapi.ScanRequest{Scanner: scanner, Text: text}, &res)
	return res
}

func (d *daemon) sim(action, door string) {
	d.t.Helper()
	d.must("POST", "/v1/sim", sim.Request{Action: action, Door: door}, nil)
}

func (d *daemon) events(after uint64) []locker.Event {
	d.t.Helper()
	var evs []locker.Event
	d.must("GET", fmt.Sprintf("/v1/events?after=%d&limit=10000", after), nil, &evs)
	return evs
}

// waitEvent waits (up to 10 s) until an event of type typ with data
// matching want has been streamed, and returns it.
func (d *daemon) waitEvent(typ locker.EventType, want map[string]any) locker.Event {
	d.t.Helper()
	return d.waitEventWithin(typ, want, 10*time.Second)
}

// waitEventWithin is waitEvent with its own bound, for what takes several
// MQTT reconnects (paho backs off up to mqtt's max reconnect interval).
func (d *daemon) waitEventWithin(typ locker.EventType, want map[string]any, timeout time.Duration) locker.Event {
	d.t.Helper()
	var found locker.Event
	d.waitForWithin(fmt.Sprintf("a %s event with %v", typ, want), timeout, func(seen []locker.Event) bool {
		for _, e := range seen {
			if e.Type == typ && lockertest.Matches(e.Fields(), want) {
				found = e
				return true
			}
		}
		return false
	})
	return found
}

// waitCount waits until at least n matching events have been streamed.
func (d *daemon) waitCount(typ locker.EventType, want map[string]any, n int) {
	d.t.Helper()
	d.waitFor(fmt.Sprintf("%d %s events with %v", n, typ, want), func(seen []locker.Event) bool {
		return countIn(seen, typ, want) >= n
	})
}

func (d *daemon) waitFor(what string, ok func([]locker.Event) bool) {
	d.t.Helper()
	d.waitForWithin(what, 10*time.Second, ok)
}

func (d *daemon) waitForWithin(what string, within time.Duration, ok func([]locker.Event) bool) {
	d.t.Helper()
	timeout := time.AfterFunc(within, d.seenC.Broadcast)
	defer timeout.Stop()
	deadline := time.Now().Add(within)
	d.seenMu.Lock()
	defer d.seenMu.Unlock()
	for !ok(d.seen) {
		if time.Now().After(deadline) {
			d.t.Fatalf("timed out waiting for %s\nlog:\n%s", what, d.logs())
		}
		d.seenC.Wait()
	}
}

// streamed returns every event streamed so far.
func (d *daemon) streamed() []locker.Event {
	d.seenMu.Lock()
	defer d.seenMu.Unlock()
	return append([]locker.Event(nil), d.seen...)
}

func countIn(evs []locker.Event, typ locker.EventType, want map[string]any) int {
	n := 0
	for _, e := range evs {
		if e.Type == typ && lockertest.Matches(e.Fields(), want) {
			n++
		}
	}
	return n
}

func (d *daemon) count(typ locker.EventType, want map[string]any) int {
	return countIn(d.streamed(), typ, want)
}

func (d *daemon) status() locker.Status {
	d.t.Helper()
	var st locker.Status
	d.must("GET", "/v1/status", nil, &st)
	return st
}

func (d *daemon) kioskState() kiosk.State {
	d.t.Helper()
	var st kiosk.State
	d.must("GET", "/kiosk/state", nil, &st)
	return st
}

func (d *daemon) compartment(id string) locker.CompartmentStatus {
	d.t.Helper()
	for _, c := range d.status().Compartments {
		if c.ID == id {
			return c
		}
	}
	d.t.Fatalf("no compartment %s", id)
	return locker.CompartmentStatus{}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// metrics returns the daemon's /metrics page.
func (d *daemon) metrics() string {
	resp, err := http.Get("http://" + d.api + "/metrics")
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
