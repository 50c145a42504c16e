// Package sse writes Server-Sent Events: the live streams of the local
// API (/v1/events/stream) and of the kiosk (/kiosk/stream).
package sse

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// KeepaliveEvery is how often an idle stream sends a comment, so that
// proxies and the browser keep it open.
const KeepaliveEvery = 15 * time.Second

// Stream is one open event stream.
type Stream struct {
	w http.ResponseWriter
	f http.Flusher
}

// Start sends the stream's headers.
func Start(w http.ResponseWriter) (*Stream, error) {
	f, ok := w.(http.Flusher)
	if !ok {
		return nil, errors.New("streaming not supported")
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	s := &Stream{w, f}
	return s, s.comment("connected")
}

// Send writes one event: kind (the SSE event name; "" for the default),
// id ("" for none) and v as JSON data.
func (s *Stream) Send(kind, id string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if kind != "" {
		fmt.Fprintf(s.w, "event: %s\n", kind)
	}
	if id != "" {
		fmt.Fprintf(s.w, "id: %s\n", id)
	}
	_, err = fmt.Fprintf(s.w, "data: %s\n\n", raw)
	s.f.Flush()
	return err
}

// Keepalive writes a comment line.
func (s *Stream) Keepalive() error { return s.comment("keepalive") }

func (s *Stream) comment(text string) error {
	_, err := fmt.Fprintf(s.w, ": %s\n\n", text)
	s.f.Flush()
	return err
}
