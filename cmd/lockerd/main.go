// Command lockerd runs one smart book locker: it drives the compartment
// locks and reads the door sensors, reads the scanners, checks pickup
// codes against the local order store, and serves the local API.
//
//	lockerd -config /etc/lockerd/lockerd.yaml
//
// SIGTERM, SIGINT, SIGHUP or SIGQUIT stop it cleanly: locks to their
// locked level, store closed. A bad config exits with status 2 and every problem listed as
// FILE:LINE: key: what is wrong.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/lockerd/lockerd/cmd/internal/backend"
	"github.com/lockerd/lockerd/cmd/internal/config"
	"github.com/lockerd/lockerd/drivers/sim"
	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/locker/boltstore"
	"github.com/lockerd/lockerd/locker/httpapi"
	"github.com/lockerd/lockerd/locker/kiosk"
	"github.com/lockerd/lockerd/locker/metrics"
	"github.com/lockerd/lockerd/sync/linkstore"
	"github.com/lockerd/lockerd/sync/mqttlink"
)

// The core satisfies what each adapter asks of it (each adapter declares
// its own small interface).
var (
	_ mqttlink.Core  = (*locker.Locker)(nil)
	_ httpapi.Locker = (*locker.Locker)(nil)
	_ kiosk.Locker   = (*locker.Locker)(nil)
	_ metrics.Source = (*locker.Locker)(nil)
)

// version is stamped at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	// This binary also runs the store's deep check, in a child process of
	// its own (a damaged store may crash whoever maps it).
	boltstore.RunChildCheck(os.Args)
	cfgPath := flag.String("config", config.DefaultPath, "config file")
	showVersion := flag.Bool("version", false, "print the version and exit")
	provScanners := flag.String("provision-scanners", "", "with no config yet: the serial scanners to read a provisioning QR code from, comma-separated (default: every /dev/serial/by-id device)")
	flag.Parse()
	if *showVersion {
		// The second line is what an update checks before it hands the
		// store over to this build (update.go, storeSchemas).
		fmt.Println(version)
		fmt.Printf("store schema %d (runs on %d to %d)\n", boltstore.NewestSchema(), boltstore.OldestSchema(), boltstore.NewestSchema())
		return
	}
	if _, err := os.Stat(*cfgPath); errors.Is(err, os.ErrNotExist) {
		log := newLogger("info")
		ctx, stop := signal.NotifyContext(context.Background(), stopSignals...)
		var ports []string
		if *provScanners != "" {
			ports = strings.Split(*provScanners, ",")
		}
		err := unprovisioned(ctx, *cfgPath, ports, log)
		stop()
		if errors.Is(err, errProvisioned) {
			reexec()
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "lockerd: %v\n", err)
			os.Exit(2)
		}
		return
	}
	// A configuration the central pushed is on probation, or is rolled
	// back here when it had its chance (remoteconfig.go).
	pending, err := settleConfig(*cfgPath)
	if err != nil {
		fmt.Fprintf(os.Stderr, "lockerd: %v\n", err)
		os.Exit(2)
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil && pending != nil {
		fmt.Fprintf(os.Stderr, "lockerd: pushed configuration %d not usable, the previous one is restored:\n%v\n", pending.Version, err)
		if rerr := rollbackConfig(*cfgPath, pending.Version, "it does not load: "+err.Error()); rerr != nil {
			fmt.Fprintf(os.Stderr, "lockerd: %v\n", rerr)
			os.Exit(2)
		}
		reexec()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "lockerd: config not usable:\n%v\n", err)
		os.Exit(2)
	}
	// The active version (a software update) runs instead of this one.
	followCurrent(cfg.Update)
	log := newLogger(cfg.Log.Level)
	for _, w := range cfg.Warnings {
		log.Warn("config", "problem", w.String())
	}
	// Past a file-size limit, a write must fail (and be handled) rather
	// than kill the daemon; a log write to a closed terminal or pipe must
	// fail rather than kill it (Go exits on SIGPIPE from stderr).
	signal.Ignore(syscall.SIGXFSZ, syscall.SIGPIPE)
	// Every signal that would otherwise end the process stops it the
	// clean way: locks to their locked level, store closed. SIGHUP is what
	// a closed terminal sends; SIGQUIT what Ctrl-\ does.
	ctx, stop := signal.NotifyContext(context.Background(), stopSignals...)
	defer stop()
	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	var restarting atomic.Bool
	restart := func() { restarting.Store(true); cancelRun() }
	err = run(runCtx, cfg, log, &remoteConfig{path: *cfgPath, cur: cfg, log: log, restart: restart}, pending)
	if restarting.Load() && ctx.Err() == nil {
		log.Info("lockerd restarts on its configuration", "err", err)
		stop()
		reexec()
	}
	if err != nil {
		log.Error("lockerd stopped with an error", "err", err)
		fmt.Fprintf(os.Stderr, "lockerd: %v\n", err)
		var damaged *storeDamagedError
		if errors.As(err, &damaged) {
			// Not restarted by systemd (RestartPreventExitStatus): a
			// technician recovers the store.
			os.Exit(exitStoreDamaged)
		}
		os.Exit(1)
	}
	log.Info("lockerd stopped")
}

// reexec runs lockerd again in this process (its pid, its stdout and
// stderr, its place under systemd), on the configuration now on disk.
func reexec() {
	exe, err := os.Executable()
	if err == nil {
		err = syscall.Exec(exe, os.Args, os.Environ())
	}
	fmt.Fprintf(os.Stderr, "lockerd: cannot run again (%v): exiting for the service manager to start it\n", err)
	os.Exit(75) // EX_TEMPFAIL: systemd's Restart=on-failure starts it again
}

// exitStoreDamaged is lockerd's exit status when its store is damaged:
// configs/lockerd.service stops restarting on it (RestartPreventExitStatus).
const exitStoreDamaged = 65

// storeCheckTimeout bounds the store's deep check at start.
const storeCheckTimeout = 30 * time.Second

// storeDamagedError stops lockerd with exitStoreDamaged.
type storeDamagedError struct{ msg string }

func (e *storeDamagedError) Error() string { return e.msg }

// checkStore checks the store before it is opened. A damaged store is
// moved aside and lockerd refuses to serve; a store missing while a
// damaged one waits beside it is not replaced by a new, empty one (its
// orders and unsent events would be lost without a word).
func checkStore(ctx context.Context, path string, log *slog.Logger) error {
	const recoverHow = "run `lockerctl store recover` to copy what can be read (orders, unsent events) into a new store (docs/reliability.md)"
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if aside, ok := boltstore.PendingDamaged(path); ok {
			return &storeDamagedError{fmt.Sprintf("store %s was found damaged and moved aside to %s; lockerd does not start on a new, empty store in its place: %s, or remove %s to start empty", path, aside, recoverHow, aside)}
		}
		return nil
	}
	t0 := time.Now()
	err := boltstore.Check(ctx, path, storeCheckTimeout)
	switch {
	case err == nil:
		log.Info("store checked", "path", path, "took_ms", time.Since(t0).Milliseconds())
		return nil
	case errors.Is(err, boltstore.ErrCheckTimeout):
		log.Warn("store check did not finish in time; starting without it", "path", path, "err", err)
		return nil
	case errors.Is(err, boltstore.ErrDamaged):
		aside, mvErr := boltstore.MoveAside(path, time.Now())
		if mvErr != nil {
			return &storeDamagedError{fmt.Sprintf("%v (and it could not be moved aside: %v)", err, mvErr)}
		}
		log.Error("store damaged: moved aside, not serving", "path", path, "moved_to", aside, "err", err)
		return &storeDamagedError{fmt.Sprintf("%v\nmoved aside to %s; lockerd will not serve until it is recovered: %s", err, aside, recoverHow)}
	default:
		return err
	}
}

// stopSignals stop lockerd cleanly.
var stopSignals = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT}

func newLogger(level string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level))
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))
}

func kioskConfig(cfg *config.Config) kiosk.Config {
	pos := map[string][2]int{}
	for _, c := range cfg.Compartments {
		if c.Row > 0 && c.Col > 0 {
			pos[c.ID] = [2]int{c.Row, c.Col}
		}
	}
	return kiosk.Config{LockerID: cfg.Locker.ID, Site: cfg.Locker.Site, OrderURL: cfg.Kiosk.OrderURL,
		HelpText: cfg.Kiosk.HelpText, DefaultLang: cfg.Kiosk.DefaultLang, Columns: cfg.Kiosk.Columns,
		IdleTimeout: cfg.Kiosk.IdleTimeout.D(), Positions: pos, HasReturn: cfg.Returns != nil}
}

func run(ctx context.Context, cfg *config.Config, log *slog.Logger, rc *remoteConfig, pending *pendingConfig) error {
	cab, err := backend.Open(cfg, log)
	if err != nil {
		return fmt.Errorf("hardware: %w", err)
	}
	hw, simHW := cab.Hardware, cab.Sim
	defer func() {
		err := errors.Join(hw.LockAll(), hw.Close())
		if err != nil {
			log.Error("locks not driven to locked level at stop", "err", err)
			return
		}
		log.Info("locks at their locked level")
	}()

	if err := checkStore(ctx, cfg.StorePath(), log); err != nil {
		return err
	}
	// A software update on probation runs on the store as the version
	// before left it: the upgrade waits until it is healthy (update.go).
	onProbation := updateOnProbation(cfg.Update)
	store, err := boltstore.Open(cfg.StorePath(), boltstore.Options{LockTimeout: time.Second, KeepSchema: onProbation})
	if err != nil {
		return err
	}
	defer store.Close()
	if store.Schema() < boltstore.NewestSchema() {
		log.Info("store schema kept during the update's probation: upgraded once this version is healthy",
			"schema", store.Schema(), "this_version_writes", boltstore.NewestSchema())
	}

	l, err := locker.New(cfg.Settings(), store, hw, cfg.PickupKey, locker.SystemClock{}, log)
	if err != nil {
		return err
	}
	l.SetSpaceLimits(locker.SpaceLimits{Headroom: store.Headroom, MinFree: int64(cfg.Store.MinFree),
		Floor: max(int64(cfg.Store.MinFree)/4, 32<<10)})
	l.SetClockTrust(&locker.ClockTrust{Mode: cfg.Policy.ClockTrust, Synced: clockSynced, MinPlausible: minPlausible})
	if err := l.Start(version); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	rc.l, rc.probation = l, time.Minute
	if cfg.MQTT != nil {
		rc.probation = cfg.MQTT.ConfigProbation.D()
	}

	ln, err := net.Listen("tcp", cfg.API.Listen)
	if err != nil {
		return fmt.Errorf("api: %w", err)
	}
	g, gctx := errgroup.WithContext(ctx)
	var link *mqttlink.Link // nil: standalone
	if m := cfg.MQTT; m != nil {
		tlsCfg, err := cfg.TLSConfig()
		if err != nil {
			return err
		}
		state, err := linkstore.New(store.DB()) // the link's own buckets, in the store's file
		if err != nil {
			return err
		}
		var upd mqttlink.Updater
		if cfg.Update != nil {
			u, err := newUpdater(cfg, l, store, log, rc.restart, gctx)
			if err != nil {
				return err
			}
			upd = u
		}
		link, err = mqttlink.New(mqttlink.Config{Configurer: rc, Updater: upd, Brokers: m.Brokers, Prefix: m.TopicPrefix, LockerID: cfg.Locker.ID,
			Keepalive: m.Keepalive.D(), TelemetryPeriod: m.TelemetryPeriod.D(), Username: m.Username,
			Password: cfg.MQTTPassword, TLS: tlsCfg, CentralKey: cfg.CentralKey, CentralNextKey: cfg.CentralNextKey,
			InsecureUnsigned: cfg.Security.InsecureUnsignedDownlink, Version: version,
			MaxMessage: int(m.MaxMessage), PublishTimeout: m.PublishTimeout.D(), AckWindow: m.AckWindow, StoreSize: store.Size,
			State: state, SnapshotTimeout: m.SnapshotTimeout.D(), Log: log}, l)
		if err != nil {
			return err
		}
		l.SetPatronChecker(link) // library card + PIN, checked by the central
		l.SetHoldAsker(link)     // an item staff scan with no order: its hold, looked up by the central
		if u, ok := upd.(*updater); ok {
			g.Go(func() error {
				u.settleUpdate(func() error { return healthyOn(l, link) }, gctx.Done())
				return nil
			})
		}
		g.Go(func() error { return link.Run(gctx) })
	} else {
		log.Info("no mqtt section: running standalone")
	}
	screen, err := kiosk.New(kioskConfig(cfg), l, log)
	if err != nil {
		return err
	}
	var connected func() bool
	if link != nil {
		connected = link.Connected
	}
	stats := metrics.New(l, connected)
	g.Go(func() error { stats.Run(gctx, l); return nil })
	mux := http.NewServeMux()
	mux.Handle("/v1/", httpapi.New(l, log))
	sim.Mount(mux, simHW, log)
	mux.Handle("GET /metrics", stats.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := l.Healthy(5 * time.Second); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("/", screen)
	// No page in a browser on this machine may open a door or read the
	// API; the admin routes need the per-boot token lockerctl reads.
	tokenFile := cfg.APITokenFile()
	token, err := httpapi.NewToken(tokenFile)
	if err != nil {
		return err
	}
	defer os.Remove(tokenFile)
	listenHost, _, _ := net.SplitHostPort(cfg.API.Listen)
	recovering := httpapi.Recoverer(mux, func(where string, v any) {
		l.Fault(fmt.Sprintf("panic in %s: %v", where, v))
	})
	guarded, err := httpapi.NewGuard(recovering, httpapi.GuardConfig{Listen: ln.Addr(), ConfiguredHost: listenHost, Token: token})
	if err != nil {
		return err
	}
	// Request contexts end with the daemon, so that long-lived event
	// streams do not hold up a clean stop. Every request and connection is
	// bounded (httpapi.NewServer, LimitListener).
	srv := httpapi.NewServer(guarded, gctx)
	ln = httpapi.LimitListener(ln, httpapi.MaxConns)

	g.Go(func() error { return l.Run(gctx) })
	g.Go(func() error {
		err := httpapi.Serve(gctx, srv, func() error { return srv.Serve(ln) })
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	})
	for _, sc := range cfg.Scanners {
		if sc.Port == "" {
			continue // input only through the API / keypad
		}
		s := backend.Scanner(sc)
		s.Log = log
		s.OnLine = func(line string) {
			res, err := l.Scan(gctx, sc.Name, line)
			if err != nil {
				log.Error("scan", "scanner", sc.Name, "err", err)
				return
			}
			log.Debug("scan handled", "scanner", sc.Name, "outcome", res.Outcome, "reason", res.Reason)
		}
		s.OnState = func(up bool, err error) {
			detail := ""
			if err != nil {
				detail = err.Error()
			}
			l.RecordScannerState(sc.Name, up, detail)
			log.Info("scanner", "scanner", sc.Name, "port", sc.Port, "connected", up, "detail", detail)
		}
		g.Go(func() error { return s.Run(gctx) })
	}
	g.Go(func() error { watchdog(gctx, l, log); return nil })
	g.Go(func() error {
		rc.settleAtStart(pending, func() error { return healthyOn(l, link) }, gctx.Done())
		return nil
	})
	notifyReady(log)
	log.Info("ready", "locker", cfg.Locker.ID, "api", ln.Addr().String(), "api_token_file", tokenFile, "store", store.Path(), "boot", store.Boot(),
		"backend", cfg.Hardware.Backend, "version", version, "store_schema", store.Schema())
	return g.Wait()
}
