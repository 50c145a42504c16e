// Command lockerctl is the technician's and staff's tool for a locker. It
// talks to the running lockerd through its local API (api.listen, loopback
// only), and checks config files and pickup-code hashes offline.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lockerd/lockerd/cmd/internal/cliflag"
	"github.com/lockerd/lockerd/cmd/internal/config"
	"github.com/lockerd/lockerd/drivers/sim"
	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/locker/boltstore"
	"github.com/lockerd/lockerd/locker/httpapi"
)

const usage = `lockerctl — talk to a running lockerd, check configs and codes

Usage: lockerctl [-api HOST:PORT | -config FILE] COMMAND [ARGS]
       (the global flags may also follow the command)

Commands:
  status [--wait DURATION]                  doors, compartments, order counts, outbox depth
  orders list                               stored orders
  orders add [--size S] [--compartment ID] [--id ID] [--item BARCODE[:TITLE]]... [--ttl 72h] [--assigned]
                                            create a ready order (or, --assigned, one for staff
                                            to load); prints its pickup code once
  events tail [--after SEQ] [-f]            outbox events (with -f: keep following)
  scan --scanner NAME TEXT                  inject a scan, as if read by scanner NAME
  open COMPARTMENT --reason TEXT            technician maintenance open (recorded)
  service COMPARTMENT on|off [--reason T]   put a compartment in or out of service
  sim [ACTION DOOR]                         simulated hardware: show, or jam|unjam|open|close|
                                            stick-open|stick-closed|unstick|lock-fail|lock-ok|
                                            slow|fast|lose-reply|keep-reply DOOR,
                                            bin-full|bin-empty, offline|online (the whole controller)
  validate FILE                             check a config file; exit 1 listing every problem
  hash-code --key-file FILE CODE            print the code hash (for staff_badges and integrators)
  selftest [--dry-run] [--only A01,A02] [--close-timeout 60s]
                                            with -config and lockerd stopped: pulse every lock in
                                            turn, check its sensor opens and closes, read the bin
                                            sensor and every scanner; exit 1 if anything failed
  ports                                     serial ports with their USB ids and /dev/serial/by-id
                                            names, and keyboard-wedge scanners (for the config)
  store check [FILE]                        with lockerd stopped: check the store (default store.path of
                                            -config): whole file, bbolt's page check; exit 1 if damaged
  store recover [--from DAMAGED] [--to FILE]
                                            copy what a damaged store holds (orders, unsent events,
                                            compartments, lockouts...) into a new store; DAMAGED defaults to
                                            the one lockerd moved aside
  provision --central URL --token TOKEN [--locker ID] [--dir /etc/lockerd] [--ca FILE]
  provision --uri 'lockerd-provision:?…'    a blank cabinet gets its identity, keys, broker and configuration
                                            from the hub with a one-time token (lockerhub provision create)
  labels -o FILE.png|FILE.pdf               with -config: one label per compartment, its id and a
                                            QR code of LOCKER/COMPARTMENT

The API address is -api, else api.listen of -config, else $LOCKERD_API, else 127.0.0.1:8480.
Commands that act (open, scan, orders add, service, sim ACTION) need lockerd's per-boot API
token: -token-file, else $LOCKERD_TOKEN_FILE, else api.token_file of -config (or of
/etc/lockerd/lockerd.yaml); the file is readable by lockerd's user and root only.
`

func main() {
	// This binary also runs the store's deep check, in a child process of
	// its own (a damaged store may crash whoever maps it).
	boltstore.RunChildCheck(os.Args)
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

type cli struct {
	api       *httpapi.Client
	out, errw io.Writer
}

func run(args []string, out, errw io.Writer) int {
	global := flag.NewFlagSet("lockerctl", flag.ContinueOnError)
	global.SetOutput(errw)
	global.Usage = func() { fmt.Fprint(errw, usage) }
	api := global.String("api", "", "lockerd API address")
	cfgFile := global.String("config", "", "read the API address and token file from this config")
	tokenFile := global.String("token-file", "", "lockerd's API token (default: api.token_file of -config or of "+config.DefaultPath+")")
	// Global flags stand before or after the command, as lockerhub's -hub.
	rest, err := cliflag.Globals(global, args)
	if err != nil {
		fmt.Fprintf(errw, "lockerctl: %v\n", err)
		return 2
	}
	if len(rest) == 0 {
		fmt.Fprint(errw, usage)
		return 2
	}
	switch rest[0] {
	case "selftest":
		return selftest(*cfgFile, rest[1:], out, errw)
	case "labels":
		return labels(*cfgFile, rest[1:], out, errw)
	case "ports":
		return ports(out, errw)
	case "provision":
		return provision(rest[1:], out, errw)
	case "store":
		return storeCmd(*cfgFile, rest[1:], out, errw)
	}
	addr := *api
	if addr == "" && *cfgFile != "" {
		cfg, err := config.Load(*cfgFile)
		if err != nil {
			fmt.Fprintf(errw, "lockerctl: %v\n", err)
			return 2
		}
		addr = cfg.API.Listen
	}
	if addr == "" {
		addr = os.Getenv("LOCKERD_API")
	}
	if addr == "" {
		addr = config.DefaultListen
	}
	c := &cli{api: httpapi.NewClient(addr), out: out, errw: errw}
	c.api.Token = apiToken(*tokenFile, *cfgFile)
	cmd, cargs := rest[0], rest[1:]
	switch cmd {
	case "status":
		err = c.status(cargs)
	case "orders":
		err = c.orders(cargs)
	case "events":
		err = c.events(cargs)
	case "scan":
		err = c.scan(cargs)
	case "open":
		err = c.open(cargs)
	case "service":
		err = c.service(cargs)
	case "sim":
		err = c.sim(cargs)
	case "validate":
		return validate(cargs, out, errw)
	case "hash-code":
		err = hashCode(cargs, out)
	case "help", "-h", "--help":
		fmt.Fprint(out, usage)
		return 0
	default:
		fmt.Fprintf(errw, "lockerctl: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if err != nil {
		fmt.Fprintf(errw, "lockerctl %s: %v\n", cmd, err)
		return 1
	}
	return 0
}

// apiToken finds lockerd's per-boot API token, which the admin routes
// (open, scan, orders add, service, sim) need: -token-file, else
// $LOCKERD_TOKEN_FILE, else api.token_file of the config (-config, else
// the installed one). The file is readable by lockerd's user and root
// only; without it the read-only commands still work.
func apiToken(tokenFile, cfgFile string) string {
	path := tokenFile
	if path == "" {
		path = os.Getenv("LOCKERD_TOKEN_FILE")
	}
	if path == "" {
		f := cfgFile
		if f == "" {
			f = config.DefaultPath
		}
		if raw, err := os.ReadFile(f); err == nil {
			if cfg, err := config.Parse(f, raw, false); err == nil {
				path = cfg.APITokenFile()
			}
		}
	}
	if path == "" {
		return ""
	}
	tok, err := httpapi.ReadToken(path)
	if err != nil {
		return ""
	}
	return tok
}

func (c *cli) status(args []string) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	wait := fs.Duration("wait", 0, "wait up to this long for lockerd to answer")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := cliflag.Parse(fs, args); err != nil {
		return err
	}
	var st locker.Status
	deadline := time.Now().Add(*wait)
	for {
		var err error
		if st, err = c.api.Status(); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
	if *asJSON {
		return printJSON(c.out, st)
	}
	fmt.Fprintf(c.out, "locker %s  boot %d  outbox %d events (last seq %d)  return bin full: %v\n",
		st.LockerID, st.Boot, st.OutboxDepth, st.LastSeq, st.BinFull)
	var states []string
	for s, n := range st.Orders {
		states = append(states, fmt.Sprintf("%s=%d", s, n))
	}
	sort.Strings(states)
	fmt.Fprintf(c.out, "orders: %s\n", strings.Join(states, " "))
	if len(st.StaffOn) > 0 {
		fmt.Fprintf(c.out, "staff sessions on: %s\n", strings.Join(st.StaffOn, ", "))
	}
	tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "COMPARTMENT\tSIZE\tSTATE\tDOOR\tORDER\tJAMS")
	for _, cp := range st.Compartments {
		door := "closed"
		if cp.DoorOpen {
			door = "OPEN"
		}
		if cp.DoorUnknown {
			door = "unknown (last " + door + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", cp.ID, cp.Size, cp.Effective, door, cp.OrderID, cp.Jams)
	}
	return tw.Flush()
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (c *cli) orders(args []string) error {
	if len(args) == 0 {
		return errors.New("want: orders list | orders add")
	}
	switch args[0] {
	case "list":
		os, err := c.api.Orders()
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ORDER\tSTATE\tSIZE\tCOMPARTMENTS\tITEMS\tEXPIRES")
		for _, o := range os {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", o.ID, o.State, o.Size, strings.Join(o.Compartments, ","),
				len(o.Items), o.ExpiresAt.Local().Format(time.DateTime))
		}
		return tw.Flush()
	case "add":
		fs := flag.NewFlagSet("orders add", flag.ContinueOnError)
		var req httpapi.AddOrderRequest
		fs.StringVar(&req.ID, "id", "", "order id (default: generated)")
		fs.StringVar(&req.Size, "size", "S", "order size S, M, L, XL")
		fs.StringVar(&req.Compartment, "compartment", "", "compartment (default: smallest free that fits)")
		fs.StringVar(&req.TTL, "ttl", "72h", "time until the order expires")
		fs.BoolVar(&req.Assigned, "assigned", false, "register for staff to load (scan the order id in a staff session) instead of ready")
		asJSON := fs.Bool("json", false, "print JSON")
		var its cliflag.Items
		fs.Var(&its, "item", "BARCODE[:TITLE], repeatable")
		if _, err := cliflag.Parse(fs, args[1:]); err != nil {
			return err
		}
		req.Items = its
		rep, err := c.api.AddOrder(req)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(c.out, rep)
		}
		where := "ready in " + strings.Join(rep.Order.Compartments, ",")
		if rep.Order.State == locker.OrderAssigned {
			where = "registered for loading"
			if rep.Order.Assigned != "" {
				where += " into " + rep.Order.Assigned
			}
		}
		fmt.Fprintf(c.out, "order %s %s, expires %s\npickup code: %s\n", rep.Order.ID, where,
			rep.Order.ExpiresAt.Local().Format(time.DateTime), rep.Code)
		return nil
	}
	return fmt.Errorf("unknown orders command %q", args[0])
}

func (c *cli) events(args []string) error {
	if len(args) == 0 || args[0] != "tail" {
		return errors.New("want: events tail [--after SEQ] [-f]")
	}
	fs := flag.NewFlagSet("events tail", flag.ContinueOnError)
	after := fs.Uint64("after", 0, "only events after this seq")
	follow := fs.Bool("f", false, "keep following new events")
	if _, err := cliflag.Parse(fs, args[1:]); err != nil {
		return err
	}
	enc := json.NewEncoder(c.out)
	for {
		evs, err := c.api.Events(*after, 0)
		if err != nil {
			return err
		}
		for _, e := range evs {
			if err := enc.Encode(e); err != nil {
				return err
			}
			*after = e.Seq
		}
		if !*follow {
			return nil
		}
		if len(evs) == 0 {
			time.Sleep(300 * time.Millisecond)
		}
	}
}

func (c *cli) scan(args []string) error {
	fs := flag.NewFlagSet("scan", flag.ContinueOnError)
	scanner := fs.String("scanner", "", "scanner name from the config (or keypad)")
	pos, err := cliflag.Parse(fs, args)
	if err != nil {
		return err
	}
	if *scanner == "" || len(pos) != 1 {
		return errors.New("want: scan --scanner NAME TEXT")
	}
	res, err := c.api.Scan(*scanner, pos[0])
	if err != nil {
		return err
	}
	return printJSON(c.out, res)
}

func (c *cli) open(args []string) error {
	fs := flag.NewFlagSet("open", flag.ContinueOnError)
	reason := fs.String("reason", "", "why (recorded in the maintenance.open event)")
	pos, err := cliflag.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *reason == "" {
		return errors.New("want: open COMPARTMENT --reason TEXT")
	}
	res, err := c.api.Open(pos[0], *reason)
	if err != nil {
		return err
	}
	return printJSON(c.out, res)
}

func (c *cli) service(args []string) error {
	fs := flag.NewFlagSet("service", flag.ContinueOnError)
	reason := fs.String("reason", "technician", "why")
	pos, err := cliflag.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 || (pos[1] != "on" && pos[1] != "off") {
		return errors.New("want: service COMPARTMENT on|off")
	}
	in := pos[1] == "on"
	if err := c.api.Service(pos[0], in, *reason); err != nil {
		return err
	}
	fmt.Fprintf(c.out, "compartment %s in service: %v\n", pos[0], in)
	return nil
}

func (c *cli) sim(args []string) error {
	if len(args) == 0 {
		state, err := sim.Remote(c.api.Do, "", "")
		if err != nil {
			return err
		}
		return printJSON(c.out, state)
	}
	door := ""
	if len(args) > 1 {
		door = args[1]
	}
	if _, err := sim.Remote(c.api.Do, args[0], door); err != nil {
		return err
	}
	fmt.Fprintf(c.out, "sim: %s done\n", strings.TrimSpace(args[0]+" "+door))
	return nil
}

func validate(args []string, out, errw io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(errw, "lockerctl validate: want: validate FILE")
		return 2
	}
	cfg, err := config.Load(args[0])
	if err != nil {
		fmt.Fprintln(errw, err)
		return 1
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintf(errw, "warning: %s\n", w)
	}
	fmt.Fprintf(out, "%s: ok (locker %s, %d compartments, %d scanners, backend %s)\n",
		args[0], cfg.Locker.ID, len(cfg.Compartments), len(cfg.Scanners), cfg.Hardware.Backend)
	return 0
}

func hashCode(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("hash-code", flag.ContinueOnError)
	keyFile := fs.String("key-file", "", "pickup key file (hex)")
	pos, err := cliflag.Parse(fs, args)
	if err != nil {
		return err
	}
	if *keyFile == "" || len(pos) != 1 {
		return errors.New("want: hash-code --key-file FILE CODE")
	}
	raw, err := os.ReadFile(*keyFile)
	if err != nil {
		return err
	}
	key, err := locker.ParseCodeKey(string(raw))
	if err != nil {
		return err
	}
	code, err := locker.NormalizeCode(pos[0])
	if err != nil {
		return err
	}
	fmt.Fprintln(out, key.Hash(code))
	return nil
}
