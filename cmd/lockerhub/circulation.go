// lockerhub circ list|retry|resolve: loans and returns for the library's system (docs/sip2.md).

package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lockerd/lockerd/sync/hub/circulation"
	"github.com/lockerd/lockerd/sync/sip2"
)

func cmdCircList(k *call) error {
	c, opt, out := k.c, k.f, k.out
	cs, err := c.Circulation(circulation.CircFilter{Locker: *opt.lockerID, State: *opt.state})
	if err != nil {
		return err
	}
	if *opt.asJSON {
		enc := json.NewEncoder(out)
		for _, r := range cs {
			enc.Encode(r)
		}
		return nil
	}
	// What a queued transaction waits for, when it waits: the library
	// system unreachable, or opt.its 98 SC Status refusing.
	st, err := c.ILSStatus()
	if err != nil {
		return err
	}
	switch {
	case !st.Bridge:
		fmt.Fprintln(out, "library system: no SIP2 bridge configured (sip2.address): nothing is sent")
	case st.Why != "" && !st.Since.IsZero():
		fmt.Fprintf(out, "library system: %s (since %s); %d transactions wait\n", st.Why, st.Since.Local().Format(time.DateTime), st.Waiting)
	case st.Why != "":
		fmt.Fprintf(out, "library system: %s; %d transactions wait\n", st.Why, st.Waiting)
	default:
		fmt.Fprintf(out, "library system: up, taking transactions; %d in the queue\n", st.Waiting)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tLOCKER\tKIND\tPATRON\tITEM\tEVENT TIME\tSTATE\tDUE\tALERT\tTRIES\tMESSAGE")
	for _, r := range cs {
		msg := r.Screen
		if (r.State == circulation.CircQueued || r.State == circulation.CircSending) && st.Why != "" && r.LastError == "" {
			msg = "waiting: " + st.Why
		}
		if r.LastError != "" && r.State != circulation.CircDone {
			msg = strings.TrimSpace(msg + " " + r.LastError)
		}
		if r.Note != "" {
			msg = strings.TrimSpace(msg + " [" + r.Note + "]")
		}
		due := r.Due
		if d, ok := sip2.ParseDate(r.Due, time.Local); ok {
			due = d.Local().Format(time.DateOnly)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", r.ID, r.Locker, r.Kind, r.Patron, r.Item,
			r.EventAt.Local().Format(time.DateTime), r.State, due, r.AlertType, r.Attempts, msg)
	}
	return tw.Flush()
}

func circRetryResolve(k *call) error {
	c, opt, pos, out := k.c, k.f, k.pos, k.out
	if len(pos) != 1 {
		return fmt.Errorf("want: %s ID", k.cmd)
	}
	id, err := strconv.ParseUint(pos[0], 10, 64)
	if err != nil {
		return fmt.Errorf("transaction id %q: want a number", pos[0])
	}
	var r circulation.CircRec
	if k.cmd == "circ retry" {
		r, err = c.RetryCirc(id)
	} else {
		r, err = c.ResolveCirc(id, *opt.note)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "transaction %d (%s of %s): %s\n", r.ID, r.Kind, r.Item, r.State)
	return nil
}
