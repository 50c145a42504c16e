// Package sse writes Server-Sent Events: the live streams of the local
// API (/v1/events/stream) and of the kiosk (/kiosk/stream).
package sse
