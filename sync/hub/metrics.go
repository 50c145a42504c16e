package hub

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lockerd/lockerd/locker/metrics"
	"github.com/lockerd/lockerd/sync/hub/alarm"
	"github.com/lockerd/lockerd/sync/hub/circulation"
	"github.com/lockerd/lockerd/sync/hub/fleet"
)

// hubMetrics is lockerhub's /metrics: the circulation bridge's session,
// queue and transactions (gauges read from the store at scrape time,
// counters and a histogram fed as transactions end).
type hubMetrics struct {
	reg      *prometheus.Registry
	outcomes *prometheus.CounterVec
	rtts     *prometheus.HistogramVec
	cards    *prometheus.CounterVec
}

func newHubMetrics(h *Hub) *hubMetrics {
	m := &hubMetrics{reg: prometheus.NewRegistry()}
	m.outcomes = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "lockerhub", Name: "circulation_transactions_total",
		Help: "ILS transactions ended by this replica, by kind and outcome (done, refused, exception)."}, []string{"kind", "outcome"})
	m.rtts = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "lockerhub", Name: "ils_round_trip_seconds",
		Help: "Time from sending an circulation.ILS transaction to its reply, by kind.", Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}, []string{"kind"})
	up := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "lockerhub", Name: "ils_session_up",
		Help: "1 while the SIP2 session with the library's system is logged in and answering."}, func() float64 {
		if ils := h.cfg.Circulation.ILS; ils != nil && ils.State().Up {
			return 1
		}
		return 0
	})
	refusals := prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "lockerhub", Name: "ils_login_refusals_total",
		Help: "Logins the library's system refused (check sip2.user and the password)."}, func() float64 {
		if ils := h.cfg.Circulation.ILS; ils != nil {
			return float64(ils.State().LoginRefusals)
		}
		return 0
	})
	depth := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "lockerhub", Name: "circulation_queue_depth",
		Help: "ILS transactions not finished, by state (queued, sending: the bridge's; refused, exception: a person's)."}, []string{"state"})
	oldest := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "lockerhub", Name: "circulation_oldest_age_seconds",
		Help: "Age of the oldest unfinished circulation.ILS transaction, by state."}, []string{"state"})
	queue := metrics.CollectorFunc(func(ch chan<- prometheus.Metric) {
		var open []circulation.CircRec
		_ = h.store.View(func(tx Tx) error {
			var err error
			open, err = tx.Circ.OpenCircs(0)
			return err
		})
		now := time.Now()
		for _, st := range []string{circulation.CircQueued, circulation.CircSending, circulation.CircRefused, circulation.CircException} {
			depth.WithLabelValues(st).Set(0)
			oldest.WithLabelValues(st).Set(0)
		}
		seen := map[string]bool{}
		for _, c := range open {
			depth.WithLabelValues(c.State).Inc()
			if !seen[c.State] {
				seen[c.State] = true // by id: the first is the oldest
				oldest.WithLabelValues(c.State).Set(now.Sub(c.Queued).Seconds())
			}
		}
		depth.Collect(ch)
		oldest.Collect(ch)
	}, multiCollector{depth, oldest})
	openAlarms := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "lockerhub", Name: "alarms_open",
		Help: "Alarms not resolved, by kind and severity."}, []string{"kind", "severity"})
	alarms := metrics.CollectorFunc(func(ch chan<- prometheus.Metric) {
		openAlarms.Reset()
		for _, k := range []string{alarm.DoorForced, alarm.DoorLeftOpen, alarm.DoorJammed, alarm.OutOfService, alarm.ReturnBinFull,
			alarm.HardwareFault, alarm.StoreLowSpace, alarm.Offline, alarm.Circulation, alarm.NoSpace, alarm.Items, fleet.AlarmConfigRejected, fleet.AlarmUpdateFailed} {
			openAlarms.WithLabelValues(k, alarm.SeverityOf(k)).Set(0)
		}
		as, _ := h.OpenAlarms()
		for _, a := range as {
			openAlarms.WithLabelValues(a.Type, alarm.SeverityOf(a.Type)).Inc()
		}
		openAlarms.Collect(ch)
	}, openAlarms)
	m.cards = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "lockerhub", Name: "card_checks_total",
		Help: "Library card + PIN checks answered for lockers, by outcome (ok, wrong_pin, refused, ils_unreachable, no_ils, rate_limited, busy, malformed)."}, []string{"outcome"})
	m.reg.MustRegister(m.outcomes, m.rtts, m.cards, up, refusals, queue, alarms)
	return m
}

// outcome counts a transaction that ended (or went to a person).
func (m *hubMetrics) Outcome(c circulation.CircRec) {
	m.outcomes.WithLabelValues(c.Kind, c.State).Inc()
}

// rtt records a transaction's round trip (those answered).
func (m *hubMetrics) RTT(kind string, d time.Duration, err error) {
	if err == nil {
		m.rtts.WithLabelValues(kind).Observe(d.Seconds())
	}
}

func (m *hubMetrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// multiCollector describes several collectors as one.
type multiCollector []prometheus.Collector

func (m multiCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m {
		c.Describe(ch)
	}
}
func (m multiCollector) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m {
		c.Collect(ch)
	}
}

// MetricsHandler serves the hub's metrics (Prometheus text format).
func (h *Hub) MetricsHandler() http.Handler { return h.metrics.handler() }
