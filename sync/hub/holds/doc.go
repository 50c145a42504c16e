// Package holds turns the library system's holds into locker orders at a
// staff scan. Staff pull the books on the hold shelf, bring them to a
// cabinet and scan each; an item the locker has no order for comes here
// as req.hold. The service asks the library system whose hold it is and
// for which pickup point (circulation.Bridge.FindHold: SIP2 17, or 63 for
// the reader on the hold slip), makes the order for that reader — the
// same reader's items of one visit share one pickup code — and answers
// the locker with it, signed, so that it opens a compartment for loading.
// A refusal (no hold, a hold for another pickup point, an unknown item)
// is answered with its reason for the staff screen, and every scan is
// kept in the circulation list for the console.
//
// It owns no records: orders are the core's (hub.CreateOrder), the list
// the bridge's. A scan queued while the locker was offline reaches the
// bridge as an event; the bridge calls OrderHold for it.
package holds
