// Package requests answers the questions lockers ask the central on
// up/req, each signed on down/ack with ref = the request's id, by the
// leader replica (hub.Config.Requests routes them here; Wire sets it up):
//
//   - req.patron: a library card and PIN typed at a locker. The library
//     system is asked (SIP2 23, circulation.AnswerCard) and the answer
//     carries the card's patron hash; the card and PIN are used for that
//     one question, never stored, never logged. One replica answers, so a
//     wrong PIN is counted once at the library system.
//   - req.hold: staff at a cabinet scanned an item with no order there:
//     holds become orders. The library system is asked whose hold it is
//     and for which pickup point (circulation.Bridge.FindHold: SIP2 17,
//     or 63 for the reader on the hold slip); the order is made for that
//     reader — the same reader's items of one visit share one pickup code,
//     or join the order whose door is open — and sent with the answer, so
//     that the locker opens a compartment for loading. A refusal (no hold,
//     a hold for another pickup point, an unknown item) is answered with
//     its reason for the staff screen; every scan is kept in the
//     circulation list for the console. A scan queued while the locker
//     was offline reaches the bridge as an event; it calls OrderHold.
//
// Each kind of question is bounded per locker (a burst, then a pace) and
// in flight: beyond, it is answered "unavailable" at once without asking
// the library system. The package owns no records: orders are the
// core's (hub.CreateOrder), the list the bridge's.
package requests
