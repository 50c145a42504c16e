// Package noticetest is the notices' test kit: an in-memory store, the
// conformance suite every store engine runs (TestStore), and an SMTP
// server on loopback that keeps what it receives (StartSMTP).
package noticetest
