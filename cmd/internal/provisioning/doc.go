// Package provisioning is a blank cabinet's side of provisioning: with a
// one-time token (or the text of its QR code) it fetches its identity,
// keys, broker credentials and configuration from the hub and writes
// them. lockerctl provision and lockerd's unprovisioned mode use it.
package provisioning
