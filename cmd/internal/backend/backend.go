package backend

import (
	"context"
	"fmt"
	"log/slog"

	"periph.io/x/conn/v3/gpio"

	"github.com/lockerd/lockerd/cmd/internal/config"
	"github.com/lockerd/lockerd/drivers/gpiohw"
	"github.com/lockerd/lockerd/drivers/serialscan"
	"github.com/lockerd/lockerd/drivers/sim"
	"github.com/lockerd/lockerd/locker"
)

// Cabinet is an opened hardware backend.
type Cabinet struct {
	locker.Hardware
	// Sim is the simulated cabinet when the backend is sim (nil otherwise).
	Sim *sim.Hardware
}

// Settle waits until every input can be read, for hardware that learns
// its inputs by polling (lock boards: each board answered, or had
// settleRounds more polls to do so); other hardware reads at once. It is
// for tools that judge the hardware from its first readings (lockerctl
// selftest); lockerd starts with unknown doors instead.
func (c *Cabinet) Settle(ctx context.Context) error {
	if w, ok := c.Hardware.(interface {
		WaitAnswered(ctx context.Context, rounds int) error
	}); ok {
		return w.WaitAnswered(ctx, settleRounds)
	}
	return nil
}

// settleRounds: one lost or garbled reply is line noise (the driver's own
// fault rule needs two in a row); three rounds give a board that much and
// one more.
const settleRounds = 3

// Wiring lists the config's pins by function.
type Wiring struct {
	Locks, Sensors, Signals []string
}

// WiringOf collects the lock, sensor and signal pins of a config.
func WiringOf(cfg *config.Config) Wiring {
	var w Wiring
	for _, c := range cfg.Compartments {
		w.Locks = append(w.Locks, c.Lock)
		w.Sensors = append(w.Sensors, c.Sensor)
		if c.ItemSensor != "" {
			w.Sensors = append(w.Sensors, c.ItemSensor)
		}
	}
	if r := cfg.Returns; r != nil {
		w.Locks = append(w.Locks, r.Lock)
		if r.ServiceLock != "" {
			w.Locks = append(w.Locks, r.ServiceLock)
		}
		for _, s := range []string{r.Sensor, r.BinFullSensor, r.ServiceSensor} {
			if s != "" {
				w.Sensors = append(w.Sensors, s)
			}
		}
	}
	for _, o := range []string{cfg.Hardware.Buzzer, cfg.Hardware.StatusLED} {
		if o != "" {
			w.Signals = append(w.Signals, o)
		}
	}
	return w
}

// Scanner is the driver for one configured scanner (callbacks and Log
// left for the caller to set), for lockerd and lockerctl's self-test alike.
func Scanner(sc config.Scanner) *serialscan.Scanner {
	s := &serialscan.Scanner{Name: sc.Name, Kind: sc.Type, Port: sc.Port, Baud: sc.Baud,
		USBVendor: sc.USBVendor, USBProduct: sc.USBProd, USBSerial: sc.USBSerial}
	if sc.GM65 != nil {
		s.GM65 = &serialscan.GM65{Mode: sc.GM65.Mode, AIMID: sc.GM65.AIMID}
	}
	return s
}

// Open builds the configured backend. Every lock output is driven to its
// locked level inside the driver's constructor, before anything else.
func Open(cfg *config.Config, log *slog.Logger) (*Cabinet, error) {
	h := cfg.Hardware
	switch h.Backend {
	case config.BackendSim:
		var doors []sim.Door
		for _, c := range cfg.Compartments {
			doors = append(doors, sim.Door{ID: c.ID, Lock: c.Lock, Sensor: c.Sensor, ItemSensor: c.ItemSensor})
		}
		bin := ""
		if r := cfg.Returns; r != nil {
			doors = append(doors, sim.Door{ID: locker.ReturnSlotID, Lock: r.Lock, Sensor: r.Sensor})
			if r.ServiceLock != "" {
				doors = append(doors, sim.Door{ID: locker.ReturnBinID, Lock: r.ServiceLock, Sensor: r.ServiceSensor})
			}
			bin = r.BinFullSensor
		}
		s, err := sim.New(sim.Config{Doors: doors, BinFullSensor: bin, Outputs: WiringOf(cfg).Signals, OpenDelay: h.Sim.OpenDelay.D(),
			AutoClose: h.Sim.AutoClose.D(), RelayActiveLow: h.RelayActiveLow})
		if err != nil {
			return nil, err
		}
		return &Cabinet{Hardware: s, Sim: s}, nil
	case config.BackendGPIO:
		lines, err := gpiohw.OpenChardev()
		if err != nil {
			return nil, fmt.Errorf("gpio: %w", err)
		}
		pins := &gpiohw.Resolver{Lines: lines, Expanders: &gpiohw.Expanders{OpenBus: gpiohw.OpenI2C, DefaultBus: h.I2CBus}}
		return openGPIO(pins, cfg, log)
	case config.BackendLockBoard:
		return openLockBoard(cfg, log)
	}
	return nil, fmt.Errorf("hardware backend %q unknown", h.Backend)
}

// Pull is hardware.sensor_pull as periph's bias.
func Pull(s string) gpio.Pull {
	switch s {
	case "down":
		return gpio.PullDown
	case "none":
		return gpio.Float
	}
	return gpio.PullUp
}

func openGPIO(pins gpiohw.Pins, cfg *config.Config, log *slog.Logger) (*Cabinet, error) {
	w := WiringOf(cfg)
	h := cfg.Hardware
	hw, err := gpiohw.New(pins, gpiohw.Config{Locks: w.Locks, Sensors: w.Sensors, Signals: w.Signals,
		RelayActiveLow: h.RelayActiveLow, SensorActiveLow: h.SensorActiveLow, Pull: Pull(h.SensorPull),
		Debounce: h.Debounce.D(), Reread: h.Reread.D(), MaxConcurrent: h.MaxConcurrentPulses, Log: log})
	if err != nil {
		return nil, err
	}
	return &Cabinet{Hardware: hw}, nil
}
