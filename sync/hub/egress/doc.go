// Package egress owns what the central may connect to when it calls out
// (webhooks today; every URL the hub calls goes through it): by default
// no loopback, link-local, private, shared (carrier-grade NAT: cloud
// metadata services live there too), unspecified, multicast or reserved
// address, checked at dial time on the address actually dialled — after
// DNS resolution, so that a name that resolves (or rebinds) to such an
// address is refused all the same. A receiver on the library's own
// network is allowed by name in the config: Policy.Allow.
package egress
