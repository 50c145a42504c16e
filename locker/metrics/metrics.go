package metrics

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lockerd/lockerd/locker"
)

// Metrics counts what a locker does.
type Metrics struct {
	reg      *prometheus.Registry
	events   *prometheus.CounterVec
	pickups  prometheus.Counter
	denials  *prometheus.CounterVec
	lockouts prometheus.Counter
	returns  *prometheus.CounterVec
	alarms   *prometheus.CounterVec
	jams     prometheus.Counter
}

// Source is what the metrics read from the locker core; *locker.Locker
// is one.
type Source interface {
	Subscribe() (<-chan locker.Event, func())
	Pulses() uint64
	SyncState() (locker.SyncState, error)
	Events(after uint64, limit int) ([]locker.Event, error)
	StoreHealthy() bool
	ScannerStates() map[string]bool
	HardwareStates() map[string]bool
}

// New registers the metrics of l; connected reports the MQTT link (nil:
// standalone).
func New(l Source, connected func() bool) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	f := func(name, help string) prometheus.CounterOpts {
		return prometheus.CounterOpts{Namespace: "lockerd", Name: name, Help: help}
	}
	m.events = prometheus.NewCounterVec(f("events_total", "Events recorded, by type."), []string{"type"})
	m.pickups = prometheus.NewCounter(f("pickups_total", "Orders picked up."))
	m.denials = prometheus.NewCounterVec(f("pickup_denials_total", "Codes refused, by reason."), []string{"reason"})
	m.lockouts = prometheus.NewCounter(f("lockouts_total", "Lockouts started."))
	m.returns = prometheus.NewCounterVec(f("returns_total", "Returns, by result."), []string{"result"})
	m.alarms = prometheus.NewCounterVec(f("door_alarms_total", "Door alarms, by kind."), []string{"kind"})
	m.jams = prometheus.NewCounter(f("jams_total", "Doors that did not open when pulsed."))
	g := func(name, help string, fn func() float64) prometheus.GaugeFunc {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "lockerd", Name: name, Help: help}, fn)
	}
	m.reg.MustRegister(m.events, m.pickups, m.denials, m.lockouts, m.returns, m.alarms, m.jams,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "lockerd", Name: "relay_pulses_total", Help: "Lock relay pulses."},
			func() float64 { return float64(l.Pulses()) }),
		g("outbox_depth", "Events not yet acknowledged by the central library.", func() float64 {
			st, _ := l.SyncState()
			return float64(st.Depth)
		}),
		g("outbox_oldest_age_seconds", "Age of the oldest unacknowledged event.", func() float64 {
			st, err := l.SyncState()
			if err != nil || st.Depth == 0 {
				return 0
			}
			evs, err := l.Events(st.AckedSeq, 1)
			if err != nil || len(evs) == 0 {
				return 0
			}
			return time.Since(evs[0].TS).Seconds()
		}),
		g("mqtt_connected", "1 while the link to the central library is up.", func() float64 {
			if connected != nil && connected() {
				return 1
			}
			return 0
		}),
		g("store_healthy", "1 while the store can record what the locker does.", func() float64 {
			if l.StoreHealthy() {
				return 1
			}
			return 0
		}),
	)
	m.upGauge("scanner_up", "1 while the scanner is connected.", "scanner", l.ScannerStates)
	m.upGauge("hardware_up", "1 while a part of the hardware that can fail on its own (a lock board, its bus) answers.", "device", l.HardwareStates)
	return m
}

// upGauge registers a gauge with one series per name in states(): 1 up, 0 down.
func (m *Metrics) upGauge(name, help, label string, states func() map[string]bool) {
	vec := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "lockerd", Name: name, Help: help}, []string{label})
	m.reg.MustRegister(CollectorFunc(func(ch chan<- prometheus.Metric) {
		for k, up := range states() {
			v := 0.0
			if up {
				v = 1
			}
			vec.WithLabelValues(k).Set(v)
		}
		vec.Collect(ch)
	}, vec))
}

// Run counts committed events until ctx ends.
func (m *Metrics) Run(ctx context.Context, l Source) {
	events, stop := l.Subscribe()
	defer stop()
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-events:
			m.count(e)
		}
	}
}

func (m *Metrics) count(e locker.Event) {
	m.events.WithLabelValues(string(e.Type)).Inc()
	p, err := e.Payload()
	if err != nil {
		return
	}
	// A refusal summing up a burst (Count) stands for Count refusals.
	times := func(r locker.Refusal) float64 { return float64(max(r.Count, 1)) }
	switch p := p.(type) {
	case *locker.PickupCompleted:
		m.pickups.Inc()
	case *locker.PickupDenied:
		m.denials.WithLabelValues(p.Reason).Add(times(p.Refusal))
	case *locker.LockoutStarted:
		m.lockouts.Inc()
	case *locker.ItemReturned:
		m.returns.WithLabelValues("accepted").Inc()
	case *locker.ReturnRefused:
		m.returns.WithLabelValues(p.Reason).Add(times(p.Refusal))
	case *locker.DoorForced:
		m.alarms.WithLabelValues("forced").Inc()
	case *locker.DoorLeftOpen:
		m.alarms.WithLabelValues("left_open").Inc()
	case *locker.DoorJammed:
		m.jams.Inc()
	}
}

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// CollectorFunc adapts a collect function (and the descriptions of what
// it collects) to prometheus.Collector: gauges read at scrape time (also
// lockerhub's).
func CollectorFunc(f func(chan<- prometheus.Metric), desc prometheus.Collector) prometheus.Collector {
	return collectorFuncT{f, desc}
}

type collectorFuncT struct {
	collect func(chan<- prometheus.Metric)
	desc    prometheus.Collector
}

func (c collectorFuncT) Describe(ch chan<- *prometheus.Desc) { c.desc.Describe(ch) }
func (c collectorFuncT) Collect(ch chan<- prometheus.Metric) { c.collect(ch) }
