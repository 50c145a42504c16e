// Package circulation is the central's bridge to the library's system
// (the ILS) over SIP2: the queue of loans (checkouts), returns (checkins)
// and patron checks that lockers' events call for, worked exactly once
// through outages by one replica at a time; whether the ILS takes
// transactions now, and the alarm when it has not for a while. It
// declares the part of a store transaction it needs (Tx): its queue
// (CircTx), the core's orders through a small port (Orders: an order's
// reader and items, a loan written back), and the alarm and webhook parts
// for what a person must see.
package circulation
