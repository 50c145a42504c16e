package sse

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// KeepaliveEvery is how often an idle stream sends a comment, so that
// proxies and the browser keep it open.
const KeepaliveEvery = 15 * time.Second

// WriteTimeout bounds each write to a stream: a client that stops reading
// is cut off instead of holding the stream (and its goroutine) forever.
const WriteTimeout = 10 * time.Second

// Stream is one open event stream.
type Stream struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

// Start sends the stream's headers. A stream outlives the server's read
// and write timeouts (which bound every other request): Start lifts them
// for this connection, and each write then gets WriteTimeout of its own.
func Start(w http.ResponseWriter) (*Stream, error) {
	if _, ok := w.(http.Flusher); !ok {
		return nil, errors.New("streaming not supported")
	}
	rc := http.NewResponseController(w)
	// Not supported only on writers that are no connection (tests).
	_ = rc.SetReadDeadline(time.Time{})
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	s := &Stream{w, rc}
	s.deadline()
	w.WriteHeader(http.StatusOK)
	return s, s.comment("connected")
}

func (s *Stream) deadline() { _ = s.rc.SetWriteDeadline(time.Now().Add(WriteTimeout)) }

// Send writes one event: kind (the SSE event name; "" for the default),
// id ("" for none) and v as JSON data.
func (s *Stream) Send(kind, id string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	s.deadline()
	if kind != "" {
		fmt.Fprintf(s.w, "event: %s\n", kind)
	}
	if id != "" {
		fmt.Fprintf(s.w, "id: %s\n", id)
	}
	if _, err = fmt.Fprintf(s.w, "data: %s\n\n", raw); err != nil {
		return err
	}
	return s.rc.Flush()
}

// Keepalive writes a comment line.
func (s *Stream) Keepalive() error { return s.comment("keepalive") }

func (s *Stream) comment(text string) error {
	s.deadline()
	if _, err := fmt.Fprintf(s.w, ": %s\n\n", text); err != nil {
		return err
	}
	return s.rc.Flush()
}

// Message is one event to send: Kind is the SSE event name ("" for the
// default), ID the event id ("" for none), Data sent as JSON.
type Message struct {
	Kind string
	ID   string
	Data any
}

// Serve is the one loop of every live stream: it starts the stream on w,
// sends what first yields (what the client missed, read from a record),
// then every message from the sources, and a keepalive comment whenever
// KeepaliveEvery passes, until r's context ends or a write fails. Each
// source is a channel and how to turn a value of it into a message (false
// skips the value); the subscriptions must be made before Serve is called,
// so that nothing falls between the record and the live stream.
func Serve(w http.ResponseWriter, r *http.Request, first func(send func(Message) error) error, sources ...Source) {
	st, err := Start(w)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if first != nil {
		if err := first(st.send); err != nil {
			return
		}
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	msgs := make(chan Message)
	for _, s := range sources {
		go s(ctx, msgs)
	}
	keepalive := time.NewTicker(KeepaliveEvery)
	defer keepalive.Stop()
	for err == nil {
		select {
		case <-ctx.Done():
			return
		case m := <-msgs:
			err = st.send(m)
		case <-keepalive.C:
			err = st.Keepalive()
		}
	}
}

func (s *Stream) send(m Message) error { return s.Send(m.Kind, m.ID, m.Data) }

// Source feeds a stream's messages until ctx ends; make one with From.
type Source func(ctx context.Context, out chan<- Message)

// From is the source of the values of in, each turned into a message by
// conv (false skips it). conv runs on one goroutine, in order.
func From[T any](in <-chan T, conv func(T) (Message, bool)) Source {
	return func(ctx context.Context, out chan<- Message) {
		for {
			select {
			case <-ctx.Done():
				return
			case v := <-in:
				m, ok := conv(v)
				if !ok {
					continue
				}
				select {
				case out <- m:
				case <-ctx.Done():
					return
				}
			}
		}
	}
}
