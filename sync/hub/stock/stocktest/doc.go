// Package stocktest is the stock's test kit: an in-memory store and the
// conformance suite every store engine runs.
package stocktest
