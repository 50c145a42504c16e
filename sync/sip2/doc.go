// Package sip2 speaks 3M's Standard Interchange Protocol 2.00, the
// protocol libraries' systems (ILS) speak with self-service devices.
//
// The codec: a message is a two-digit code, a fixed part whose length the
// code decides, and variable fields "XXvalue|" (a two-letter tag, a value,
// a pipe), ending with the error-detection fields AY (sequence) and AZ
// (checksum) and a carriage return; Marshal and Unmarshal carry it in the
// ILS's character set (UTF-8, GB18030, CP850, Latin-1). Hand-written: no
// SIP2 module is served.
//
// The session: Session keeps one connection to an ILS (login, status and
// heartbeat, 97 resends, reconnect with back-off) and runs the
// transactions lockerhub's circulation bridge needs (checkout, checkin,
// item and patron information). What to send and when, and the queue that
// makes it exactly once, live in sync/hub.
package sip2
