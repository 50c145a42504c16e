package lockboard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"go.bug.st/serial"

	"github.com/lockerd/lockerd/drivers/pinname"
	"github.com/lockerd/lockerd/locker"
)

// Config is the bus and the channels the cabinet uses.
type Config struct {
	Port     string
	Protocol Protocol
	Baud     int // 0: the protocol's own
	// Echo says the adapter receives what it sends (half-duplex without
	// echo suppression): each frame sent is read back and dropped before
	// the reply is looked for. Unset, an echo is still found at the first
	// status poll a board answers (see echoProbe), and dropped after.
	Echo bool
	// ReplyTimeout bounds the wait for one reply (default 1.5 s); Quiet
	// is the gap kept after every exchange; Poll is how often every board
	// is asked for its status.
	ReplyTimeout, Quiet, Poll time.Duration
	Locks                     []string // B1/L5
	Sensors                   []string // B1/S5, B1/I5
	Log                       *slog.Logger
	// MinBackoff and MaxBackoff pace reopening a lost adapter.
	MinBackoff, MaxBackoff time.Duration
}

type channel struct {
	board, ch int
	fn        byte
}

type boardState struct {
	addr    int
	online  bool
	known   bool // a status has been read since the board (re)appeared
	faulted bool // a fault was raised and not yet cleared
	fails   int  // status polls failed in a row
	status  Status
	lastErr string
}

type unlockReq struct {
	board, ch int
	reply     chan error
}

// Hardware implements locker.Hardware on a bus of lock boards.
type Hardware struct {
	cfg     Config
	locks   map[string]channel
	sensors map[string]channel
	boards  []int

	mu         sync.Mutex
	state      map[int]*boardState
	busFaulted bool
	active     map[string]bool // last reported sensor levels
	// roundDone is closed (and replaced) at the end of each round of polls
	// and after each failed open of the adapter.
	roundDone chan struct{}

	unlocks chan unlockReq
	inputs  chan locker.InputChange
	faults  chan locker.HardwareFault
	cancel  context.CancelFunc
	done    chan struct{}
}

var (
	_ locker.Hardware      = (*Hardware)(nil)
	_ locker.FaultReporter = (*Hardware)(nil)
)

func parseChannel(name string, wantLock bool) (channel, error) {
	p, err := pinname.Parse(name)
	if err != nil {
		return channel{}, err
	}
	if p.Kind != pinname.Board {
		return channel{}, fmt.Errorf("%s is not a lock-board channel (B1/L5)", name)
	}
	if (p.Func == pinname.BoardLock) != wantLock {
		return channel{}, fmt.Errorf("%s: wrong function for this use", name)
	}
	return channel{board: p.Addr, ch: p.Index, fn: p.Func}, nil
}

// faultAfter is how many status polls in a row must fail before a board
// counts as not answering.
const faultAfter = 2

// New starts the bus. It returns at once: the adapter is opened (and
// reopened) in the background, and until a board answers its doors read
// as unknown.
func New(cfg Config) (*Hardware, error) {
	if cfg.Protocol == nil {
		return nil, errors.New("lockboard: no protocol")
	}
	if cfg.Baud == 0 {
		cfg.Baud = cfg.Protocol.Baud()
	}
	if cfg.ReplyTimeout <= 0 {
		cfg.ReplyTimeout = 1500 * time.Millisecond
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 500 * time.Millisecond
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 100 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 5 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	h := &Hardware{cfg: cfg, locks: map[string]channel{}, sensors: map[string]channel{}, state: map[int]*boardState{},
		active: map[string]bool{}, unlocks: make(chan unlockReq), inputs: make(chan locker.InputChange, 256),
		faults: make(chan locker.HardwareFault, 64), done: make(chan struct{}), roundDone: make(chan struct{})}
	add := func(c channel) {
		if h.state[c.board] == nil {
			h.state[c.board] = &boardState{addr: c.board}
			h.boards = append(h.boards, c.board)
		}
	}
	for _, n := range cfg.Locks {
		c, err := parseChannel(n, true)
		if err != nil {
			return nil, fmt.Errorf("lockboard: lock %w", err)
		}
		h.locks[n] = c
		add(c)
	}
	for _, n := range cfg.Sensors {
		c, err := parseChannel(n, false)
		if err != nil {
			return nil, fmt.Errorf("lockboard: sensor %w", err)
		}
		if c.fn == pinname.BoardItem && cfg.Protocol.Name() == "8a" {
			return nil, fmt.Errorf("lockboard: sensor %s: 8A/80 boards report no item sensor", n)
		}
		h.sensors[n] = c
		add(c)
	}
	sort.Ints(h.boards)
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	firstRound := h.roundDone
	go h.run(ctx)
	// Wait for the first round of answers, so doors read as known at
	// start when the boards are there; a bus that is not does not hold
	// up start-up beyond one round of timeouts.
	select {
	case <-firstRound:
	case <-time.After(time.Duration(len(h.boards)+1) * (cfg.ReplyTimeout + cfg.Quiet)):
	}
	return h, nil
}

// endRound wakes New (the first time) and WaitAnswered after a round of
// polls, or after a failed attempt to open the adapter.
func (h *Hardware) endRound() {
	h.mu.Lock()
	close(h.roundDone)
	h.roundDone = make(chan struct{})
	h.mu.Unlock()
}

// WaitAnswered waits until every board has answered a status poll, for at
// most rounds more rounds of polls (a failed open of the adapter counts as
// one), or until ctx ends. It returns nil once every board's doors can be
// read, else which boards are still silent. lockerctl selftest waits here
// so that a board that missed its first poll (line noise, a slow start)
// is not reported as dead; lockerd does not wait: it starts with those
// doors unknown.
func (h *Hardware) WaitAnswered(ctx context.Context, rounds int) error {
	for seen := 0; ; seen++ {
		h.mu.Lock()
		var silent []string
		for _, addr := range h.boards {
			if b := h.state[addr]; !b.online || !b.known {
				silent = append(silent, fmt.Sprintf("board %d", addr))
			}
		}
		next := h.roundDone
		h.mu.Unlock()
		if len(silent) == 0 {
			return nil
		}
		err := fmt.Errorf("lockboard: no answer from %s", strings.Join(silent, ", "))
		if seen >= rounds {
			return err
		}
		select {
		case <-next:
		case <-h.done: // closed: no more rounds
			return err
		case <-ctx.Done():
			return fmt.Errorf("%w (%w)", err, ctx.Err())
		}
	}
}

// LockAll implements locker.Hardware: a board's lock outputs rest locked
// by themselves (the board times its own pulse), so there is nothing to
// drive.
func (h *Hardware) LockAll() error { return nil }

// Pulse implements locker.Hardware: one unlock frame, never re-sent. The
// board times the pulse itself (within its own bound), so d is not used.
func (h *Hardware) Pulse(lock string, _ time.Duration) error {
	c, ok := h.locks[lock]
	if !ok {
		return fmt.Errorf("lockboard: no lock %q", lock)
	}
	req := unlockReq{board: c.board, ch: c.ch, reply: make(chan error, 1)}
	select {
	case h.unlocks <- req:
	case <-h.done:
		return errors.New("lockboard: closed")
	}
	select {
	case err := <-req.reply:
		return err
	case <-h.done:
		return errors.New("lockboard: closed")
	}
}

// Read implements locker.Hardware. A board that does not answer (or a bus
// without its adapter) reads as an error: the door is unknown.
func (h *Hardware) Read(pin string) (bool, error) {
	c, ok := h.sensors[pin]
	if !ok {
		return false, fmt.Errorf("lockboard: no sensor %q", pin)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	b := h.state[c.board]
	if !b.online || !b.known {
		return false, fmt.Errorf("lockboard: %s unknown: board %d not answering (%s)", pin, c.board, b.lastErr)
	}
	return level(b.status, c)
}

func level(s Status, c channel) (bool, error) {
	bitsOf := s.Hook
	if c.fn == pinname.BoardItem {
		bitsOf = s.Item
	}
	if c.ch > len(bitsOf) {
		return false, fmt.Errorf("board %d reports %d channels, no channel %d", c.board, len(bitsOf), c.ch)
	}
	return bitsOf[c.ch-1], nil
}

// Inputs implements locker.Hardware.
func (h *Hardware) Inputs() <-chan locker.InputChange { return h.inputs }

// Faults implements locker.FaultReporter.
func (h *Hardware) Faults() <-chan locker.HardwareFault { return h.faults }

// SetOutput implements locker.Hardware: lock boards have no signal outputs.
func (h *Hardware) SetOutput(pin string, on bool) error {
	return fmt.Errorf("lockboard: no output %q (lock boards drive locks only)", pin)
}

// Close stops the bus.
func (h *Hardware) Close() error {
	h.cancel()
	<-h.done
	return nil
}

// BoardOnline reports whether a board answered its last status query.
func (h *Hardware) BoardOnline(addr int) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	b := h.state[addr]
	return b != nil && b.online
}

func (h *Hardware) fault(device string, ok bool, detail string) {
	if ok {
		h.cfg.Log.Info("lock board answering", "device", device)
	} else {
		h.cfg.Log.Error("lock board fault", "device", device, "detail", detail)
	}
	select {
	case h.faults <- locker.HardwareFault{Device: device, OK: ok, Detail: detail, At: time.Now()}:
	default: // nobody listening; the log line stands
	}
}

// run owns the port: open, serve until it fails, reopen with back-off.
func (h *Hardware) run(ctx context.Context) {
	defer close(h.done)
	backoff := h.cfg.MinBackoff
	reported := false
	for ctx.Err() == nil {
		port, err := serial.Open(h.cfg.Port, &serial.Mode{BaudRate: h.cfg.Baud, DataBits: 8, Parity: serial.NoParity, StopBits: serial.OneStopBit})
		if err != nil {
			if !reported {
				h.busDown(err)
				reported = true
			}
			h.endRound()
			if !h.sleepServing(ctx, backoff, fmt.Errorf("lockboard: bus %s not available: %w", h.cfg.Port, err)) {
				return
			}
			backoff = min(backoff*2, h.cfg.MaxBackoff)
			continue
		}
		backoff, reported = h.cfg.MinBackoff, false
		h.cfg.Log.Info("lock-board bus open", "port", h.cfg.Port, "protocol", h.cfg.Protocol.Name(), "baud", h.cfg.Baud)
		err = h.serve(ctx, port)
		port.Close()
		if ctx.Err() != nil {
			return
		}
		h.busDown(err)
		reported = true
	}
}

// busDown marks every board unknown and raises one fault for the bus.
func (h *Hardware) busDown(err error) {
	h.mu.Lock()
	raise := !h.busFaulted
	h.busFaulted = true
	for _, b := range h.state {
		b.online, b.known, b.lastErr = false, false, "bus down"
	}
	h.mu.Unlock()
	if raise {
		h.fault("lockboard bus "+h.cfg.Port, false, err.Error())
	}
}

// sleepServing waits d while refusing unlocks with err (there is no bus to
// send them on). It returns false when ctx ends.
func (h *Hardware) sleepServing(ctx context.Context, d time.Duration, err error) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		case req := <-h.unlocks:
			req.reply <- err
		}
	}
}

// serve runs exchanges on an open port until it fails.
func (h *Hardware) serve(ctx context.Context, port serial.Port) error {
	if err := port.SetReadTimeout(20 * time.Millisecond); err != nil {
		return err
	}
	x := &exchanger{port: port, proto: h.cfg.Protocol, timeout: h.cfg.ReplyTimeout, quiet: h.cfg.Quiet, echo: h.cfg.Echo,
		onEcho: func() {
			h.cfg.Log.Warn("the lock-board adapter echoes what it sends: dropping echoes from now on; set hardware.lockboard.echo: true so this holds from the first frame",
				"port", h.cfg.Port)
		}}
	if len(h.boards) > 0 {
		x.probeAdapter(h.boards[0])
		if x.portErr != nil {
			return x.portErr
		}
	}
	if err := h.pollAll(x); err != nil {
		return err
	}
	h.mu.Lock()
	recovered := h.busFaulted
	h.busFaulted = false
	h.mu.Unlock()
	if recovered {
		h.fault("lockboard bus "+h.cfg.Port, true, "")
	}
	tick := time.NewTicker(h.cfg.Poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case req := <-h.unlocks:
			if err := h.serveUnlock(x, req); err != nil {
				return err
			}
		case <-tick.C:
			if err := h.pollAll(x); err != nil {
				return err
			}
		}
	}
}

// serveUnlock sends one unlock and answers its requester. It returns only
// port errors.
func (h *Hardware) serveUnlock(x *exchanger, req unlockReq) error {
	open, err := x.unlock(req.board, req.ch)
	switch {
	case errors.Is(err, errNoReply):
		err = fmt.Errorf("lockboard: board %d did not answer the unlock of channel %d within %v (not re-sent): %w", req.board, req.ch, h.cfg.ReplyTimeout, err)
	case errors.Is(err, errEcho):
		err = fmt.Errorf("lockboard: unlock of board %d channel %d (not re-sent): %w", req.board, req.ch, err)
	case err == nil && !open:
		h.cfg.Log.Warn("board reports the lock hook still engaged after unlock", "board", req.board, "channel", req.ch)
	}
	req.reply <- err
	if x.portErr != nil || err != nil {
		return x.portErr
	}
	// The door's opening is read at once, not after a round of other
	// (perhaps silent) boards: the core confirms it within
	// door_open_confirm.
	return h.pollBoard(x, req.board)
}

// pollAll asks every board for its status, reports changed sensors and
// boards that stop or start answering. A waiting unlock goes before each
// board's poll: a reader at the door does not wait behind a round of
// silent boards. It returns only port errors.
func (h *Hardware) pollAll(x *exchanger) error {
	defer h.endRound()
	for _, addr := range h.boards {
		select {
		case req := <-h.unlocks:
			if err := h.serveUnlock(x, req); err != nil {
				return err
			}
		default:
		}
		if err := h.pollBoard(x, addr); err != nil {
			return err
		}
	}
	return nil
}

// pollBoard asks one board for its status and records the answer (or its
// absence). It returns only port errors.
func (h *Hardware) pollBoard(x *exchanger, addr int) error {
	st, err := x.statusAll(addr)
	if x.portErr != nil {
		return x.portErr
	}
	if errors.Is(err, errAmbiguous) {
		// Neither an answer to trust nor a silent board: the doors keep
		// the state last read (unknown if none was).
		h.cfg.Log.Debug("lock board status not taken", "board", addr, "err", err)
		return nil
	}
	h.mu.Lock()
	b := h.state[addr]
	var raise, clear bool
	if err != nil {
		// One lost or corrupted reply is line noise; two in a row
		// (about a second at the default poll) is a board gone.
		b.fails++
		b.lastErr = err.Error()
		if b.fails >= faultAfter || !b.known {
			b.online, b.known = false, false
			raise, b.faulted = !b.faulted, true
		}
	} else {
		b.online, b.known, b.status, b.lastErr, b.fails = true, true, st, "", 0
		clear, b.faulted = b.faulted, false
	}
	h.mu.Unlock()
	device := fmt.Sprintf("lock board %d", addr)
	switch {
	case raise:
		h.fault(device, false, fmt.Sprintf("no valid status reply within %v: doors unknown (%v)", h.cfg.ReplyTimeout, err))
	case clear:
		h.fault(device, true, "")
	}
	if err == nil {
		h.report(addr, st)
	}
	return nil
}

// report sends a change for every sensor of board addr whose level moved.
func (h *Hardware) report(addr int, st Status) {
	var changes []locker.InputChange
	h.mu.Lock()
	for name, c := range h.sensors {
		if c.board != addr {
			continue
		}
		v, err := level(st, c)
		if err != nil {
			continue
		}
		// The first reading is reported too: the core may have started
		// with this door unknown, taken as closed.
		if old, seen := h.active[name]; !seen || old != v {
			h.active[name] = v
			changes = append(changes, locker.InputChange{Pin: name, Active: v, At: time.Now()})
		}
	}
	h.mu.Unlock()
	sort.Slice(changes, func(i, j int) bool { return changes[i].Pin < changes[j].Pin })
	for _, c := range changes {
		select {
		case h.inputs <- c:
		case <-h.done:
			return
		}
	}
}
