package sse

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// flushes is a ResponseWriter that reports each flushed frame.
type flushes struct {
	*httptest.ResponseRecorder
	frames chan string
	sent   int
	fail   bool
}

func (f *flushes) Write(p []byte) (int, error) {
	if f.fail {
		return 0, errors.New("client gone")
	}
	return f.ResponseRecorder.Write(p)
}

func (f *flushes) Flush() {
	body := f.Body.String()
	f.frames <- body[f.sent:]
	f.sent = len(body)
}

// A stream sends the record first, then the live values in order (a
// value conv skips is not sent), with its headers; it ends with the
// request's context, and when a write fails.
func TestServe(t *testing.T) {
	w := &flushes{ResponseRecorder: httptest.NewRecorder(), frames: make(chan string, 16)}
	ctx, cancel := context.WithCancel(context.Background())
	r := httptest.NewRequest("GET", "/stream", nil).WithContext(ctx)
	live := make(chan int)
	first := func(send func(Message) error) error {
		return send(Message{ID: "1", Data: "from the record"})
	}
	conv := func(n int) (Message, bool) { return Message{Kind: "n", Data: n}, n%2 == 0 }
	done := make(chan struct{})
	go func() { Serve(w, r, first, From(live, conv)); close(done) }()

	want := []string{": connected\n\n", "id: 1\ndata: \"from the record\"\n\n", "event: n\ndata: 2\n\n", "event: n\ndata: 4\n\n"}
	for i, frame := range want {
		if i == 2 {
			live <- 1 // skipped
			live <- 2
		}
		if i == 3 {
			live <- 3
			live <- 4
		}
		if got := <-w.frames; got != frame {
			t.Fatalf("frame %d: %q, want %q", i, got, frame)
		}
	}
	if ct := w.Header().Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	cancel()
	<-done

	// A client that stops reading: the first failing write ends it.
	w = &flushes{ResponseRecorder: httptest.NewRecorder(), frames: make(chan string, 16), fail: true}
	Serve(w, httptest.NewRequest("GET", "/stream", nil), func(send func(Message) error) error {
		if err := send(Message{Data: 1}); err == nil {
			t.Error("a failing write reported no error")
		}
		return errors.New("stop")
	})
	if strings.Contains(w.Body.String(), "data") {
		t.Fatal("sent after a failed write")
	}
}

// Serve refuses a writer that cannot stream.
func TestServeNeedsFlusher(t *testing.T) {
	rec := httptest.NewRecorder()
	Serve(struct{ http.ResponseWriter }{rec}, httptest.NewRequest("GET", "/stream", nil), nil)
	if rec.Code != http.StatusInternalServerError || rec.Header().Get("Content-Type") == "text/event-stream" {
		t.Fatalf("a writer that cannot stream: %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
}
