// Package webhook owns the central's webhooks: the subscriptions of the
// library's systems, their delivery queue, and the worker that delivers
// it — one event per signed POST, at least once, in order per order,
// retried with back-off until a deadline, then listed for redelivery by
// hand. Deliveries are queued (Service.Queue) in the caller's transaction,
// the one that records what they tell. It declares the part of a store it
// needs (Tx) and the lease it delivers under (Lease); the calls it makes
// go through the hub's egress policy.
package webhook
