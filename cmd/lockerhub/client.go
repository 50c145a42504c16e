// The client commands: one shared client of the hub's API and flag set;
// each group's commands are in its own file.

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/lockerd/lockerd/cmd/internal/cliflag"
	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/sync/hub/hubclient"
	"github.com/lockerd/lockerd/sync/protocol"
)

// call is one client command as given: its name, the shared client of
// the hub's API, the parsed flags and the positional arguments.
type call struct {
	cmd string
	c   *hubclient.Client
	f   *clientFlags
	fs  *flag.FlagSet
	pos []string
	out io.Writer
}

func (k *call) needLocker() error {
	if *k.f.lockerID == "" {
		return errors.New("--locker is required")
	}
	return nil
}

// groups are the commands that take a second word (order add, ...).
var groups = map[string]bool{"order": true, "locker": true, "circ": true, "token": true, "alarm": true, "webhooks": true, "user": true,
	"badge": true, "provision": true, "config": true, "release": true, "rollout": true, "stock": true}

// client runs one client command against the hub at hubAddr.
func client(hubAddr, token string, args []string, out io.Writer) error {
	cmd, sub := args[0], args[1:]
	if groups[cmd] {
		if len(sub) == 0 {
			return fmt.Errorf("want: %s add ...", cmd)
		}
		cmd, sub = cmd+" "+sub[0], sub[1:]
	}
	run, ok := clientCommands[cmd]
	if !ok {
		return fmt.Errorf("unknown command %q", cmd)
	}
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	f := newClientFlags(fs)
	pos, err := cliflag.Parse(fs, sub)
	if err != nil {
		return err
	}
	c := hubclient.New(hubAddr)
	c.Token = token
	if strings.HasPrefix(hubAddr, "https://") {
		c.Addr, c.Scheme = strings.TrimPrefix(hubAddr, "https://"), "https"
	}
	return run(&call{cmd: cmd, c: c, f: f, fs: fs, pos: pos, out: out})
}

// clientFlags are the client commands' flags, parsed by one FlagSet
// (a command uses those it names in its usage).
type clientFlags struct {
	lockerID     *string
	size         *string
	comp         *string
	ttl          *string
	qr           *string
	pickupURL    *string
	reason       *string
	partSize     *int
	after        *string
	follow       *bool
	patron       *string
	email        *string
	phone        *string
	lang         *string
	order        *string
	accessible   *bool
	delivery     *bool
	cfgPath      *string
	centralURL   *string
	relVersion   *string
	relRollback  *bool
	roLockers    *string
	roPercent    *int
	roStages     *string
	roMaxFailed  *float64
	toVersion    *int
	sameCode     *string
	state        *string
	asJSON       *bool
	note         *string
	name         *string
	scope        *string
	hookURL      *string
	role         *string
	passwordFile *string
	hookEvents   *string
	hookSecret   *string
	its          cliflag.Items // --item, repeatable
}

// newClientFlags defines every client flag on fs.
func newClientFlags(fs *flag.FlagSet) *clientFlags {
	f := &clientFlags{}
	f.lockerID = fs.String("locker", "", "locker id")
	f.size = fs.String("size", "S", "order size")
	f.comp = fs.String("compartment", "", "pre-assigned compartment")
	f.ttl = fs.String("ttl", "72h", "order add: the order's lifetime; provision create: how long the token may be used (default 24h)")
	f.qr = fs.String("qr", "", "write the pickup QR code as PNG to this file")
	f.pickupURL = fs.String("pickup-url", "", "QR payload base: URL?locker=ID&code=CODE (default: the bare code)")
	f.reason = fs.String("reason", "", "why (open: cmd.open; provision revoke)")
	f.partSize = fs.Int("part-size", 500, "orders per snapshot part")
	f.after = fs.String("after", "", "events after this position: SEQ (of the locker's first store) or EPOCH.SEQ")
	f.follow = fs.Bool("f", false, "keep following")
	f.patron = fs.String("patron", "", "the reader's library card number (order add; kept at the hub, for the ILS)")
	f.email = fs.String("email", "", "order add: the reader's e-mail address, to tell them when the books are in (notices)")
	f.phone = fs.String("phone", "", "order add: the reader's phone number, for the notice gateway (SMS, WeChat)")
	f.lang = fs.String("lang", "", "order add: the reader's language for notices, zh (default) or en")
	f.order = fs.String("order", "", "notices: only this order's")
	f.accessible = fs.Bool("accessible", false, "order add: the reader needs a compartment reachable from a wheelchair")
	f.delivery = fs.Bool("delivery", false, "order add: a community volunteer or courier collects it (a volunteer badge opens it)")
	f.cfgPath = fs.String("config", "", "provision create: the cabinet's lockerd configuration (its wiring; provisioning fills in its id, keys and broker)")
	f.centralURL = fs.String("central", "", "provision create: the hub's address as the cabinet reaches it (https://HOST:PORT), for the QR code")
	f.relVersion = fs.String("version", "", "release add: the release's version (MAJOR.MINOR.PATCH)")
	f.relRollback = fs.Bool("rollback", false, "release add: the release may replace a newer version (a rollback)")
	f.roLockers = fs.String("lockers", "", "rollout start: the lockers, comma-separated (else --percent of those served)")
	f.roPercent = fs.Int("percent", 0, "rollout start: this share of the lockers served")
	f.roStages = fs.String("stages", "", "rollout start: cumulative percentages of the stages (default 10,50,100)")
	f.roMaxFailed = fs.Float64("max-failed", 0, "rollout start: the share of a stage that may fail before the rollout halts (default 0.2)")
	f.toVersion = fs.Int("to", 0, "config rollback: the version to send again (default: the one applied before the last)")
	f.sameCode = fs.String("same-code-as", "", "order add: give it the pickup code of this order of the same reader (one scan opens both)")
	f.state = fs.String("state", "", "circ list: queued, sending, done, refused, exception or resolved; alarms: open")
	f.asJSON = fs.Bool("json", false, "circ list: one JSON record a line")
	f.note = fs.String("note", "", "circ resolve: what was done")
	f.name = fs.String("name", "", "token create: the token's name (who uses it)")
	f.scope = fs.String("scope", "", "token create: scopes, comma-separated: read, orders, open, admin")
	f.hookURL = fs.String("url", "", "webhooks add: the receiver's URL")
	f.role = fs.String("role", "viewer", "user add: viewer, staff or admin; badge add: staff, volunteer or technician")
	f.passwordFile = fs.String("password-file", "", "user add: a file holding the password (else it is read from standard input)")
	f.hookEvents = fs.String("events", "", "webhooks add: event types, comma-separated")
	f.hookSecret = fs.String("secret-file", "", "webhooks add: a file holding the shared secret")
	fs.Var(&f.its, "item", "BARCODE[:TITLE], repeatable")
	return f
}

// clientCommands are the client commands, each in the file of its group
// (orders.go, fleet.go, circulation.go, users.go, webhooks.go, alarms.go).
var clientCommands = map[string]func(*call) error{
	"order add":          cmdOrderAdd,
	"provision create":   cmdProvisionCreate,
	"config push":        cmdConfigPush,
	"config rollback":    cmdConfigRollback,
	"config history":     cmdConfigHistory,
	"release add":        cmdReleaseAdd,
	"release list":       cmdReleaseList,
	"rollout start":      cmdRolloutStart,
	"rollout list":       cmdRolloutList,
	"provision revoke":   cmdProvisionRevoke,
	"provision list":     cmdProvisionList,
	"badge add":          badgeChange,
	"badge revoke":       badgeChange,
	"locker add":         cmdLockerAdd,
	"order cancel":       cmdOrderCancel,
	"snapshot":           cmdSnapshotCmd,
	"open":               cmdOpenCmd,
	"lockers":            cmdLockersList,
	"orders":             cmdOrdersList,
	"events":             cmdEventsList,
	"circ list":          cmdCircList,
	"circ retry":         circRetryResolve,
	"circ resolve":       circRetryResolve,
	"token create":       cmdTokenCreate,
	"token list":         cmdTokenList,
	"token revoke":       cmdTokenRevoke,
	"user add":           cmdUserAdd,
	"user disable":       cmdUserDisable,
	"users":              cmdUsersList,
	"webhooks list":      cmdWebhooksList,
	"webhooks add":       cmdWebhooksAdd,
	"webhooks remove":    cmdWebhooksRemove,
	"webhooks failed":    cmdWebhooksFailed,
	"webhooks redeliver": cmdWebhooksRedeliver,
	"audit":              cmdAuditLog,
	"alarms":             cmdAlarmsList,
	"alarm ack":          alarmAckResolve,
	"alarm resolve":      alarmAckResolve,
	"notices":            cmdNoticesList,
	"stock import":       cmdStockImport,
	"stock search":       cmdStockSearch,
}

func apiToken(file string) (string, error) {
	if t := strings.TrimSpace(os.Getenv("LOCKERHUB_TOKEN")); t != "" {
		return t, nil
	}
	if file == "" {
		return "", errors.New("no API token: set LOCKERHUB_TOKEN, or give -token-file FILE (or LOCKERHUB_TOKEN_FILE); a new hub writes its first admin token to http.admin_token_file")
	}
	f, err := os.Open(file)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, 1024))
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	return strings.TrimSpace(string(raw)), nil
}

// waitCommand waits briefly for the locker's answer to a command.
func waitCommand(c *hubclient.Client, cmdID, what string, out io.Writer) error {
	for i := 0; i < 50; i++ {
		if rec, err := c.Command(cmdID); err == nil && rec.Status != "" {
			fmt.Fprintf(out, "%s %s: %s %s\n", what, rec.ID, rec.Status, rec.Detail)
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Fprintf(out, "%s %s sent; no answer yet (the locker may be offline; the command expires)\n", what, cmdID)
	return nil
}

// provisionURI is what a provisioning QR code says: where the hub is,
// which locker, the token (lockerctl provision --uri reads it).
func provisionURI(central, lockerID, token string) string {
	return "lockerd-provision:?" + url.Values{"central": {central}, "locker": {lockerID}, "token": {token}}.Encode()
}

func wireItems(its []locker.Item) []protocol.Item {
	out := make([]protocol.Item, len(its))
	for i, it := range its {
		out[i] = protocol.Item{Barcode: it.Barcode, Title: it.Title}
	}
	return out
}

// apiToken is the CLI's API token: $LOCKERHUB_TOKEN, else the file
// given (-token-file, $LOCKERHUB_TOKEN_FILE).
// wantsHelp reports whether a client command's arguments ask for its
// help (-h, -help, --help, or "help" as its only word).
func wantsHelp(args []string) bool {
	if len(args) == 1 && args[0] == "help" {
		return true
	}
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help":
			return true
		}
	}
	return false
}

// commandHelp is the part of the usage about one command: its lines
// (with their continuation lines) and how a client reaches the hub.
func commandHelp(cmd string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "lockerhub %s\n\n", cmd)
	lines := strings.Split(usage, "\n")
	in := false
	for _, line := range lines {
		switch {
		case strings.HasPrefix(line, "  lockerhub "):
			in = false
			for _, part := range strings.Split(line, " ; ") {
				f := strings.Fields(part)
				if len(f) >= 2 && f[0] == "lockerhub" && (f[1] == cmd || f[1] == cmd+"s" || f[1]+"s" == cmd) {
					in = true
				}
			}
		case !strings.HasPrefix(line, "    "):
			in = false
		}
		if in {
			b.WriteString(line + "\n")
		}
	}
	b.WriteString("\n" + usage[strings.Index(usage, "Client commands reach"):])
	return b.String()
}
