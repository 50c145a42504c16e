package fleetsim

import (
	"context"
	"crypto/ed25519"
	"io"
	"log/slog"
	"path/filepath"
	"regexp"
	"time"

	"github.com/lockerd/lockerd/drivers/sim"
	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/locker/boltstore"
	"github.com/lockerd/lockerd/locker/lockertest"
	"github.com/lockerd/lockerd/sync/linkstore"
	"github.com/lockerd/lockerd/sync/mqttlink"
)

// Quiet is a logger that drops everything.
var Quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// Locker is one simulated locker.
type Locker struct {
	ID    string
	Dir   string
	Store *boltstore.Store
	HW    *sim.Hardware
	L     *locker.Locker

	// OnAck, set before Connect, is told each ack.evt the link takes
	// (what the central has stored, up to upto), before the outbox drops it.
	OnAck func(upto uint64)

	stop     context.CancelFunc
	done     chan struct{}
	linkStop context.CancelFunc
	linkDone chan struct{}
}

// StaffBadge is the simulated lockers' staff badge (anonymous staff: load
// and retrieve).
const StaffBadge = "FLEETSTAFF1"

// Settings are a simulated locker's: compartment S1 (size S), a return
// slot taking 8 to 14 digit barcodes, the fastest pulses allowed,
// failed-code limits loose enough for a benchmark, and StaffBadge.
func Settings(id string) locker.Settings {
	p := locker.DefaultPolicy()
	p.MaxFailedCodes = 100
	return locker.Settings{LockerID: id, Policy: p, LockPulse: locker.MinLockPulse, MaxConcurrentPulses: 2,
		StaffBadges:  []string{lockertest.Key.Hash(StaffBadge)},
		Compartments: []locker.Compartment{{ID: "S1", Size: locker.SizeS, Lock: "L1", Sensor: "D1"}},
		Devices:      []locker.Device{{Name: "front", Role: locker.RolePickup}, {Name: "returns", Role: locker.RoleReturn}},
		Return:       &locker.ReturnSlot{Lock: "LR", Sensor: "DR", Pattern: regexp.MustCompile(`^[0-9]{8,14}$`)}}
}

// New starts a locker with its store in dir.
func New(dir, id string) (*Locker, error) {
	hw, err := sim.New(sim.Config{Doors: []sim.Door{{ID: "S1", Lock: "L1", Sensor: "D1"}, {ID: locker.ReturnSlotID, Lock: "LR", Sensor: "DR"}},
		OpenDelay: time.Millisecond, AutoClose: 5 * time.Millisecond, RelayActiveLow: true})
	if err != nil {
		return nil, err
	}
	st, err := boltstore.Open(filepath.Join(dir, "lockerd.db"), boltstore.Options{})
	if err != nil {
		hw.Close()
		return nil, err
	}
	l, err := locker.New(Settings(id), st, hw, lockertest.Key, locker.SystemClock{}, Quiet)
	if err == nil {
		err = l.Start("fleetsim")
	}
	if err != nil {
		hw.Close()
		st.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Locker{ID: id, Dir: dir, Store: st, HW: hw, L: l, stop: cancel, done: make(chan struct{})}
	go func() { l.Run(ctx); close(r.done) }()
	return r, nil
}

// LinkState is the MQTT link's state in the locker's store file, as
// lockerd keeps it.
func (r *Locker) LinkState() (mqttlink.State, error) { return linkstore.New(r.Store.DB()) }

// Connect runs the locker's MQTT link to brokers (tried in order) until
// Close, verifying downlink with central; tune changes the link's config
// before it starts (shorter timers for a test).
func (r *Locker) Connect(brokers []string, central ed25519.PublicKey, log *slog.Logger, tune ...func(*mqttlink.Config)) error {
	state, err := r.LinkState()
	if err != nil {
		return err
	}
	if log == nil {
		log = Quiet
	}
	cfg := mqttlink.Config{Brokers: brokers, LockerID: r.ID, CentralKey: central, State: state, Log: log}
	for _, f := range tune {
		f(&cfg)
	}
	var core mqttlink.Core = r.L
	if r.OnAck != nil {
		core = ackTap{r.L, r.OnAck}
	}
	link, err := mqttlink.New(cfg, core)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.linkStop, r.linkDone = cancel, make(chan struct{})
	go func() { link.Run(ctx); close(r.linkDone) }()
	return nil
}

// Close stops the link and the locker and closes its store.
func (r *Locker) Close() {
	if r.linkStop != nil {
		r.linkStop()
		<-r.linkDone
	}
	r.stop()
	<-r.done
	r.HW.Close()
	r.Store.Close()
}

// ackTap is the core with each ack.evt told to on first.
type ackTap struct {
	*locker.Locker
	on func(upto uint64)
}

func (a ackTap) AckEvents(upto uint64) (int, error) {
	a.on(upto)
	return a.Locker.AckEvents(upto)
}
