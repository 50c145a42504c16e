package httpapi

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"
)

// Bounds of every HTTP server here (lockerd's API and kiosk, lockerhub's
// API): a client gets this long to send its headers and its body, a reply
// this long to be written, an idle keep-alive connection this long before
// it is closed, and at most MaxConns connections are open at once. The
// event streams lift the read and write bounds for themselves (package
// sse) and bound each write instead.
const (
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 15 * time.Second
	// WriteTimeout covers the longest request: a pickup waits up to
	// policy.door_open_confirm (at most 30 s) for its doors.
	WriteTimeout   = 60 * time.Second
	IdleTimeout    = 60 * time.Second
	MaxHeaderBytes = 16 << 10
	MaxConns       = 64
)

// NewServer returns an http.Server with the bounds above; base, if not
// nil, is every request's parent context (so streams end with the daemon).
func NewServer(h http.Handler, base context.Context) *http.Server {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: ReadHeaderTimeout, ReadTimeout: ReadTimeout,
		WriteTimeout: WriteTimeout, IdleTimeout: IdleTimeout, MaxHeaderBytes: MaxHeaderBytes}
	if base != nil {
		srv.BaseContext = func(net.Listener) context.Context { return base }
	}
	return srv
}

// LimitListener accepts at most n connections at once; the next waits in
// the kernel's backlog until one closes. With the timeouts above, slow or
// idle clients cannot hold the server's connections (and file
// descriptors) for long, nor many of them at once.
func LimitListener(ln net.Listener, n int) net.Listener {
	return &limitListener{Listener: ln, slots: make(chan struct{}, n), done: make(chan struct{})}
}

type limitListener struct {
	net.Listener
	slots chan struct{}
	done  chan struct{}
	once  sync.Once
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.slots }}, nil
}

func (l *limitListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

type limitConn struct {
	net.Conn
	release func()
	once    sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// Recoverer answers 500 for a handler that panics and reports the panic
// to onPanic (lockerd: Locker.Fault, so /healthz turns red). net/http
// would only log it and close the connection, leaving /healthz green
// while, say, a damaged store panics every request.
func Recoverer(next http.Handler, onPanic func(where string, v any)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler { // net/http's own way to abort a reply: not a fault
				panic(v)
			}
			onPanic("HTTP handler "+r.Method+" "+r.URL.Path, v)
			reply(w, http.StatusInternalServerError, Error{Error: "internal error"})
		}()
		next.ServeHTTP(w, r)
	})
}
