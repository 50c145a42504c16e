package locker

import (
	"context"
	"time"
)

// Feedback patterns for the optional buzzer and status LED: alternating
// on/off durations, starting with on. Each is distinct by ear and by eye.
var (
	PatternAccepted = Pattern{Buzzer: []time.Duration{120 * time.Millisecond}, LED: []time.Duration{2 * time.Second}}
	PatternRefused  = Pattern{Buzzer: ms(100, 100, 100, 100, 100), LED: ms(200, 200, 200, 200, 200)}
	PatternLeftOpen = Pattern{Buzzer: ms(600, 300, 600, 300, 600), LED: ms(300, 300, 300, 300, 300, 300, 300)}
)

// Pattern is what the buzzer and the LED do for one kind of outcome.
type Pattern struct {
	Buzzer, LED []time.Duration
}

func ms(v ...int) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, n := range v {
		out[i] = time.Duration(n) * time.Millisecond
	}
	return out
}

// patternFor maps an event to its feedback, if any.
func patternFor(e Event) (Pattern, bool) {
	switch e.Type {
	case EvPickupCompleted, EvItemReturned:
		return PatternAccepted, true
	case EvPickupDenied, EvReturnRefused:
		return PatternRefused, true
	case EvDoorLeftOpen, EvDoorForced:
		return PatternLeftOpen, true
	}
	return Pattern{}, false
}

// runFeedback plays a pattern for each event that has one; a new pattern
// cuts the one playing.
func (l *Locker) runFeedback(ctx context.Context) {
	if l.set.Buzzer == "" && l.set.StatusLED == "" {
		return
	}
	events, unsubscribe := l.Subscribe()
	defer unsubscribe()
	stop := func() {}
	defer func() { stop(); l.outputsOff() }()
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-events:
			if p, ok := patternFor(e); ok {
				stop()
				stop = l.startPattern(ctx, p)
			}
		}
	}
}

// startPattern plays p in the background; the returned function stops it
// and waits until it has stopped.
func (l *Locker) startPattern(ctx context.Context, p Pattern) func() {
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.play(pctx, p)
	}()
	return func() { cancel(); <-done }
}

func (l *Locker) outputsOff() {
	for _, pin := range []string{l.set.Buzzer, l.set.StatusLED} {
		if pin != "" {
			if err := l.hw.SetOutput(pin, false); err != nil {
				l.log.Warn("signal output", "pin", pin, "err", err)
			}
		}
	}
}

// play runs the buzzer and LED sequences side by side, then leaves both off.
func (l *Locker) play(ctx context.Context, p Pattern) {
	defer l.outputsOff()
	seq := func(pin string, steps []time.Duration, done chan<- struct{}) {
		defer close(done)
		if pin == "" {
			return
		}
		for i, d := range steps {
			if err := l.hw.SetOutput(pin, i%2 == 0); err != nil {
				l.log.Warn("signal output", "pin", pin, "err", err)
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-l.clock.After(d):
			}
		}
	}
	b, d := make(chan struct{}), make(chan struct{})
	go seq(l.set.Buzzer, p.Buzzer, b)
	go seq(l.set.StatusLED, p.LED, d)
	<-b
	<-d
}
