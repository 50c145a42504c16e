// Package metrics exposes a locker's health as Prometheus metrics on
// /metrics (client_golang): counters fed by the locker's committed events,
// gauges read at scrape time.
package metrics
