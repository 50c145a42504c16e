// Package httpapi is lockerd's local HTTP API, served on api.listen
// (loopback only): what lockerctl talks to. It exposes status, orders,
// the outbox, scan injection, maintenance open, service on/off and, when
// the hardware is simulated, the simulator's fault controls. Responses
// never carry a pickup code except the one reply that creates an order.
package httpapi
