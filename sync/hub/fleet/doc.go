// Package fleet owns the central's fleet of cabinets: provisioning (one-
// time tokens, what a blank cabinet is given), the cabinets' broker
// credentials and client certificates, their revocation and the CRL,
// remote configurations with their versions, and software releases with
// their staged rollouts.
//
// Its records are JSON documents by kind (Docs, the store interface it
// declares); what it needs of the hub's core — the lockers served, a
// command sent — comes through the small Registry and Lockers ports, and
// its alarms go through the hub's Raise, in the caller's transaction. It
// imports no other package of the central but alarm, auth (hashing,
// audit records) and webhook (the transaction part an alarm is told in).
// fleettest is its conformance suite, run on every store engine.
package fleet
