// Package hubmetrics is lockerhub's /metrics: the circulation bridge's
// session, queue and transactions, the open alarms, the card checks and
// the readers' notices. Gauges are read from the Source at scrape time;
// counters and a histogram are fed as things end.
package hubmetrics
