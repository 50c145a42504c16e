package hubmetrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lockerd/lockerd/locker/metrics"
	"github.com/lockerd/lockerd/sync/hub/alarm"
	"github.com/lockerd/lockerd/sync/hub/circulation"
	"github.com/lockerd/lockerd/sync/hub/fleet"
	"github.com/lockerd/lockerd/sync/sip2"
)

// Source is what the metrics read at scrape time: the SIP2 session's
// state (nil: no bridge), the open circulation transactions (by id), the
// unresolved alarms.
type Source interface {
	ILSState() *sip2.State
	OpenCircs() ([]circulation.CircRec, error)
	OpenAlarms() ([]alarm.Alarm, error)
}

// Metrics is one replica's.
type Metrics struct {
	reg      *prometheus.Registry
	outcomes *prometheus.CounterVec
	rtts     *prometheus.HistogramVec
	cards    *prometheus.CounterVec
	notices  *prometheus.CounterVec
}

// New makes the metrics over src.
func New(src Source) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.outcomes = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "lockerhub", Name: "circulation_transactions_total",
		Help: "ILS transactions ended by this replica, by kind and outcome (done, refused, exception)."}, []string{"kind", "outcome"})
	m.rtts = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "lockerhub", Name: "ils_round_trip_seconds",
		Help: "Time from sending an circulation.ILS transaction to its reply, by kind.", Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}, []string{"kind"})
	up := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "lockerhub", Name: "ils_session_up",
		Help: "1 while the SIP2 session with the library's system is logged in and answering."}, func() float64 {
		if st := src.ILSState(); st != nil && st.Up {
			return 1
		}
		return 0
	})
	refusals := prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "lockerhub", Name: "ils_login_refusals_total",
		Help: "Logins the library's system refused (check sip2.user and the password)."}, func() float64 {
		if st := src.ILSState(); st != nil {
			return float64(st.LoginRefusals)
		}
		return 0
	})
	depth := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "lockerhub", Name: "circulation_queue_depth",
		Help: "ILS transactions not finished, by state (queued, sending: the bridge's; refused, exception: a person's)."}, []string{"state"})
	oldest := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "lockerhub", Name: "circulation_oldest_age_seconds",
		Help: "Age of the oldest unfinished circulation.ILS transaction, by state."}, []string{"state"})
	queue := metrics.CollectorFunc(func(ch chan<- prometheus.Metric) {
		open, _ := src.OpenCircs()
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
		as, _ := src.OpenAlarms()
		for _, a := range as {
			openAlarms.WithLabelValues(a.Type, alarm.SeverityOf(a.Type)).Inc()
		}
		openAlarms.Collect(ch)
	}, openAlarms)
	m.cards = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "lockerhub", Name: "card_checks_total",
		Help: "Library card + PIN checks answered for lockers, by outcome (ok, wrong_pin, refused, ils_unreachable, no_ils, rate_limited, busy, malformed)."}, []string{"outcome"})
	m.notices = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "lockerhub", Name: "notices_sent_total",
		Help: "Notices sent to readers by this replica, by channel (email, http)."}, []string{"channel"})
	m.reg.MustRegister(m.outcomes, m.rtts, m.cards, m.notices, up, refusals, queue, alarms)
	return m
}

// Outcome counts a transaction that ended (or went to a person).
func (m *Metrics) Outcome(c circulation.CircRec) {
	m.outcomes.WithLabelValues(c.Kind, c.State).Inc()
}

// RTT records a transaction's round trip (those answered).
func (m *Metrics) RTT(kind string, d time.Duration, err error) {
	if err == nil {
		m.rtts.WithLabelValues(kind).Observe(d.Seconds())
	}
}

// Card counts a card check answered, by outcome.
func (m *Metrics) Card(outcome string) { m.cards.WithLabelValues(outcome).Inc() }

// Notice counts a notice sent, by channel.
func (m *Metrics) Notice(channel string) { m.notices.WithLabelValues(channel).Inc() }

// Handler serves the metrics (Prometheus text format).
func (m *Metrics) Handler() http.Handler {
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
