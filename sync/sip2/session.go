package sip2

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/text/encoding"
)

// Config of a Session: what lockerhub's sip2 section gives.
type Config struct {
	Address          string      // host:port
	TLS              *tls.Config // nil: plain TCP (stunnel in front of some ILSs)
	User, Password   string      // 93 CN, CO
	Location         string      // 93 CP: the self-service device's location
	Institution      string      // AO
	TerminalPassword string      // AC (optional)
	ErrorDetection   bool        // send AY/AZ
	VerifyChecksums  bool        // refuse replies whose AZ is wrong
	// IgnoreStatusFlags sends checkouts and checkins whatever the ILS's
	// 98 SC Status says of them (on-line status, checkin ok, checkout
	// ok): for an ILS whose 98 is wrong (sip2.ignore_status_flags).
	IgnoreStatusFlags bool
	Encoding          encoding.Encoding
	// Timeout bounds each reply (the ACS's own timeout period in its 98
	// takes its place when shorter); Heartbeat spaces 99 SC Status.
	Timeout, Heartbeat time.Duration
	// OnLoginRefused is called each time the ILS refuses the login (a
	// wrong user or password): the caller raises an alarm.
	OnLoginRefused func()
	Log            *slog.Logger
}

// Errors of a Session's transactions.
var (
	// ErrUnavailable: no session with the ILS now (down, connecting, or
	// it says it is offline). The transaction was not sent.
	ErrUnavailable = errors.New("sip2: the ILS is not reachable")
	// ErrNotAllowed: the ILS says (98) it takes no checkouts, or no
	// checkins, now. Not sent.
	ErrNotAllowed = errors.New("sip2: the ILS does not take this transaction now")
	// ErrNoReply: the request was written, and the connection failed or
	// the timeout passed before a reply: whether the ILS acted on it is
	// unknown.
	ErrNoReply = errors.New("sip2: no reply from the ILS")
)

// State is what the session knows of the ILS.
type State struct {
	Up          bool // logged in and answering
	Online      bool // 98: on-line status
	CheckinOK   bool
	CheckoutOK  bool
	Retries     int           // 98: retries allowed (97 resends of a reply with a bad checksum)
	Timeout     time.Duration // the reply timeout in force
	Institution string        // 98 AO
	// FlagsIgnored: Config.IgnoreStatusFlags (NotAccepting says nothing).
	FlagsIgnored bool
	LastError    string
	Since        time.Time // when Up last changed
	// Counters, since start.
	Connects, LoginRefusals, Resends uint64
}

// NotAccepting says why, by its last 98 SC Status, the ILS takes no
// checkout (or checkin) now, naming the flags: "" when it does, when the
// session is not up (ErrUnavailable says that), or when the flags are
// ignored (Config.IgnoreStatusFlags).
func (st State) NotAccepting(checkout bool) string {
	if !st.Up || st.FlagsIgnored {
		return ""
	}
	var off []string
	if !st.Online {
		off = append(off, "on-line status N")
	}
	if checkout && !st.CheckoutOK {
		off = append(off, "checkout ok N")
	}
	if !checkout && !st.CheckinOK {
		off = append(off, "checkin ok N")
	}
	if len(off) == 0 {
		return ""
	}
	return "the ILS's SC Status (98) says " + strings.Join(off, ", ") + " (for an ILS whose 98 is wrong: sip2.ignore_status_flags: true)"
}

// Session is one SIP2 session with an ILS, kept up by Run: login (93),
// status (99) at start and every heartbeat, reconnect with back-off on
// any failure. One goroutine owns the connection; Do hands it requests.
type Session struct {
	cfg  Config
	log  *slog.Logger
	reqs chan request

	mu    sync.Mutex
	state State
	up    atomic.Bool
}

type request struct {
	ctx   context.Context
	m     Message
	reply chan result
}

type result struct {
	m   Message
	err error
}

// NewSession makes a session; Run connects it.
func NewSession(cfg Config) *Session {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 60 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Session{cfg: cfg, log: cfg.Log.With("component", "sip2", "ils", cfg.Address), reqs: make(chan request),
		state: State{Retries: 3, Timeout: cfg.Timeout}}
}

// State returns what the session knows of the ILS now.
func (s *Session) State() State { s.mu.Lock(); defer s.mu.Unlock(); return s.state }

func (s *Session) setState(f func(*State)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	was := s.state.Up
	f(&s.state)
	if s.state.Up != was {
		s.state.Since = time.Now()
	}
	s.up.Store(s.state.Up)
}

// Back-off between connection attempts: from minBackoff doubling to
// maxBackoff, with jitter so that replicas and restarts spread out.
const (
	minBackoff = 500 * time.Millisecond
	maxBackoff = 30 * time.Second
)

// Run keeps the session up until ctx ends.
func (s *Session) Run(ctx context.Context) error {
	backoff := minBackoff
	for ctx.Err() == nil {
		err := s.serve(ctx)
		s.setState(func(st *State) {
			st.Up = false
			if err != nil {
				st.LastError = err.Error()
			}
		})
		if ctx.Err() != nil {
			break
		}
		if errors.Is(err, errServed) {
			backoff = minBackoff // it worked for a while: come back soon
		}
		s.log.Warn("ILS session down; reconnecting", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
		case <-time.After(backoff/2 + rand.N(backoff/2+1)):
		}
		backoff = min(backoff*2, maxBackoff)
	}
	return nil
}

// errServed wraps the error that ended a session that had been up.
var errServed = errors.New("session ended")

// conn is one connection: the reader bounded to a message, and the
// sequence number of the next request.
type conn struct {
	c   net.Conn
	r   *bufio.Reader
	seq int
}

func (s *Session) dial(ctx context.Context) (*conn, error) {
	d := net.Dialer{Timeout: s.cfg.Timeout, KeepAlive: 30 * time.Second}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	var c net.Conn
	var err error
	if s.cfg.TLS != nil {
		td := tls.Dialer{NetDialer: &d, Config: s.cfg.TLS}
		c, err = td.DialContext(ctx, "tcp", s.cfg.Address)
	} else {
		c, err = d.DialContext(ctx, "tcp", s.cfg.Address)
	}
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	return &conn{c: c, r: bufio.NewReaderSize(c, MaxMessage+2)}, nil
}

// serve connects, logs in, and serves requests until something fails.
func (s *Session) serve(ctx context.Context) error {
	cn, err := s.dial(ctx)
	if err != nil {
		return err
	}
	defer cn.c.Close()
	stop := context.AfterFunc(ctx, func() { cn.c.Close() })
	defer stop()
	s.setState(func(st *State) { st.Connects++ })

	login := Message{Code: "93", Fixed: "00", Fields: []Field{{"CN", s.cfg.User}, {"CO", s.cfg.Password}, {"CP", s.cfg.Location}}}
	reply, err := s.exchange(cn, login, "94")
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	if reply.Fixed != "1" {
		s.setState(func(st *State) { st.LoginRefusals++ })
		s.log.Error("the ILS refused the login: check sip2.user and sip2.password_file (and the ILS's SIP2 account and its allowed address)", "user", s.cfg.User)
		if s.cfg.OnLoginRefused != nil {
			s.cfg.OnLoginRefused()
		}
		return fmt.Errorf("login refused by the ILS for user %q", s.cfg.User)
	}
	if err := s.status(cn); err != nil {
		return err
	}
	s.log.Info("ILS session up", "online", s.State().Online)
	beat := time.NewTicker(s.cfg.Heartbeat)
	defer beat.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-beat.C:
			if err := s.status(cn); err != nil {
				return fmt.Errorf("%w: status: %w", errServed, err)
			}
		case req := <-s.reqs:
			if req.ctx.Err() != nil {
				req.reply <- result{err: ErrUnavailable}
				continue
			}
			m, err := s.exchange(cn, req.m, replyCode[req.m.Code])
			if err != nil {
				// Down before the caller hears of it: whoever acts on the
				// error sees a session that is not up.
				s.setState(func(st *State) { st.Up, st.LastError = false, err.Error() })
			}
			req.reply <- result{m, err}
			if err != nil {
				return fmt.Errorf("%w: %w", errServed, err)
			}
		}
	}
}

// replyCode is the reply each request expects.
var replyCode = map[string]string{"93": "94", "99": "98", "11": "12", "09": "10", "17": "18", "23": "24", "63": "64"}

// status sends 99 SC Status and takes in the 98.
func (s *Session) status(cn *conn) error {
	m, err := s.exchange(cn, Message{Code: "99", Fixed: "0" + "080" + "2.00"}, "98")
	if err != nil {
		return err
	}
	f := m.Fixed
	s.setState(func(st *State) {
		st.Up = true
		st.Online, st.CheckinOK, st.CheckoutOK = f[0] == 'Y', f[1] == 'Y', f[2] == 'Y'
		st.Timeout = s.cfg.Timeout
		if n, err := strconv.Atoi(f[6:9]); err == nil && n > 0 && n < 999 {
			st.Timeout = min(max(time.Duration(n)*100*time.Millisecond, time.Second), s.cfg.Timeout)
		}
		st.Retries = 3
		if n, err := strconv.Atoi(f[9:12]); err == nil && n < 999 {
			st.Retries = n
		}
		st.Institution, _ = m.Get("AO")
		st.FlagsIgnored = s.cfg.IgnoreStatusFlags
		st.LastError = ""
	})
	return nil
}

// exchange writes m and reads its reply: a reply whose checksum is wrong
// is asked for again (97) up to the retries the ACS allows; a 96 (the
// ACS asks for the request again) gets it again; a reply with another
// sequence number (a late answer to an earlier request) is skipped. Any
// failure breaks the connection: the caller closes it.
func (s *Session) exchange(cn *conn, m Message, want string) (Message, error) {
	st := s.State()
	seq := cn.seq
	cn.seq = (cn.seq + 1) % 10
	out, err := Marshal(m, seq, s.cfg.ErrorDetection, s.cfg.Encoding)
	if err != nil {
		return Message{}, err
	}
	deadline := time.Now().Add(st.Timeout)
	cn.c.SetDeadline(deadline)
	if _, err := cn.c.Write(out); err != nil {
		return Message{}, fmt.Errorf("%w: %w", ErrNoReply, err)
	}
	retries := 0
	for {
		raw, err := cn.r.ReadSlice('\r')
		if err != nil {
			return Message{}, fmt.Errorf("%w: %w", ErrNoReply, err)
		}
		reply, err := Unmarshal(raw, s.cfg.VerifyChecksums, s.cfg.Encoding)
		again := []byte(nil)
		switch {
		case errors.Is(err, ErrChecksum):
			again = resendRequest(s.cfg.ErrorDetection)
		case err == nil && reply.Code == "96":
			again = out
		case err != nil:
			return Message{}, fmt.Errorf("%w: reply: %w", ErrNoReply, err)
		case s.cfg.ErrorDetection && reply.HasSeq && reply.Seq != seq:
			continue // a late reply to an earlier request
		case reply.Code != want:
			return Message{}, fmt.Errorf("%w: reply %s to %s, want %s", ErrNoReply, reply.Code, m.Code, want)
		default:
			if len(reply.Fixed) == 0 && fixedLen[reply.Code] > 0 {
				return Message{}, fmt.Errorf("%w: reply %s without its fixed part", ErrNoReply, reply.Code)
			}
			return reply, nil
		}
		if retries >= st.Retries {
			hint := ""
			if errors.Is(err, ErrChecksum) {
				// An ILS that computes its checksums otherwise (seen: over
				// another character set) fails every reply this way.
				hint = " (an ILS whose checksums are computed otherwise than the standard's: set sip2.verify_checksums: false)"
			}
			return Message{}, fmt.Errorf("%w: reply still unreadable after %d resends: %v%s", ErrNoReply, retries, err, hint)
		}
		retries++
		s.setState(func(st *State) { st.Resends++ })
		if _, err := cn.c.Write(again); err != nil {
			return Message{}, fmt.Errorf("%w: %w", ErrNoReply, err)
		}
	}
}

// resendRequest is 97 Request ACS Resend: with error detection it has a
// checksum and no sequence number (the standard's own example).
func resendRequest(errorDetection bool) []byte {
	if errorDetection {
		return []byte("97AZ" + Checksum("97AZ") + "\r")
	}
	return []byte("97\r")
}

// Do sends one request and returns its reply. It does not wait for a
// session: with none up it returns ErrUnavailable at once (the caller's
// queue keeps the transaction).
func (s *Session) Do(ctx context.Context, m Message) (Message, error) {
	if !s.up.Load() {
		return Message{}, ErrUnavailable
	}
	req := request{ctx: ctx, m: m, reply: make(chan result, 1)}
	select {
	case s.reqs <- req:
	case <-ctx.Done():
		return Message{}, ErrUnavailable
	}
	r := <-req.reply
	return r.m, r.err
}
