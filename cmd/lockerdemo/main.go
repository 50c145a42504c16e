// Command lockerdemo is `make demo`: a fake library system (SIP2),
// lockerhub (the central, with its embedded MQTT broker) and lockerd on
// configs/demo.yaml (simulated hardware), three orders made centrally and
// loaded by "staff", and a guide to what to try. It checks every port
// before it starts anything and says which one is taken; it waits for each
// part to be ready (not for a fixed time); and it stops everything it
// started on Ctrl-C, or as soon as any part dies.
//
//	lockerdemo [-bin DIR] [-dir DIR] [-config configs/demo.yaml]
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/lockerd/lockerd/drivers/sim"
	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/locker/httpapi"
	"github.com/lockerd/lockerd/sync/hub"
	"github.com/lockerd/lockerd/sync/hub/hubclient"
	"github.com/lockerd/lockerd/sync/protocol"
)

// addrs are the demo's addresses: configs/demo.yaml's (lockerd's API, the
// broker it connects to) and the hub's config that run writes.
type addrs struct{ HubHTTP, HubMQTT, ILS, LockerAPI string }

var demoAddrs = addrs{HubHTTP: "127.0.0.1:8490", HubMQTT: "127.0.0.1:11883", ILS: "127.0.0.1:16001", LockerAPI: "127.0.0.1:8480"}

const (
	lockerID = "demo-01"
	staff    = "DEMOSTAFF1"
)

func main() {
	bin := flag.String("bin", "bin", "the directory holding lockerd, lockerctl and lockerhub (make build)")
	dir := flag.String("dir", "/tmp/lockerd-demo", "the demo's directory (made afresh: stores, logs, QR codes)")
	cfg := flag.String("config", "configs/demo.yaml", "lockerd's configuration (its store must be in -dir)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, demoAddrs, *bin, *dir, *cfg, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		os.Exit(1)
	}
}

// checkPorts says which of the demo's ports another program holds.
func checkPorts(addrs ...string) error {
	var taken []string
	for _, a := range addrs {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			taken = append(taken, fmt.Sprintf("%s (%v)", a, errors.Unwrap(err)))
			continue
		}
		ln.Close()
	}
	if len(taken) > 0 {
		return fmt.Errorf("port taken: %s — another program (or a demo still running) holds it; stop it and run make demo again (ss -ltnp shows who)",
			strings.Join(taken, ", "))
	}
	return nil
}

// part is one process the demo started.
type part struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func start(name, logFile string, args ...string) (*part, error) {
	f, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	// Its own process group: the terminal's Ctrl-C reaches the demo only,
	// which stops the parts in order (lockerd first, the ILS last).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	p := &part{name: name, cmd: cmd, log: logFile, done: make(chan struct{})}
	go func() { cmd.Wait(); f.Close(); close(p.done) }()
	return p, nil
}

func (p *part) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// tail is the end of a part's log, for a message about its death.
func (p *part) tail() string {
	raw, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	return strings.Join(lines[max(0, len(lines)-8):], "\n")
}

// waitFor polls ready every 100 ms until it says yes, ctx ends, a part
// dies, or within passes.
func waitFor(ctx context.Context, what string, within time.Duration, parts []*part, ready func() (bool, error)) error {
	deadline := time.Now().Add(within)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		ok, err := ready()
		if ok {
			return nil
		}
		last = err
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not within %v (last: %v)", what, within, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		for _, p := range parts {
			select {
			case <-p.done:
				return fmt.Errorf("%s died while waiting for %s (%s):\n%s", p.name, what, p.log, p.tail())
			default:
			}
		}
	}
}

func run(ctx context.Context, a addrs, bin, dir, cfg string, out io.Writer) error {
	hubHTTP, hubMQTT, ilsAddr, lockerAPI := a.HubHTTP, a.HubMQTT, a.ILS, a.LockerAPI
	for _, b := range []string{"lockerd", "lockerctl", "lockerhub"} {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			return fmt.Errorf("%s: %w (make build)", filepath.Join(bin, b), err)
		}
	}
	cwd, _ := os.Getwd()
	abs := func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(cwd, p)
	}
	if err := checkPorts(hubHTTP, hubMQTT, ilsAddr, lockerAPI); err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	hubConf := strings.Join([]string{
		"store: {path: hub.db}",
		"http: {listen: " + hubHTTP + "}",
		"mqtt: {listen: " + hubMQTT + "}",
		// The demo's keys lie beside lockerd's demo configuration.
		fmt.Sprintf("keys: {signing_key_file: %s, pickup_key_file: %s}", filepath.Join(filepath.Dir(abs(cfg)), "demo-central.key"),
			filepath.Join(filepath.Dir(abs(cfg)), "demo-pickup.key")),
		"lockers: [" + lockerID + "]",
		"sip2: {address: " + ilsAddr + ", user: demo-locker, password_file: sip2.pw, institution: DEMO, location: DEMO-LOCKERS, heartbeat: 10s}",
	}, "\n") + "\n"
	if err := os.WriteFile(filepath.Join(dir, "lockerhub.yaml"), []byte(hubConf), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "sip2.pw"), []byte("demo\n"), 0o600); err != nil {
		return err
	}

	var parts []*part
	defer func() {
		for i := len(parts) - 1; i >= 0; i-- {
			parts[i].stop()
		}
		fmt.Fprintf(out, "\ndemo stopped (logs in %s)\n", dir)
	}()
	ils, err := start("the fake library system", filepath.Join(dir, "ils.log"), filepath.Join(bin, "lockerhub"), "sip2-fake", "-listen", ilsAddr)
	if err != nil {
		return err
	}
	parts = append(parts, ils)
	if err := waitFor(ctx, "the fake library system on "+ilsAddr, 10*time.Second, parts, func() (bool, error) { return dialable(ilsAddr) }); err != nil {
		return err
	}
	central, err := start("lockerhub", filepath.Join(dir, "lockerhub.log"), filepath.Join(bin, "lockerhub"), "serve", "-config", filepath.Join(dir, "lockerhub.yaml"))
	if err != nil {
		return err
	}
	parts = append(parts, central)
	hc := hubclient.New(hubHTTP)
	if err := waitFor(ctx, "lockerhub's API on "+hubHTTP, 20*time.Second, parts, func() (bool, error) {
		var h struct{ OK, Broker bool }
		err := hc.Do("GET", "/healthz", nil, &h)
		return err == nil && h.OK && h.Broker, err
	}); err != nil {
		return err
	}
	token, err := os.ReadFile(filepath.Join(dir, "admin.token"))
	if err != nil {
		return fmt.Errorf("lockerhub's first admin token: %w", err)
	}
	hc.Token = strings.TrimSpace(string(token))

	daemon, err := start("lockerd", filepath.Join(dir, "lockerd.log"), filepath.Join(bin, "lockerd"), "-config", cfg)
	if err != nil {
		return err
	}
	parts = append(parts, daemon)
	var lc *httpapi.Client
	if err := waitFor(ctx, "lockerd ready", 20*time.Second, parts, func() (bool, error) {
		tokenFile, err := readyLine(daemon.log)
		if err != nil || tokenFile == "" {
			return false, err
		}
		tok, err := httpapi.ReadToken(tokenFile)
		if err != nil {
			return false, err
		}
		lc = httpapi.NewClient(lockerAPI)
		lc.Token = tok
		_, err = lc.Status()
		return err == nil, err
	}); err != nil {
		return err
	}
	if err := waitFor(ctx, "lockerhub to see "+lockerID+" online", 20*time.Second, parts, func() (bool, error) {
		ls, err := hc.Lockers()
		for _, l := range ls {
			if l.ID == lockerID && l.Online {
				return true, nil
			}
		}
		return false, err
	}); err != nil {
		return err
	}
	if _, err := hc.AddUser("demo", "admin", "demo-password"); err != nil {
		return fmt.Errorf("console user: %w", err)
	}
	fmt.Fprintln(out, "lockerhub (central, embedded MQTT broker, SIP2 bridge), a fake library system (SIP2 on "+ilsAddr+")")
	fmt.Fprintln(out, "and lockerd (simulated locker "+lockerID+") are running.")
	fmt.Fprintln(out)

	// Three orders: reader 21000001's two share one code (one scan opens
	// both); each loaded by "staff" at the cabinet.
	first := ""
	for _, o := range []struct{ size, barcode, title, patron string }{
		{"S", "9787020002207", "Dream of the Red Chamber", "21000001"},
		{"M", "9787532736744", "Fortress Besieged", "21000002"},
		{"L", "9787544253994", "One Hundred Years", "21000001"},
	} {
		req := hub.NewOrder{Locker: lockerID, Size: o.size, Patron: o.patron, Items: []protocol.Item{{Barcode: o.barcode, Title: o.title}}, TTL: "72h"}
		if o.patron == "21000001" && first != "" {
			req.SameCodeAs = first
		}
		created, err := hc.CreateOrder(req)
		if err != nil {
			return fmt.Errorf("order: %w", err)
		}
		if first == "" {
			first = created.Order.ID
		}
		comp, err := load(ctx, lc, created.Order.ID, parts)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "  order %s for %s (rev %d), expires %s\n", created.Order.ID, lockerID, created.Order.Rev, created.Order.ExpiresAt.Local().Format(time.DateTime))
		if created.Code != "" {
			qr := filepath.Join(dir, "qr-"+o.size+".png")
			if err := qrcode.WriteFile(created.Code, qrcode.Medium, 256, qr); err != nil {
				return err
			}
			fmt.Fprintf(out, "  pickup code: %s (QR code: %s)\n", created.Code, qr)
		} else {
			fmt.Fprintf(out, "  pickup code: the same as order %s\n", first)
		}
		fmt.Fprintf(out, "  loaded by staff into %s\n\n", comp)
	}
	guide(out, a, bin, dir)

	// Until Ctrl-C, or until a part dies.
	died := make(chan *part, len(parts))
	for _, p := range parts {
		go func() { <-p.done; died <- p }()
	}
	select {
	case <-ctx.Done():
		return nil
	case p := <-died:
		return fmt.Errorf("%s stopped (%s):\n%s", p.name, p.log, p.tail())
	}
}

// load waits for an order to reach lockerd, then has staff load it: the
// badge, the order id, the door closed, the badge again.
func load(ctx context.Context, lc *httpapi.Client, orderID string, parts []*part) (string, error) {
	if err := waitFor(ctx, "order "+orderID+" at lockerd", 20*time.Second, parts, func() (bool, error) {
		orders, err := lc.Orders()
		for _, o := range orders {
			if o.ID == orderID {
				return true, nil
			}
		}
		return false, err
	}); err != nil {
		return "", err
	}
	if res, err := lc.Scan("front", staff); err != nil || res.Outcome != locker.OutcomeStaffOn {
		return "", fmt.Errorf("staff badge: %+v %v", res, err)
	}
	res, err := lc.Scan("front", orderID)
	if err != nil || res.Outcome != locker.OutcomeLoading || len(res.Compartments) == 0 {
		return "", fmt.Errorf("loading %s: %+v %v", orderID, res, err)
	}
	if _, err := sim.Remote(lc.Do, "close", res.Compartments[0]); err != nil {
		return "", fmt.Errorf("closing %s: %w", res.Compartments[0], err)
	}
	if _, err := lc.Scan("front", staff); err != nil {
		return "", err
	}
	return res.Compartments[0], nil
}

// readyLine finds lockerd's "ready" log line and its API token file.
func readyLine(logFile string) (string, error) {
	f, err := os.Open(logFile)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var rec struct {
			Msg       string
			TokenFile string `json:"api_token_file"`
		}
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "ready" {
			return rec.TokenFile, nil
		}
	}
	return "", errors.New("not ready yet")
}

func dialable(addr string) (bool, error) {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false, err
	}
	c.Close()
	return true, nil
}

func guide(out io.Writer, a addrs, bin, dir string) {
	ctl := bin + "/lockerctl -config configs/demo.yaml"
	hubc := bin + "/lockerhub"
	fmt.Fprintf(out, `The staff console: http://%s/console/  (sign in: demo / demo-password)

Try it in another terminal (lockerhub's API needs a token: the demo's admin token is in %s/admin.token):
  export LOCKERHUB_TOKEN_FILE=%s/admin.token
  %s scan --scanner front CODE        # pick up: the door opens, closes by itself after 4 s
                                      # reader 21000001's code (the first order's) opens both of their doors at once
  http://%s/ in a browser: the kiosk; Accessibility speaks each screen; scan a library card
  %s scan --scanner front 21000002    # ... and type PIN 4321 on the kiosk: that reader's order opens
  %s scan --scanner front WRONG1      # refused; five of these lock the scanner out
  %s circ list                    # after a pickup: each book a loan in the library system, with its due date
  %s scan --scanner returns 9787020002207   # return a book: checked in at the library system
  %s scan --scanner returns 9787020008735   # a book on hold elsewhere: an exception for the staff
  %s circ list --state exception ; %s circ resolve ID --note 'sent to North branch'
  %s sim jam A02 ; %s sim open B03 ; %s sim bin-full   # faults
  %s sim offline ; %s sim online   # the lock controller stops answering, and is back
  %s status ; %s events tail -f
  %s events --locker %s -f      # what the central library receives
  %s order add --locker %s --size S    # a new order (staff badge: %s)
  %s scan --scanner front %s ; %s scan --scanner front 9787536692930   # a book from the hold shelf: the central asks the
                                      # library system whose hold it is and makes the order; the door opens for loading
  %s scan --scanner front 9787506365437   # ... a hold for another pickup point: refused, on the kiosk's staff screen
  %s order add --locker %s --delivery ; ... ; %s scan --scanner front DEMOVOL1   # a volunteer collects delivery orders
  %s scan --scanner front DEMOTECH1 ; %s scan --scanner front MAINT-A01   # a technician: maintenance only
  %s open --locker %s C02 --reason 'reader called support'   # signed remote open

Ctrl-C stops the demo.
`, a.HubHTTP, dir, dir, ctl, a.LockerAPI, ctl, ctl, hubc, ctl, ctl, hubc, hubc, ctl, ctl, ctl, ctl, ctl, ctl, ctl,
		hubc, lockerID, hubc, lockerID, staff, ctl, staff, ctl, ctl, hubc, lockerID, ctl, ctl, ctl, hubc, lockerID)
}
