// Package notice owns what the central tells readers: that their books
// are ready in a locker (with the pickup code, the order page's link, the
// locker's place and opening hours, and the last day), a reminder a day
// before that last day, and that an order expired or was cancelled.
//
// A notice is queued (Service.Queue) in the caller's transaction — the one
// that records what it tells — once per order, kind and channel (its key),
// however often the event that causes it arrives. One replica sends (the
// lease "notices"), through a Channel: e-mail over SMTP, or a signed HTTP
// POST to a gateway for SMS or WeChat template messages; a failure is
// retried with back-off until the notice's deadline, then the notice is
// dead and listed. A notice is marked sending in the store before it goes
// out; one found sending after a crash is sent again with the same id
// (Message-ID, Idempotency-Key), so that a receiver can drop the second.
//
// The pickup code is never at rest in the clear: the hub seals it to the
// notice key when it makes the code (Sealer, NaCl anonymous box), the
// order keeps it sealed, and only the sender opens it, to hand it to the
// channel; the order's sealed copy is erased when the order ends.
package notice
