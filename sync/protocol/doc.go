// Package protocol holds the wire format of lockerd's protocol v1 with the
// central library (docs/protocol.md): the signed downlink envelope. Every
// message on a locker's down/ topics is
//
//	{"v":1,"body":"<base64 of the exact JSON bytes>","sig":"<base64 Ed25519 signature over those bytes>"}
//
// verified with the central library's Ed25519 public key before anything
// in the body is believed.
package protocol
