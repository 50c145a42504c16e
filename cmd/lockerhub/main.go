// Command lockerhub is the reference central library for lockerd's
// protocol v1: an embedded MQTT broker (or an external one), a store of
// lockers, orders and events, signed downlink, and a small command line.
//
//	lockerhub keygen -out DIR                 write central.key / central.pub
//	lockerhub serve [flags]                   run the hub (and the embedded broker)
//	lockerhub order add --locker ID [...]     create an order; prints its code, writes its QR
//	lockerhub order cancel --locker ID ORDER
//	lockerhub snapshot --locker ID
//	lockerhub open --locker ID COMPARTMENT --reason TEXT
//	lockerhub lockers | orders --locker ID | events --locker ID [-f]
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/lockerd/lockerd/cmd/internal/cliflag"
	"github.com/lockerd/lockerd/cmd/internal/hubconfig"
)

const usage = `lockerhub — reference central library for lockerd (protocol v1)

  lockerhub keygen -out DIR
  lockerhub serve -config FILE              (docs/config.md, "lockerhub"; or, for a quick start, the flags:)
  lockerhub serve -store FILE -key FILE -pickup-key-file FILE [-lockers ID,...] [-mqtt-listen ADDR [-broker-users FILE] | -broker URL] [-http ADDR]
  lockerhub validate FILE                   check a config file (and the files it names) before a hub goes live
  lockerhub migrate --from bolt:FILE --to postgres:DSN_FILE   move a stopped hub's data into PostgreSQL (or back)
  lockerhub order add --locker ID [--patron CARD] [--email ADDR] [--phone NUMBER] [--lang zh|en] [--accessible] [--delivery] [--same-code-as ORDER] [--size S] [--compartment ID] [--item BARCODE[:TITLE]]... [--ttl 72h] [--qr FILE] [--pickup-url URL]
                                            with --email or --phone the reader is told when the books are in (notices)
  lockerhub order cancel --locker ID ORDER
  lockerhub snapshot --locker ID [--part-size N]
  lockerhub open --locker ID COMPARTMENT --reason TEXT
  lockerhub provision create --locker ID --config FILE [--ttl 24h] [--central URL] [--qr FILE]
                                            a one-time token for a new cabinet (printed once, with its QR code)
  lockerhub config push --locker ID FILE    validate (lockerd's own checks) and send a configuration; the locker
                                            runs it on probation and rolls back by itself if it is not healthy
  lockerhub config history --locker ID ; lockerhub config rollback --locker ID [--to VERSION]
  lockerhub release add --version V [--rollback] FILE...   binaries named …-arm64, -armv7, -armv6, -amd64 (make cross);
                                            each stored with a manifest signed by the central's key, or with
                                            FILE.manifest when there is one (release sign; a hub with releases.public_key
                                            takes no other)
  lockerhub release sign --key release.key --version V [--rollback] FILE...   where the release key is kept (no hub):
                                            writes FILE.manifest, signed
  lockerhub keygen -name release -out DIR   a release key: its .pub goes in releases.public_key and update.release_key
  lockerhub keygen -name notice -out DIR    the key readers' pickup codes are sealed to until their notices are sent (notices.key_file)
  lockerhub release list
  lockerhub rollout start V [--lockers ID,...|--percent N] [--stages 10,50,100] [--max-failed 0.2]
  lockerhub rollout list                    stages, each locker's result, halted or done
  lockerhub provision list                  the tokens made: for which locker, until when, used when and from where
  lockerhub provision revoke --locker ID --reason TEXT   a cabinet stolen, scrapped or replaced: its broker password
                                            stops working, its certificate goes on the CRL, it is sent nothing more
  lockerhub badge add --locker ID --name NAME --role staff|volunteer|technician [CODE|-]   a named badge (its code hashed by the hub; - reads it from standard input)
  lockerhub badge revoke --locker ID --name NAME    revoked on receipt at the locker
  lockerhub locker add ID                   serve this locker (messages from unknown ids are dropped)
  lockerhub lockers
  lockerhub orders --locker ID
  lockerhub events --locker ID [--after SEQ|EPOCH.SEQ] [-f]
  lockerhub alarms [--state open]           what needs a person: forced doors, jams, full bins, faults, lockers offline, circulation exceptions, ...
  lockerhub alarm ack SEQ ; lockerhub alarm resolve SEQ [--note TEXT]
  lockerhub stock import FILE.csv           the books readers may order (barcode,title,author,isbn[,cover]): the list replaces
                                            the stock whole, or — a row broken — nothing changes and each is named FILE:LINE
  lockerhub stock search WORDS...           by title, author or ISBN (Chinese text too)
  lockerhub notices [--order ID]            what readers were told (ready, reminder, expired, cancelled), by which channel, sent or why not
  lockerhub circ list [--locker ID] [--state queued|sending|done|refused|exception|resolved] [--json]
                                            loans and returns for the library's system (SIP2, docs/sip2.md)
  lockerhub circ retry ID                   send a refused transaction (or an exception) again
  lockerhub circ resolve ID --note TEXT     close a refusal or an exception (an item sorted, a loan keyed in)
  lockerhub token create --name NAME --scope read|orders|open|admin[,...]   an API token, printed once
  lockerhub token list ; lockerhub token revoke ID|NAME
  lockerhub audit                           every state-changing request: who, when, what, from where
  lockerhub user add --name NAME --role viewer|staff|admin [--password-file F]   a console user (password from F or standard input)
  lockerhub users ; lockerhub user disable NAME
  lockerhub webhooks list ; lockerhub webhooks add --url URL --events TYPE[,...] --secret-file FILE ; lockerhub webhooks remove ID
  lockerhub webhooks failed ; lockerhub webhooks redeliver ID     deliveries that gave up, and sending one again
  lockerhub sip2-fake [-listen ADDR]        a fake ILS speaking SIP2, with demo patrons and items (for make demo)

Client commands reach a running hub at -hub ADDR (https://ADDR for TLS),
given before or after the command (default $LOCKERHUB_API or
127.0.0.1:8490), with the API token in $LOCKERHUB_TOKEN or the file
-token-file FILE (default $LOCKERHUB_TOKEN_FILE).
`

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, out, errw io.Writer) int {
	// -hub is global: before or after the subcommand, the same way as
	// lockerctl's -api.
	global := flag.NewFlagSet("lockerhub", flag.ContinueOnError)
	hubAddr := global.String("hub", envOr("LOCKERHUB_API", "127.0.0.1:8490"), "lockerhub HTTP API")
	tokenFile := global.String("token-file", os.Getenv("LOCKERHUB_TOKEN_FILE"), "a file holding the API token (else $LOCKERHUB_TOKEN)")
	args, err := cliflag.Globals(global, args)
	if err != nil {
		fmt.Fprintf(errw, "lockerhub: %v\n", err)
		return 2
	}
	if len(args) == 0 {
		fmt.Fprint(errw, usage)
		return 2
	}
	switch args[0] {
	case "keygen":
		err = keygen(args[1:], out)
	case "serve":
		err = serve(args[1:])
	case "migrate":
		err = migrate(args[1:], out)
	case "validate":
		if len(args) != 2 {
			fmt.Fprint(errw, usage)
			return 2
		}
		if _, err := hubconfig.Load(args[1]); err != nil {
			fmt.Fprintf(errw, "%v\n", err)
			return 1
		}
		fmt.Fprintf(out, "%s: ok\n", args[1])
		return 0
	case "sip2-fake":
		err = sip2Fake(args[1:], out)
	case "order", "locker", "snapshot", "open", "lockers", "orders", "events", "alarms", "alarm", "notices", "stock", "circ", "token", "audit", "webhooks", "user", "users", "badge", "provision", "config", "release", "rollout":
		if len(args) > 1 && args[0] == "release" && args[1] == "sign" {
			err = releaseSign(args[2:], out) // where the release key is: no hub
			break
		}
		if wantsHelp(args[1:]) {
			// Help needs neither a token nor a running hub.
			fmt.Fprint(out, commandHelp(args[0]))
			return 0
		}
		var tok string
		if tok, err = apiToken(*tokenFile); err == nil {
			err = client(*hubAddr, tok, args, out)
		}
	case "help", "-h", "--help":
		fmt.Fprint(out, usage)
		return 0
	default:
		fmt.Fprint(errw, usage)
		return 2
	}
	if err != nil {
		fmt.Fprintf(errw, "lockerhub %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
