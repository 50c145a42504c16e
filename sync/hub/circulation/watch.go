package circulation

import (
	"fmt"
	"sync"
	"time"

	"github.com/lockerd/lockerd/sync/hub/alarm"
)

// defaultILSAlarmAfter: a library system may restart, or drop a session,
// for a minute; longer, a person must know that loans are waiting.
const defaultILSAlarmAfter = 3 * time.Minute

// ilsWatch follows why the bridge cannot send (the leader's view): it
// logs when that starts and ends, and raises alarm.ILSUnavailable once it
// has lasted AlarmAfter. Only the circulation loop touches it; Status
// reads it.
type ilsWatch struct {
	mu     sync.Mutex
	why    string    // "" while the bridge can send
	since  time.Time // when why became non-empty
	raised bool      // the alarm is open
}

// ILSStatus is what the bridge knows of the library system now.
type ILSStatus struct {
	Bridge  bool      `json:"bridge"`         // a SIP2 bridge is configured
	Up      bool      `json:"up"`             // logged in and answering
	Why     string    `json:"why,omitempty"`  // why queued transactions wait, when they do
	Since   time.Time `json:"since,omitzero"` // since when
	Waiting int       `json:"waiting"`        // open transactions in the queue
}

// blockedWhy says why the bridge cannot send now: the session is down, or
// the ILS's flags refuse a kind of transaction that is waiting.
func (b *Bridge) blockedWhy(waitingCheckout, waitingCheckin bool) string {
	st := b.cfg.ILS.State()
	if !st.Up {
		why := "the library system is unreachable"
		if st.LastError != "" {
			why += ": " + st.LastError
		}
		if st.LoginRefusals > 0 && !st.Since.IsZero() {
			why += fmt.Sprintf(" (%d login refusals since start)", st.LoginRefusals)
		}
		return why
	}
	if waitingCheckout {
		if why := st.NotAccepting(true); why != "" {
			return "checkouts wait: " + why
		}
	}
	if waitingCheckin {
		if why := st.NotAccepting(false); why != "" {
			return "checkins wait: " + why
		}
	}
	return ""
}

// watchILS runs at each round of the circulation loop.
func (b *Bridge) watchILS(now time.Time) {
	var checkouts, checkins bool
	st := b.cfg.ILS.State()
	if st.Up && (st.NotAccepting(true) != "" || st.NotAccepting(false) != "") {
		// Which kinds wait (read only while a flag is off).
		if err := b.cfg.Store.View(func(tx Tx) error {
			open, err := tx.Circ.OpenCircs(1000)
			for _, c := range open {
				if c.State == CircQueued || c.State == CircSending {
					checkouts = checkouts || c.Kind == CircCheckout
					checkins = checkins || c.Kind == CircCheckin
				}
			}
			return err
		}); err != nil {
			return
		}
	}
	why := b.blockedWhy(checkouts, checkins)
	w := &b.ils
	w.mu.Lock()
	was, since, raised := w.why, w.since, w.raised
	switch {
	case why != "" && was == "":
		w.why, w.since = why, now
		since = now
	case why != "":
		w.why = why
	case was != "":
		w.why, w.since, w.raised = "", time.Time{}, false
	}
	raise := why != "" && !raised && now.Sub(since) >= b.ilsAlarmAfter()
	if raise {
		w.raised = true
	}
	w.mu.Unlock()

	switch {
	case why != "" && was == "":
		b.log.Warn("circulation waits: the library system takes no transactions now", "why", why)
	case why == "" && was != "":
		b.log.Info("circulation goes on: the library system takes transactions again", "after", now.Sub(since).Round(time.Second))
		if raised {
			if err := b.cfg.Store.Update(func(tx Tx) error {
				return alarm.Clear(tx.Alarms, "", alarm.ILSUnavailable, "", "the library system takes transactions again", now)
			}); err != nil {
				b.log.Warn("alarm not resolved", "err", err)
			}
		}
	}
	if raise {
		detail := fmt.Sprintf("since %s: %s; loans and returns wait in the queue (lockerhub circ list)", since.UTC().Format(time.RFC3339), why)
		if err := b.cfg.Store.Update(func(tx Tx) error { return b.raiseCentral(tx, alarm.ILSUnavailable, detail) }); err != nil {
			b.log.Warn("alarm not stored", "err", err)
			w.mu.Lock()
			w.raised = false // tried again next round
			w.mu.Unlock()
		}
	}
}

func (b *Bridge) ilsAlarmAfter() time.Duration {
	if d := b.cfg.AlarmAfter; d > 0 {
		return d
	}
	return defaultILSAlarmAfter
}

// Status says whether the bridge can send now and, when it cannot,
// why and since when.
func (b *Bridge) Status() (ILSStatus, error) {
	ils := b.cfg.ILS
	if ils == nil {
		return ILSStatus{}, nil
	}
	var n int
	if err := b.cfg.Store.View(func(tx Tx) error {
		open, err := tx.Circ.OpenCircs(0)
		for _, c := range open {
			if c.State == CircQueued || c.State == CircSending {
				n++
			}
		}
		return err
	}); err != nil {
		return ILSStatus{}, err
	}
	out := ILSStatus{Bridge: true, Up: ils.State().Up, Waiting: n}
	b.ils.mu.Lock()
	out.Why, out.Since = b.ils.why, b.ils.since
	b.ils.mu.Unlock()
	if out.Why == "" && !out.Up {
		// Not yet seen by the loop (a hub just started, or not leading).
		out.Why = b.blockedWhy(false, false)
	}
	return out, nil
}
