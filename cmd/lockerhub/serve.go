// lockerhub serve (the hub, its embedded broker, its SIP2 bridge) and
// lockerhub migrate.

package main

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/lockerd/lockerd/cmd/internal/cliflag"
	"github.com/lockerd/lockerd/cmd/internal/config"
	"github.com/lockerd/lockerd/cmd/internal/hubconfig"
	"github.com/lockerd/lockerd/locker/httpapi"
	"github.com/lockerd/lockerd/sync/broker"
	"github.com/lockerd/lockerd/sync/hub"
	"github.com/lockerd/lockerd/sync/hub/api"
	"github.com/lockerd/lockerd/sync/hub/circulation"
	"github.com/lockerd/lockerd/sync/hub/console"
	"github.com/lockerd/lockerd/sync/hub/egress"
	"github.com/lockerd/lockerd/sync/hub/fleet"
	"github.com/lockerd/lockerd/sync/hub/hubbolt"
	"github.com/lockerd/lockerd/sync/hub/notice"
	"github.com/lockerd/lockerd/sync/hub/orderpage"
	"github.com/lockerd/lockerd/sync/hub/pgstore"
	"github.com/lockerd/lockerd/sync/hub/requests"
	"github.com/lockerd/lockerd/sync/hub/storecopy"
	"github.com/lockerd/lockerd/sync/hub/webhook"
	"github.com/lockerd/lockerd/sync/protocol"
	"github.com/lockerd/lockerd/sync/sip2"
)

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
	cfg := hub.Config{Prefix: c.MQTT.Prefix, ClientID: c.MQTT.ClientID, SubscribeOwned: c.MQTT.SubscribeOwned, SigningKey: c.SigningKey, PickupKey: c.PickupKey,
		Lockers: c.Lockers, CmdTTL: c.CommandTTL.D(), Log: log,
		LeaseTTL: c.LeaseTTL.D(), ResendAfter: c.ResendAfter.D(), OfflineAfter: c.Alarms.OfflineAfter.D(), WebhookDeadline: c.WebhookDeadline.D(), EgressAllow: c.Egress}
	for _, w := range c.Webhooks {
		cfg.Webhooks = append(cfg.Webhooks, webhook.NewWebhook{Name: w.Name, URL: w.URL, Events: w.Events, Secret: w.Secret})
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
	nc, err := noticeConfig(c)
	if err != nil {
		return err
	}
	cfg.Notices = nc
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
			Check: func(id string, pw []byte) bool {
				hp := ready.Load()
				return hp != nil && hp.Fleet().BrokerPasswordOK(id, pw)
			}})
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
	if cfg.Store == nil {
		// The bbolt file is made only once the other parts answered.
		st, err := hubbolt.Open(c.Store.Path)
		if err != nil {
			return fmt.Errorf("store (%s): %w", c.Store.Path, err)
		}
		cfg.Store = st
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
		cfg.Circulation = circulation.Circulation{ILS: session, CheckPatron: c.SIP2.CheckPatron, CheckinOnLoad: c.SIP2.CheckinOnLoad,
			MaxAttempts: c.SIP2.MaxAttempts, Locations: c.SIP2.Locations, AlarmAfter: c.SIP2.AlarmAfter.D()}
	}
	answersFor := requests.Wire(&cfg, 0) // lockers' questions: card checks, hold scans
	h, err = hub.New(cfg)
	if err != nil {
		return err
	}
	answers := answersFor(h)
	ready.Store(h)
	defer h.Close()
	// The broker reads the revocation list from the start (Mosquitto
	// does not start on a crlfile that is not there).
	if err := h.Fleet().WriteCRL(time.Now()); err != nil {
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
	if created, err := h.Auth().BootstrapToken(c.HTTP.AdminTokenFile); err != nil {
		ln.Close()
		return fmt.Errorf("http.admin_token_file: %w", err)
	} else if created {
		log.Info("no API token yet: the first admin token is written to its file (create others with 'lockerhub token create')", "file", c.HTTP.AdminTokenFile)
	}
	top := http.NewServeMux()
	desk := console.ForHub(h)
	desk.Holds = answers // staff at the desk scan held items too
	top.Handle("/console/", console.New(desk, c.SigningKey.Seed(), c.HTTP.BehindProxy, log).Handler())
	pc := orderpage.ForHub(h)
	pc.ILS, pc.Key, pc.Sealer, pc.BaseURL, pc.Places = cfg.Circulation.ILS, pageKey(c), c.Notices.Sealer, c.Notices.PageURL, nc.Places
	pc.Audit, pc.BehindProxy, pc.Log, pc.DeliveryLocker = h.Auth().Audit, c.HTTP.BehindProxy, log, c.Notices.DeliveryLocker
	page, err := orderpage.New(pc)
	if err != nil {
		return err
	}
	top.Handle("/o/", page.Handler())
	routes := api.ForHub(h)
	routes.BehindProxy = c.HTTP.BehindProxy
	top.Handle("/", api.New(routes))
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
	n, err := storecopy.Copy(dst, src)
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
		return hubbolt.Open(arg)
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

// provisioning is what this hub gives new cabinets: lockerd's own
// validator and the provisioned fields filled into their configuration.
func provisioning(c *hubconfig.Config) fleet.Provisioning {
	return fleet.Provisioning{BrokerURLs: c.Provision.BrokerURLs, BrokerCA: c.ProvisionCA, ClientCA: c.ClientCA,
		Validate: func(name string, raw []byte) error {
			_, err := config.Parse(name, raw, false)
			return err
		},
		Render: func(raw []byte, p fleet.ProvisionedLocker) ([]byte, error) {
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

// pageKey is the order pages' token key: derived from the central's
// signing key, so that every replica makes and takes the same links.
func pageKey(c *hubconfig.Config) []byte {
	k := sha256.Sum256(append([]byte("lockerhub order page\x00"), c.SigningKey.Seed()...))
	return k[:]
}

// noticeConfig makes the hub's notice channels from the config.
func noticeConfig(c *hubconfig.Config) (notice.Config, error) {
	n := c.Notices
	nc := notice.Config{Sealer: n.Sealer, Channels: map[string]notice.Channel{}, Timeout: n.Timeout.D(),
		Link: orderpage.Linker(pageKey(c), n.PageURL, 0),
		Places: func(id string) notice.Place {
			p := c.Places[id]
			return notice.Place{Name: p.Name, Address: p.Address, Hours: p.Hours}
		}}
	if e := n.Email; e.Address != "" {
		host, _, _ := net.SplitHostPort(e.Address)
		nc.Channels[notice.ChannelEmail] = &notice.Email{Addr: e.Address, From: e.From, Username: e.Username, Password: n.Password, TLS: e.TLS,
			TLSConfig: &tls.Config{ServerName: host, RootCAs: n.CAPool, MinVersion: tls.VersionTLS12}}
	}
	if g := n.Gateway; g.URL != "" {
		ch, err := notice.NewHTTP(g.URL, n.Secret, egress.Policy{Allow: c.Egress}, cmp.Or(n.Timeout.D(), 20*time.Second))
		if err != nil {
			return nc, err
		}
		nc.Channels[notice.ChannelHTTP] = ch
	}
	return nc, nil
}
