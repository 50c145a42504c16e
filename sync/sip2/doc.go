// Package sip2 is the wire codec of 3M's Standard Interchange Protocol
// 2.00, the protocol libraries' systems (ILS) speak with self-service
// devices: a message is a two-digit code, a fixed part whose length the
// code decides, and variable fields "XXvalue|" (a two-letter tag, a value,
// a pipe), ending with the error-detection fields AY (sequence) and AZ
// (checksum) and a carriage return. Hand-written: no SIP2 module is served.
//
// It owns framing, fields and checksums only; sessions and the bridge
// that uses it live in lockerhub.
package sip2
