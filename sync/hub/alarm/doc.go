// Package alarm owns the central's alarms: what at a locker (or at the
// central) needs a person — the record, the catalogue of types and their
// severity, and the rule that one condition is one alarm (raised again,
// it is updated while unresolved) — over the part of a store it declares
// (Tx). Raise runs in the caller's transaction, the one that records why
// (an event stored, a sweep's finding); the caller tells the webhooks in
// it too.
package alarm
