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
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	qrcode "github.com/skip2/go-qrcode"

	"github.com/lockerd/lockerd/cmd/internal/cliflag"
	"github.com/lockerd/lockerd/cmd/internal/config"
	"github.com/lockerd/lockerd/cmd/internal/hubconfig"
	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/locker/httpapi"
	"github.com/lockerd/lockerd/sync/broker"
	"github.com/lockerd/lockerd/sync/hub"
	"github.com/lockerd/lockerd/sync/hub/console"
	"github.com/lockerd/lockerd/sync/hub/pgstore"
	"github.com/lockerd/lockerd/sync/protocol"
	"github.com/lockerd/lockerd/sync/sip2"
)

const usage = `lockerhub — reference central library for lockerd (protocol v1)

  lockerhub keygen -out DIR
  lockerhub serve -config FILE              (docs/config.md, "lockerhub"; or, for a quick start, the flags:)
  lockerhub serve -store FILE -key FILE -pickup-key-file FILE [-lockers ID,...] [-mqtt-listen ADDR [-broker-users FILE] | -broker URL] [-http ADDR]
  lockerhub validate FILE                   check a config file (and the files it names) before a hub goes live
  lockerhub migrate --from bolt:FILE --to postgres:DSN_FILE   move a stopped hub's data into PostgreSQL (or back)
  lockerhub order add --locker ID [--patron CARD] [--accessible] [--delivery] [--same-code-as ORDER] [--size S] [--compartment ID] [--item BARCODE[:TITLE]]... [--ttl 72h] [--qr FILE] [--pickup-url URL]
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
	case "order", "locker", "snapshot", "open", "lockers", "orders", "events", "alarms", "alarm", "circ", "token", "audit", "webhooks", "user", "users", "badge", "provision", "config", "release", "rollout":
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

func keygen(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	dir := fs.String("out", ".", "directory for NAME.key (private, hex seed) and NAME.pub (base64 public key)")
	name := fs.String("name", "central", "central (the hub's signing key) or release (a release key, kept off the hub)")
	if _, err := cliflag.Parse(fs, args); err != nil {
		return err
	}
	if *name != "central" && *name != "release" {
		return fmt.Errorf("-name %q: want central or release", *name)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*dir, 0o750); err != nil {
		return err
	}
	keyPath, pubPath := filepath.Join(*dir, *name+".key"), filepath.Join(*dir, *name+".pub")
	if _, err := os.Stat(keyPath); err == nil {
		return fmt.Errorf("%s exists: not overwriting a signing key", keyPath)
	}
	if err := os.WriteFile(keyPath, []byte(hex.EncodeToString(priv.Seed())+"\n"), 0o600); err != nil {
		return err
	}
	b64 := base64.StdEncoding.EncodeToString(pub)
	if err := os.WriteFile(pubPath, []byte(b64+"\n"), 0o644); err != nil {
		return err
	}
	if *name == "release" {
		fmt.Fprintf(out, "wrote %s and %s\nkeep %s off the hub (sign releases with lockerhub release sign --key %s)\nput this in the hub's config:\n  releases:\n    public_key: %q\nand in each locker's:\n  update:\n    release_key: %q\n",
			keyPath, pubPath, keyPath, keyPath, b64, b64)
		return nil
	}
	fmt.Fprintf(out, "wrote %s and %s\nput this in each locker's config:\n  security:\n    central_public_key: %q\n", keyPath, pubPath, b64)
	return nil
}

// archOf is the architecture a release binary's name ends in (make cross
// names them lockerd-linux-ARCH).
func archOf(file string) (string, error) {
	for _, a := range hub.Arches {
		if strings.HasSuffix(file, "-"+a) || strings.HasSuffix(file, "_"+a) {
			return a, nil
		}
	}
	return "", fmt.Errorf("%s: its name must end in -arm64, -armv7, -armv6 or -amd64 (as make cross names them)", file)
}

// releaseSign signs each binary's manifest with the release key, where
// that key is kept (not on the hub): FILE.manifest, which release add
// sends with FILE.
func releaseSign(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("release sign", flag.ContinueOnError)
	keyFile := fs.String("key", "release.key", "the release key (lockerhub keygen -name release)")
	version := fs.String("version", "", "the release's version (MAJOR.MINOR.PATCH)")
	rollback := fs.Bool("rollback", false, "the release may replace a newer version (a rollback)")
	nextKeyFile := fs.String("next-key", "", "a rotation: the next release key's public key file (NAME.pub); lockers that take this release's manifest take manifests signed with it from then on")
	files, err := cliflag.Parse(fs, args)
	if err != nil {
		return err
	}
	if *version == "" || len(files) == 0 {
		return errors.New("want: release sign --key release.key --version V [--next-key next.pub] FILE...")
	}
	key, err := hubconfig.ReadSigningKey(*keyFile)
	if err != nil {
		return err
	}
	var nextKey string
	if *nextKeyFile != "" {
		raw, err := os.ReadFile(*nextKeyFile)
		if err != nil {
			return err
		}
		nextKey = strings.TrimSpace(string(raw))
		pub, err := protocol.ParsePublicKey(nextKey)
		if err != nil {
			return fmt.Errorf("--next-key %s: %w (want the NAME.pub lockerhub keygen -name release wrote)", *nextKeyFile, err)
		}
		if pub.Equal(key.Public()) {
			return fmt.Errorf("--next-key %s: that is the release key itself", *nextKeyFile)
		}
	}
	for _, file := range files {
		arch, err := archOf(file)
		if err != nil {
			return err
		}
		n, sum, err := protocol.DigestFile(file)
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		m := protocol.Manifest{Version: *version, Arch: arch, Size: n, SHA256: sum, Rollback: *rollback, Created: time.Now().UTC(), NextKey: nextKey}
		signed, err := protocol.SealManifest(m, key)
		if err != nil {
			return err
		}
		if err := os.WriteFile(file+".manifest", signed, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(out, "%s.manifest: %s %s, %d bytes, sha256 %s\n", file, m.Version, m.Arch, m.Size, m.SHA256)
		if nextKey != "" {
			fmt.Fprintf(out, "  with the next release key %s: lockers that take it take manifests signed with that key too\n", nextKey)
		}
	}
	return nil
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfgFile := fs.String("config", "", "lockerhub's config file (docs/config.md); the other flags are for a quick start without one")
	store := fs.String("store", "lockerhub.db", "hub store (bbolt file)")
	keyFile := fs.String("key", "central.key", "signing key from lockerhub keygen")
	pickupKeyFile := fs.String("pickup-key-file", "", "the lockers' pickup key (hex), to hash the codes the hub creates")
	mqttListen := fs.String("mqtt-listen", "127.0.0.1:1883", "embedded broker address (ignored with -broker)")
	users := fs.String("broker-users", "", "embedded broker: users file (name:password per line, every locker and the central); required unless -mqtt-listen is loopback")
	brokerURL := fs.String("broker", "", "external broker URL (tcp://host:1883); unset: run the embedded broker")
	prefix := fs.String("prefix", protocol.DefaultPrefix, "topic prefix")
	clientID := fs.String("client-id", "lockerhub", "MQTT client id and username")
	password := fs.String("password-file", "", "MQTT password file for an external broker")
	httpAddr := fs.String("http", "127.0.0.1:8490", "local HTTP API (loopback only: it has no authentication yet)")
	lockers := fs.String("lockers", "", "the lockers this hub serves, comma-separated (also every identity of -broker-users, and those added with 'lockerhub locker add')")
	if _, err := cliflag.Parse(fs, args); err != nil {
		return err
	}
	var c *hubconfig.Config
	if *cfgFile != "" {
		var others []string
		fs.Visit(func(f *flag.Flag) {
			if f.Name != "config" {
				others = append(others, "-"+f.Name)
			}
		})
		if len(others) > 0 {
			return fmt.Errorf("%s with -config: set these in the config file instead", strings.Join(others, " "))
		}
		var err error
		if c, err = hubconfig.Load(*cfgFile); err != nil {
			return err
		}
	} else {
		// The flags as a config file would say them, checked the same way.
		var b strings.Builder
		fmt.Fprintf(&b, "store: {path: %q}\nhttp: {listen: %q, admin_token_file: %q}\n", *store, *httpAddr, filepath.Join(filepath.Dir(*store), "admin.token"))
		fmt.Fprintf(&b, "mqtt: {broker: %q, listen: %q, users_file: %q, topic_prefix: %q, client_id: %q, password_file: %q}\n",
			*brokerURL, *mqttListen, *users, *prefix, *clientID, *password)
		fmt.Fprintf(&b, "keys: {signing_key_file: %q, pickup_key_file: %q}\nlockers: [", *keyFile, *pickupKeyFile)
		for _, id := range strings.Split(*lockers, ",") {
			if id = strings.TrimSpace(id); id != "" {
				fmt.Fprintf(&b, "%q, ", id)
			}
		}
		b.WriteString("]\n")
		wd, _ := os.Getwd()
		var err error
		if c, err = hubconfig.Parse(filepath.Join(wd, "(flags)"), []byte(b.String()), true); err != nil {
			return fmt.Errorf("flags: %w", err)
		}
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	cfg := hub.Config{Prefix: c.MQTT.Prefix, ClientID: c.MQTT.ClientID, SigningKey: c.SigningKey, PickupKey: c.PickupKey,
		StorePath: c.Store.Path, Lockers: c.Lockers, CmdTTL: c.CommandTTL.D(), Log: log,
		LeaseTTL: c.LeaseTTL.D(), ResendAfter: c.ResendAfter.D(), BehindProxy: c.HTTP.BehindProxy, OfflineAfter: c.Alarms.OfflineAfter.D(), WebhookDeadline: c.WebhookDeadline.D(), EgressAllow: c.Egress}
	for _, w := range c.Webhooks {
		cfg.Webhooks = append(cfg.Webhooks, hub.NewWebhook{Name: w.Name, URL: w.URL, Events: w.Events, Secret: w.Secret})
	}
	if c.Password != "" {
		cfg.Username, cfg.Password = c.MQTT.ClientID, c.Password
	}
	cfg.TLS = c.MQTTTLS
	cfg.Provisioning = provisioning(c)
	if err := firstCRL(c); err != nil {
		return err
	}
	cfg.ReleasesDir, cfg.ReleaseKey = c.Releases.Dir, c.ReleaseKey
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	var h *hub.Hub
	var ready atomic.Pointer[hub.Hub] // h, once made (the broker asks it from its own goroutines)
	if len(c.MQTT.Brokers) == 0 {
		for id := range c.Users {
			if id != c.MQTT.ClientID {
				cfg.Lockers = append(cfg.Lockers, id) // an identity with a password is a locker served
			}
		}
		b, err := broker.Start(broker.Config{Addr: c.MQTT.Listen, Prefix: c.MQTT.Prefix, Central: c.MQTT.ClientID, Users: c.Users, Log: log,
			// Lockers provisioned by this hub: their passwords are in its store.
			Check: func(id string, pw []byte) bool { hp := ready.Load(); return hp != nil && hp.BrokerPasswordOK(id, pw) }})
		if err != nil {
			return err
		}
		defer b.Close()
		cfg.Brokers = []string{"tcp://" + b.Addr()}
		log.Info("embedded broker listening", "addr", b.Addr(), "passwords", c.Users != nil)
	} else {
		cfg.Brokers = c.MQTT.Brokers
	}
	// Every part is reached before anything serves: a database, broker
	// or address that fails stops the start with one line saying which.
	if c.Store.Driver == "postgres" {
		octx, cancel := context.WithTimeout(ctx, 30*time.Second)
		st, err := pgstore.Open(octx, c.DSN, pgstore.Options{Log: log})
		cancel()
		if err != nil {
			return fmt.Errorf("store (%s): %w", c.Store.DSNFile, err)
		}
		cfg.Store = st
	}
	if len(c.MQTT.Brokers) > 0 {
		if err := checkBroker(cfg, 10*time.Second); err != nil {
			if cfg.Store != nil {
				cfg.Store.Close()
			}
			return err
		}
	}
	var session *sip2.Session
	if c.SIP2.Address != "" {
		enc, _ := sip2.ParseEncoding(c.SIP2.Encoding) // checked by the config
		sc := sip2.Config{Address: c.SIP2.Address, User: c.SIP2.User, Password: c.SIP2.Password, Location: c.SIP2.Location,
			Institution: c.SIP2.Institution, TerminalPassword: c.SIP2.TerminalPassword, ErrorDetection: c.SIP2.ErrorDetection,
			VerifyChecksums: c.SIP2.VerifyChecksums, IgnoreStatusFlags: c.SIP2.IgnoreStatusFlags, Encoding: enc, Timeout: c.SIP2.Timeout.D(), Heartbeat: c.SIP2.Heartbeat.D(), Log: log,
			OnLoginRefused: func() {
				if h != nil {
					h.ILSLoginRefused(c.SIP2.User, c.SIP2.Address)
				}
			}}
		if c.SIP2.TLS {
			host, _, _ := net.SplitHostPort(c.SIP2.Address)
			sc.TLS = &tls.Config{ServerName: host, RootCAs: c.SIP2.CAPool, MinVersion: tls.VersionTLS12}
		}
		session = sip2.NewSession(sc)
		cfg.Circulation = hub.Circulation{ILS: session, CheckPatron: c.SIP2.CheckPatron, CheckinOnLoad: c.SIP2.CheckinOnLoad,
			MaxAttempts: c.SIP2.MaxAttempts, Locations: c.SIP2.Locations, AlarmAfter: c.SIP2.AlarmAfter.D()}
	}
	var err error
	h, err = hub.New(cfg)
	if err != nil {
		return err
	}
	ready.Store(h)
	defer h.Close()
	// The broker reads the revocation list from the start (Mosquitto
	// does not start on a crlfile that is not there).
	if err := h.WriteCRL(time.Now()); err != nil {
		return fmt.Errorf("provision.client_ca.crl_file: %w", err)
	}
	if session != nil {
		sctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { session.Run(sctx); close(done) }()
		defer func() { cancel(); <-done }()
		log.Info("SIP2 bridge", "ils", c.SIP2.Address, "tls", c.SIP2.TLS, "encoding", c.SIP2.Encoding)
	}
	ln, err := net.Listen("tcp", c.HTTP.Listen)
	if err != nil {
		return fmt.Errorf("http.listen: %w", err)
	}
	if created, err := h.BootstrapToken(c.HTTP.AdminTokenFile); err != nil {
		ln.Close()
		return fmt.Errorf("http.admin_token_file: %w", err)
	} else if created {
		log.Info("no API token yet: the first admin token is written to its file (create others with 'lockerhub token create')", "file", c.HTTP.AdminTokenFile)
	}
	top := http.NewServeMux()
	top.Handle("/console/", console.New(h, c.SigningKey.Seed(), c.HTTP.BehindProxy, log).Handler())
	top.Handle("/", h.Handler())
	srv := httpapi.NewServer(top, nil)
	if c.HTTP.TLS.CertFile != "" {
		go srv.ServeTLS(httpapi.LimitListener(ln, httpapi.MaxConns), c.HTTP.TLS.CertFile, c.HTTP.TLS.KeyFile)
	} else {
		go srv.Serve(httpapi.LimitListener(ln, httpapi.MaxConns))
	}
	defer srv.Close()
	log.Info("lockerhub ready", "http", ln.Addr().String(), "console", "/console/", "brokers", cfg.Brokers, "prefix", c.MQTT.Prefix, "config", *cfgFile)
	return h.Run(ctx)
}

// migrate copies a stopped hub's store into an empty one of another
// engine: bolt:FILE or postgres:DSN_FILE on either side.
func migrate(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	from := fs.String("from", "", "the store to read: bolt:FILE or postgres:DSN_FILE (the hub using it stopped)")
	to := fs.String("to", "", "the store to fill, empty: postgres:DSN_FILE or bolt:FILE")
	if pos, err := cliflag.Parse(fs, args); err != nil {
		return err
	} else if len(pos) > 0 || *from == "" || *to == "" {
		return errors.New("want: migrate --from bolt:FILE --to postgres:DSN_FILE")
	}
	src, err := openStore(*from, false)
	if err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	defer src.Close()
	dst, err := openStore(*to, true)
	if err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	defer dst.Close()
	start := time.Now()
	n, err := hub.Copy(dst, src)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "copied %d lockers served (%d heard from), %d stores, %d events, %d orders, %d pending order changes, %d commands, %d alarms, %d circulation transactions, %d API tokens, %d audit records in %v\n",
		n.Known, n.Lockers, n.Stores, n.Events, n.Orders, n.Pending, n.Commands, n.Alarms, n.Circulation, n.Tokens, n.Audit, time.Since(start).Round(time.Millisecond))
	return nil
}

// openStore opens bolt:FILE or postgres:DSN_FILE. A bolt file to read
// must exist (opening would make an empty one).
func openStore(spec string, create bool) (hub.Store, error) {
	driver, arg, ok := strings.Cut(spec, ":")
	switch {
	case !ok || arg == "":
		return nil, fmt.Errorf("%q: want bolt:FILE or postgres:DSN_FILE", spec)
	case driver == "bolt":
		if _, err := os.Stat(arg); err != nil && !create {
			return nil, err
		}
		return hub.OpenBolt(arg)
	case driver == "postgres":
		dsn, err := pgstore.ReadDSN(arg)
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return pgstore.Open(ctx, dsn, pgstore.Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	default:
		return nil, fmt.Errorf("%q: driver %q: want bolt or postgres", spec, driver)
	}
}

// checkBroker connects to the external broker once, with the hub's
// identity, within timeout: a broker that refuses, is not there, or does
// not take the hub's credentials stops the start.
func checkBroker(cfg hub.Config, timeout time.Duration) error {
	o := mqtt.NewClientOptions().SetClientID(cfg.ClientID).SetCleanSession(false).SetAutoReconnect(false).
		SetConnectRetry(false).SetConnectTimeout(timeout)
	for _, b := range cfg.Brokers {
		o.AddBroker(b)
	}
	if cfg.Username != "" {
		o.SetUsername(cfg.Username).SetPassword(cfg.Password)
	}
	if cfg.TLS != nil {
		o.SetTLSConfig(cfg.TLS)
	}
	cl := mqtt.NewClient(o)
	tok := cl.Connect()
	if !tok.WaitTimeout(timeout + time.Second) {
		return fmt.Errorf("mqtt.broker %s: no answer within %v", strings.Join(cfg.Brokers, ", "), timeout)
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("mqtt.broker %s: %v", strings.Join(cfg.Brokers, ", "), err)
	}
	cl.Disconnect(100)
	return nil
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

// provisioning is what this hub gives new cabinets: lockerd's own
// validator and the provisioned fields filled into their configuration.
func provisioning(c *hubconfig.Config) hub.Provisioning {
	return hub.Provisioning{BrokerURLs: c.Provision.BrokerURLs, BrokerCA: c.ProvisionCA, ClientCA: c.ClientCA,
		Validate: func(name string, raw []byte) error {
			_, err := config.Parse(name, raw, false)
			return err
		},
		Render: func(raw []byte, p hub.ProvisionedLocker) ([]byte, error) {
			return config.Provision(raw, config.Provisioned{Locker: p.Locker, Prefix: p.Prefix, BrokerURLs: p.BrokerURLs,
				Username: p.Username, CentralPublicKey: p.CentralPublicKey, PickupKeyFile: p.PickupKeyFile,
				PasswordFile: p.PasswordFile, BrokerCAFile: p.BrokerCAFile, ClientCertFile: p.ClientCertFile, ClientKeyFile: p.ClientKeyFile,
				ReleaseKey: p.ReleaseKey})
		}}
}

// firstCRL writes an empty revocation list where there is none yet: the
// broker does not start without its crlfile, and lockerhub does not start
// without the broker. The hub writes the real list once its store is open.
func firstCRL(c *hubconfig.Config) error {
	ca, f := c.ClientCA, c.Provision.ClientCA.CRLFile
	if ca == nil || ca.PublishCRL == nil {
		return nil
	}
	if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
		return nil
	}
	crl, err := ca.CRL(nil, time.Now())
	if err == nil {
		err = ca.PublishCRL(crl)
	}
	if err != nil {
		return fmt.Errorf("provision.client_ca.crl_file: %w", err)
	}
	return nil
}

// provisionURI is what a provisioning QR code says: where the hub is,
// which locker, the token (lockerctl provision --uri reads it).
func provisionURI(central, lockerID, token string) string {
	return "lockerd-provision:?" + url.Values{"central": {central}, "locker": {lockerID}, "token": {token}}.Encode()
}

// waitCommand waits briefly for the locker's answer to a command.
func waitCommand(c *hub.Client, cmdID, what string, out io.Writer) error {
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

func client(hubAddr, token string, args []string, out io.Writer) error {
	cmd, sub := args[0], args[1:]
	if cmd == "order" || cmd == "locker" || cmd == "circ" || cmd == "token" || cmd == "alarm" || cmd == "webhooks" || cmd == "user" || cmd == "badge" || cmd == "provision" || cmd == "config" || cmd == "release" || cmd == "rollout" {
		if len(sub) == 0 {
			return fmt.Errorf("want: %s add ...", cmd)
		}
		cmd, sub = cmd+" "+sub[0], sub[1:]
	}
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	lockerID := fs.String("locker", "", "locker id")
	size := fs.String("size", "S", "order size")
	comp := fs.String("compartment", "", "pre-assigned compartment")
	ttl := fs.String("ttl", "72h", "order add: the order's lifetime; provision create: how long the token may be used (default 24h)")
	qr := fs.String("qr", "", "write the pickup QR code as PNG to this file")
	pickupURL := fs.String("pickup-url", "", "QR payload base: URL?locker=ID&code=CODE (default: the bare code)")
	reason := fs.String("reason", "", "why (open: cmd.open; provision revoke)")
	partSize := fs.Int("part-size", 500, "orders per snapshot part")
	after := fs.String("after", "", "events after this position: SEQ (of the locker's first store) or EPOCH.SEQ")
	follow := fs.Bool("f", false, "keep following")
	patron := fs.String("patron", "", "the reader's library card number (order add; kept at the hub, for the ILS)")
	accessible := fs.Bool("accessible", false, "order add: the reader needs a compartment reachable from a wheelchair")
	delivery := fs.Bool("delivery", false, "order add: a community volunteer or courier collects it (a volunteer badge opens it)")
	cfgPath := fs.String("config", "", "provision create: the cabinet's lockerd configuration (its wiring; provisioning fills in its id, keys and broker)")
	centralURL := fs.String("central", "", "provision create: the hub's address as the cabinet reaches it (https://HOST:PORT), for the QR code")
	relVersion := fs.String("version", "", "release add: the release's version (MAJOR.MINOR.PATCH)")
	relRollback := fs.Bool("rollback", false, "release add: the release may replace a newer version (a rollback)")
	roLockers := fs.String("lockers", "", "rollout start: the lockers, comma-separated (else --percent of those served)")
	roPercent := fs.Int("percent", 0, "rollout start: this share of the lockers served")
	roStages := fs.String("stages", "", "rollout start: cumulative percentages of the stages (default 10,50,100)")
	roMaxFailed := fs.Float64("max-failed", 0, "rollout start: the share of a stage that may fail before the rollout halts (default 0.2)")
	toVersion := fs.Int("to", 0, "config rollback: the version to send again (default: the one applied before the last)")
	sameCode := fs.String("same-code-as", "", "order add: give it the pickup code of this order of the same reader (one scan opens both)")
	state := fs.String("state", "", "circ list: queued, sending, done, refused, exception or resolved; alarms: open")
	asJSON := fs.Bool("json", false, "circ list: one JSON record a line")
	note := fs.String("note", "", "circ resolve: what was done")
	name := fs.String("name", "", "token create: the token's name (who uses it)")
	scope := fs.String("scope", "", "token create: scopes, comma-separated: read, orders, open, admin")
	hookURL := fs.String("url", "", "webhooks add: the receiver's URL")
	role := fs.String("role", "viewer", "user add: viewer, staff or admin; badge add: staff, volunteer or technician")
	passwordFile := fs.String("password-file", "", "user add: a file holding the password (else it is read from standard input)")
	hookEvents := fs.String("events", "", "webhooks add: event types, comma-separated")
	hookSecret := fs.String("secret-file", "", "webhooks add: a file holding the shared secret")
	var its cliflag.Items
	fs.Var(&its, "item", "BARCODE[:TITLE], repeatable")
	pos, err := cliflag.Parse(fs, sub)
	if err != nil {
		return err
	}
	c := hub.NewClient(hubAddr)
	c.Token = token
	if strings.HasPrefix(hubAddr, "https://") {
		c.Addr, c.Scheme = strings.TrimPrefix(hubAddr, "https://"), "https"
	}
	needLocker := func() error {
		if *lockerID == "" {
			return errors.New("--locker is required")
		}
		return nil
	}
	switch cmd {
	case "order add":
		if err := needLocker(); err != nil {
			return err
		}
		created, err := c.CreateOrder(hub.NewOrder{Locker: *lockerID, Patron: *patron, Accessible: *accessible, Delivery: *delivery,
			SameCodeAs: *sameCode, Size: *size, Compartment: *comp, Items: wireItems(its), TTL: *ttl})
		if err != nil {
			return err
		}
		if created.Code == "" {
			fmt.Fprintf(out, "order %s for %s (rev %d), expires %s\npickup code: the same as order %s\n", created.Order.ID, *lockerID,
				created.Order.Rev, created.Order.ExpiresAt.Local().Format(time.DateTime), *sameCode)
			return nil
		}
		fmt.Fprintf(out, "order %s for %s (rev %d), expires %s\npickup code: %s\n", created.Order.ID, *lockerID,
			created.Order.Rev, created.Order.ExpiresAt.Local().Format(time.DateTime), created.Code)
		if *qr != "" {
			payload := created.Code
			if *pickupURL != "" {
				payload = *pickupURL + "?locker=" + url.QueryEscape(*lockerID) + "&code=" + created.Code
			}
			if err := qrcode.WriteFile(payload, qrcode.Medium, 256, *qr); err != nil {
				return fmt.Errorf("QR: %w", err)
			}
			fmt.Fprintf(out, "QR code written to %s\n", *qr)
		}
		return nil
	case "provision create":
		if err := needLocker(); err != nil {
			return err
		}
		if *cfgPath == "" {
			return errors.New("want: provision create --locker ID --config FILE (the cabinet's wiring)")
		}
		raw, err := os.ReadFile(*cfgPath)
		if err != nil {
			return err
		}
		provTTL := "" // the token's default (24h), unless --ttl was given
		fs.Visit(func(f *flag.Flag) {
			if f.Name == "ttl" {
				provTTL = *ttl
			}
		})
		created, err := c.CreateProvisionToken(hub.NewProvisionToken{Locker: *lockerID, Config: string(raw), TTL: provTTL})
		if err != nil {
			return err
		}
		central := *centralURL
		if central == "" {
			central = c.Scheme + "://" + c.Addr
		}
		payload := provisionURI(central, *lockerID, created.Token)
		fmt.Fprintf(out, "provisioning token for %s (single use, expires %s):\n  %s\n\non the cabinet:\n  lockerctl provision --central %s --locker %s --token %s\n",
			*lockerID, created.Record.Expires.Local().Format(time.DateTime), created.Token, central, *lockerID, created.Token)
		code, err := qrcode.New(payload, qrcode.Medium)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "\nor scan this on the cabinet (lockerctl provision --uri):\n%s", code.ToSmallString(false))
		if *qr != "" {
			if err := qrcode.WriteFile(payload, qrcode.Medium, 384, *qr); err != nil {
				return err
			}
			fmt.Fprintf(out, "QR code written to %s\n", *qr)
		}
		return nil
	case "config push":
		if err := needLocker(); err != nil {
			return err
		}
		if len(pos) != 1 {
			return errors.New("want: config push --locker ID FILE")
		}
		raw, err := os.ReadFile(pos[0])
		if err != nil {
			return err
		}
		v, err := c.PushConfig(*lockerID, raw)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "configuration %d sent to %s (sha256 %s…)\n", v.Version, *lockerID, v.SHA256[:12])
		return waitCommand(c, v.CmdID, "cmd.config", out)
	case "config rollback":
		if err := needLocker(); err != nil {
			return err
		}
		v, err := c.RollbackConfig(*lockerID, uint64(*toVersion))
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "configuration %d (%s) sent to %s\n", v.Version, v.Note, *lockerID)
		return waitCommand(c, v.CmdID, "cmd.config", out)
	case "config history":
		if err := needLocker(); err != nil {
			return err
		}
		hist, err := c.ConfigHistory(*lockerID)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "VERSION\tPUSHED\tBY\tSTATE\tSHA256\tNOTE\tREASONS")
		for _, v := range hist {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", v.Version, v.Pushed.Local().Format(time.DateTime), v.By, v.State, v.SHA256[:12], v.Note, strings.Join(v.Reasons, "; "))
		}
		return tw.Flush()
	case "release add":
		if *relVersion == "" || len(pos) == 0 {
			return errors.New("want: release add --version V FILE... (lockerd-linux-arm64, -armv7, -armv6, -amd64)")
		}
		for _, file := range pos {
			arch, err := archOf(file)
			if err != nil {
				return err
			}
			// Signed with the release key where it is kept (release
			// sign wrote FILE.manifest), or by the hub.
			manifest, err := os.ReadFile(file + ".manifest")
			switch {
			case errors.Is(err, os.ErrNotExist):
				manifest = nil
			case err != nil:
				return err
			case len(manifest) > hub.MaxManifest:
				return fmt.Errorf("%s.manifest: over %d bytes: not a manifest", file, hub.MaxManifest)
			case *relRollback:
				return fmt.Errorf("%s.manifest: the rollback mark is in the signed manifest (release sign --rollback), not given here", file)
			}
			f, err := os.Open(file)
			if err != nil {
				return err
			}
			var m protocol.Manifest
			if manifest != nil {
				m, err = c.AddSignedArtifact(*relVersion, arch, f, manifest)
			} else {
				m, err = c.AddArtifact(*relVersion, arch, f, *relRollback)
			}
			f.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			by := "signed by the hub"
			if manifest != nil {
				by = "its manifest signed with the release key"
			}
			fmt.Fprintf(out, "%s %s: %d bytes, sha256 %s, %s\n", m.Version, m.Arch, m.Size, m.SHA256, by)
		}
		return nil
	case "release list":
		rels, err := c.Releases()
		if err != nil {
			return err
		}
		for _, r := range rels {
			var arches []string
			for a := range r.Artifacts {
				arches = append(arches, a)
			}
			slices.Sort(arches)
			fmt.Fprintf(out, "%s\t%s\t%s\trollback=%v\n", r.ID, r.Created.Local().Format(time.DateTime), strings.Join(arches, ","), r.Rollback)
		}
		return nil
	case "rollout start":
		if len(pos) != 1 {
			return errors.New("want: rollout start VERSION [--lockers ID,...|--percent N]")
		}
		req := hub.NewRollout{Version: pos[0], Percent: *roPercent, MaxFailed: *roMaxFailed}
		if *roLockers != "" {
			req.Lockers = strings.Split(*roLockers, ",")
		}
		if *roStages != "" {
			for _, p := range strings.Split(*roStages, ",") {
				n, err := strconv.Atoi(strings.TrimSpace(p))
				if err != nil {
					return fmt.Errorf("--stages: %q is not a percentage", p)
				}
				req.Stages = append(req.Stages, n)
			}
		}
		ro, err := c.StartRollout(req)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "rollout of %s: %d stages %v; stage 1 sent\n", ro.Version, len(ro.Stages), ro.Stages)
		return nil
	case "rollout list":
		ros, err := c.Rollouts()
		if err != nil {
			return err
		}
		for _, ro := range ros {
			fmt.Fprintf(out, "%s\t%s\tstage %d of %d\t%v\t%s\n", ro.Version, ro.State, ro.Stage+1, len(ro.Stages), ro.Results, ro.Note)
		}
		return nil
	case "provision revoke":
		if err := needLocker(); err != nil {
			return err
		}
		if *reason == "" {
			return errors.New("want: provision revoke --locker ID --reason TEXT (stolen, scrapped, replaced...)")
		}
		cred, err := c.RevokeLocker(*lockerID, *reason)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "locker %s: broker credentials revoked at %s", cred.ID, cred.Revoked.Local().Format(time.DateTime))
		if cred.CertSerial != "" {
			fmt.Fprintf(out, "; certificate %s on the revocation list (reload the broker: systemctl reload mosquitto)", cred.CertSerial)
		}
		fmt.Fprintln(out)
		return nil
	case "provision list":
		toks, err := c.ProvisionTokens()
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TOKEN\tLOCKER\tCREATED\tEXPIRES\tUSED\tFROM\tBY")
		for _, t := range toks {
			used := "-"
			if !t.UsedAt.IsZero() {
				used = t.UsedAt.Local().Format(time.DateTime)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Locker, t.Created.Local().Format(time.DateTime),
				t.Expires.Local().Format(time.DateTime), used, t.UsedFrom, t.By)
		}
		return tw.Flush()
	case "badge add", "badge revoke":
		if err := needLocker(); err != nil {
			return err
		}
		if *name == "" {
			return fmt.Errorf("want: %s --locker ID --name NAME ...", cmd)
		}
		ch := hub.BadgeChange{Locker: *lockerID}
		if cmd == "badge revoke" {
			ch.Revoke = []protocol.BadgeRef{{Name: *name}}
		} else {
			if len(pos) != 1 {
				return errors.New("want: badge add --locker ID --name NAME --role ROLE CODE (or - to read the code from standard input)")
			}
			code := pos[0]
			if code == "-" {
				raw, err := io.ReadAll(io.LimitReader(os.Stdin, 256))
				if err != nil {
					return err
				}
				code = strings.TrimSpace(string(raw))
			}
			badgeRole := *role
			if badgeRole == "viewer" { // the flag's default is for user add
				badgeRole = ""
			}
			ch.Add = []hub.BadgeAdd{{Name: *name, Role: badgeRole, Code: code}}
		}
		cmdID, err := c.Badges(ch)
		if err != nil {
			return err
		}
		return waitCommand(c, cmdID, "cmd.badges", out)
	case "locker add":
		if len(pos) != 1 {
			return errors.New("want: locker add ID")
		}
		if err := c.AddLocker(pos[0]); err != nil {
			return err
		}
		fmt.Fprintf(out, "locker %s added: the hub serves it\n", pos[0])
		return nil
	case "order cancel":
		if err := needLocker(); err != nil {
			return err
		}
		if len(pos) != 1 {
			return errors.New("want: order cancel --locker ID ORDER")
		}
		rev, err := c.CancelOrder(*lockerID, pos[0])
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "cancel of %s sent (rev %v)\n", pos[0], rev)
		return nil
	case "snapshot":
		if err := needLocker(); err != nil {
			return err
		}
		snapID, parts, err := c.Snapshot(*lockerID, *partSize)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "snapshot %v sent in %v parts\n", snapID, parts)
		return nil
	case "open":
		if err := needLocker(); err != nil {
			return err
		}
		if len(pos) != 1 || *reason == "" {
			return errors.New("want: open --locker ID COMPARTMENT --reason TEXT")
		}
		cmdID, err := c.Open(*lockerID, pos[0], *reason)
		if err != nil {
			return err
		}
		return waitCommand(c, cmdID, "cmd.open", out)
	case "lockers":
		ls, err := c.Lockers()
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "LOCKER\tONLINE\tBOOT\tSTORE\tORDERS_REV\tEVENTS\tACKED\tLAST SEEN")
		for _, l := range ls {
			fmt.Fprintf(tw, "%s\t%v\t%d\t%s\t%d\t%d\t%d\t%s\n", l.ID, l.Online, l.Boot, l.Store, l.OrdersRev, l.Events, l.Acked, l.LastSeen.Local().Format(time.DateTime))
		}
		return tw.Flush()
	case "orders":
		if err := needLocker(); err != nil {
			return err
		}
		os, err := c.Orders(*lockerID)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ORDER\tREV\tSTATUS\tSIZE\tCOMPARTMENTS\tEXPIRES")
		for _, o := range os {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", o.ID, o.Rev, o.Status, o.Size, strings.Join(o.Compartments, ","), o.ExpiresAt.Local().Format(time.DateTime))
		}
		return tw.Flush()
	case "events":
		if err := needLocker(); err != nil {
			return err
		}
		cur, err := hub.ParseCursor(*after)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(out)
		for {
			evs, err := c.Events(*lockerID, cur)
			if err != nil {
				return err
			}
			for _, e := range evs {
				enc.Encode(e)
				cur = hub.Cursor{Epoch: e.Epoch, Seq: e.Seq}
			}
			if !*follow {
				return nil
			}
			if len(evs) == 0 {
				time.Sleep(300 * time.Millisecond)
			}
		}
	case "circ list":
		cs, err := c.Circulation(hub.CircFilter{Locker: *lockerID, State: *state})
		if err != nil {
			return err
		}
		if *asJSON {
			enc := json.NewEncoder(out)
			for _, r := range cs {
				enc.Encode(r)
			}
			return nil
		}
		// What a queued transaction waits for, when it waits: the library
		// system unreachable, or its 98 SC Status refusing.
		st, err := c.ILSStatus()
		if err != nil {
			return err
		}
		switch {
		case !st.Bridge:
			fmt.Fprintln(out, "library system: no SIP2 bridge configured (sip2.address): nothing is sent")
		case st.Why != "" && !st.Since.IsZero():
			fmt.Fprintf(out, "library system: %s (since %s); %d transactions wait\n", st.Why, st.Since.Local().Format(time.DateTime), st.Waiting)
		case st.Why != "":
			fmt.Fprintf(out, "library system: %s; %d transactions wait\n", st.Why, st.Waiting)
		default:
			fmt.Fprintf(out, "library system: up, taking transactions; %d in the queue\n", st.Waiting)
		}
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tLOCKER\tKIND\tPATRON\tITEM\tEVENT TIME\tSTATE\tDUE\tALERT\tTRIES\tMESSAGE")
		for _, r := range cs {
			msg := r.Screen
			if (r.State == hub.CircQueued || r.State == hub.CircSending) && st.Why != "" && r.LastError == "" {
				msg = "waiting: " + st.Why
			}
			if r.LastError != "" && r.State != hub.CircDone {
				msg = strings.TrimSpace(msg + " " + r.LastError)
			}
			if r.Note != "" {
				msg = strings.TrimSpace(msg + " [" + r.Note + "]")
			}
			due := r.Due
			if d, ok := sip2.ParseDate(r.Due, time.Local); ok {
				due = d.Local().Format(time.DateOnly)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", r.ID, r.Locker, r.Kind, r.Patron, r.Item,
				r.EventAt.Local().Format(time.DateTime), r.State, due, r.AlertType, r.Attempts, msg)
		}
		return tw.Flush()
	case "circ retry", "circ resolve":
		if len(pos) != 1 {
			return fmt.Errorf("want: %s ID", cmd)
		}
		id, err := strconv.ParseUint(pos[0], 10, 64)
		if err != nil {
			return fmt.Errorf("transaction id %q: want a number", pos[0])
		}
		var r hub.CircRec
		if cmd == "circ retry" {
			r, err = c.RetryCirc(id)
		} else {
			r, err = c.ResolveCirc(id, *note)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "transaction %d (%s of %s): %s\n", r.ID, r.Kind, r.Item, r.State)
		return nil
	case "token create":
		secret, rec, err := c.CreateToken(*name, strings.Split(*scope, ","))
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "token %s (%s, scopes %s) — shown this once, the hub keeps only its hash:\n%s\n", rec.ID, rec.Name, strings.Join(rec.Scopes, ","), secret)
		return nil
	case "token list":
		ts, err := c.Tokens()
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tSCOPES\tCREATED\tBY\tREVOKED")
		for _, t := range ts {
			revoked := ""
			if !t.Revoked.IsZero() {
				revoked = t.Revoked.Local().Format(time.DateTime)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, strings.Join(t.Scopes, ","), t.Created.Local().Format(time.DateTime), t.CreatedBy, revoked)
		}
		return tw.Flush()
	case "token revoke":
		if len(pos) != 1 {
			return errors.New("want: token revoke ID|NAME")
		}
		t, err := c.RevokeToken(pos[0])
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "token %s (%s) revoked\n", t.ID, t.Name)
		return nil
	case "user add":
		var raw []byte
		var err error
		if *passwordFile != "" {
			raw, err = os.ReadFile(*passwordFile)
		} else {
			raw, err = io.ReadAll(io.LimitReader(os.Stdin, 1024))
		}
		if err != nil {
			return fmt.Errorf("password: %w", err)
		}
		u, err := c.AddUser(*name, *role, strings.TrimRight(string(raw), "\r\n"))
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "user %s (%s) can sign in to the console\n", u.Name, u.Role)
		return nil
	case "user disable":
		if len(pos) != 1 {
			return errors.New("want: user disable NAME")
		}
		if err := c.DisableUser(pos[0]); err != nil {
			return err
		}
		fmt.Fprintf(out, "user %s disabled\n", pos[0])
		return nil
	case "users":
		us, err := c.Users()
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tROLE\tCREATED\tDISABLED")
		for _, u := range us {
			dis := ""
			if !u.Disabled.IsZero() {
				dis = u.Disabled.Local().Format(time.DateTime)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", u.Name, u.Role, u.Created.Local().Format(time.DateTime), dis)
		}
		return tw.Flush()
	case "webhooks list":
		ws, err := c.Webhooks()
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tURL\tEVENTS\tSOURCE\tREMOVED")
		for _, w := range ws {
			removed := ""
			if !w.Removed.IsZero() {
				removed = w.Removed.Local().Format(time.DateTime)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", w.ID, w.URL, strings.Join(w.Events, ","), w.Source, removed)
		}
		return tw.Flush()
	case "webhooks add":
		raw, err := os.ReadFile(*hookSecret)
		if err != nil {
			return fmt.Errorf("--secret-file: %w", err)
		}
		w, err := c.AddWebhook(hub.NewWebhook{URL: *hookURL, Events: strings.Split(*hookEvents, ","), Secret: strings.TrimSpace(string(raw))})
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "webhook %s: %s gets %s\n", w.ID, w.URL, strings.Join(w.Events, ","))
		return nil
	case "webhooks remove":
		if len(pos) != 1 {
			return errors.New("want: webhooks remove ID")
		}
		if err := c.RemoveWebhook(pos[0]); err != nil {
			return err
		}
		fmt.Fprintf(out, "webhook %s removed: nothing more is sent to it\n", pos[0])
		return nil
	case "webhooks failed":
		ds, err := c.FailedDeliveries()
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tWEBHOOK\tEVENT\tTYPE\tCREATED\tATTEMPTS\tERROR")
		for _, d := range ds {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\n", d.ID, d.Webhook, d.EventID, d.Type, d.Created.Local().Format(time.DateTime), d.Attempts, d.Error)
		}
		return tw.Flush()
	case "webhooks redeliver":
		if len(pos) != 1 {
			return errors.New("want: webhooks redeliver ID")
		}
		id, err := strconv.ParseUint(pos[0], 10, 64)
		if err != nil {
			return fmt.Errorf("delivery %q: want its number", pos[0])
		}
		d, err := c.Redeliver(id)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "delivery %d (%s) queued again\n", d.ID, d.EventID)
		return nil
	case "audit":
		as, err := c.AuditLog()
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SEQ\tAT\tWHO\tFROM\tACTION\tSTATUS\tDETAIL")
		for _, a := range as {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\n", a.Seq, a.At.Local().Format(time.DateTime), a.Who, a.From, a.Action, a.Status, a.Detail)
		}
		return tw.Flush()
	case "alarms":
		as, err := c.Alarms(*state == "open")
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SEQ\tFIRST SEEN\tLAST SEEN\tCOUNT\tLOCKER\tTYPE\tCOMPARTMENT\tSEVERITY\tSTATE\tDETAIL")
		for _, a := range as {
			st := a.State
			if st == "" {
				st = "open"
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", a.Seq, a.At.Local().Format(time.DateTime), a.LastSeen.Local().Format(time.DateTime),
				max(a.Count, 1), a.Locker, a.Type, a.Compartment, a.Severity, st, a.Detail)
		}
		return tw.Flush()
	case "alarm ack", "alarm resolve":
		if len(pos) != 1 {
			return fmt.Errorf("want: %s SEQ", cmd)
		}
		seq, err := strconv.ParseUint(pos[0], 10, 64)
		if err != nil {
			return fmt.Errorf("alarm %q: want its number", pos[0])
		}
		var a hub.Alarm
		if cmd == "alarm ack" {
			a, err = c.AckAlarm(seq)
		} else {
			a, err = c.ResolveAlarm(seq, *note)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "alarm %d (%s at %s): %s\n", a.Seq, a.Type, a.Locker, a.State)
		return nil
	}
	return fmt.Errorf("unknown command %q", cmd)
}

func wireItems(its []locker.Item) []protocol.Item {
	out := make([]protocol.Item, len(its))
	for i, it := range its {
		out[i] = protocol.Item{Barcode: it.Barcode, Title: it.Title}
	}
	return out
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
