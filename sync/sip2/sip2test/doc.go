// Package sip2test is a fake ILS speaking SIP2 over TCP for tests: scripted
// patrons and items, a count of every checkout and checkin it was asked
// for, and faults a test switches on (offline in 98, login refused, wrong
// checksums, replies held back, connections dropped).
package sip2test
