// lockerhub alarms, alarm ack|resolve: what needs a person.

package main

import (
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/lockerd/lockerd/sync/hub/alarm"
)

func cmdAlarmsList(k *call) error {
	c, opt, out := k.c, k.f, k.out
	as, err := c.Alarms(*opt.state == "open")
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tFIRST SEEN\tLAST SEEN\tCOUNT\tLOCKER\tTYPE\tCOMPARTMENT\tSEVERITY\tSTATE\tDETAIL")
	for _, a := range as {
		st := a.State
		if st == "" {
			st = "open"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", a.Seq, a.At.Local().Format(time.DateTime), a.LastSeen.Local().Format(time.DateTime),
			max(a.Count, 1), a.Locker, a.Type, a.Compartment, a.Severity, st, a.Detail)
	}
	return tw.Flush()
}

func alarmAckResolve(k *call) error {
	c, opt, pos, out := k.c, k.f, k.pos, k.out
	if len(pos) != 1 {
		return fmt.Errorf("want: %s SEQ", k.cmd)
	}
	seq, err := strconv.ParseUint(pos[0], 10, 64)
	if err != nil {
		return fmt.Errorf("alarm %q: want opt.its number", pos[0])
	}
	var a alarm.Alarm
	if k.cmd == "alarm ack" {
		a, err = c.AckAlarm(seq)
	} else {
		a, err = c.ResolveAlarm(seq, *opt.note)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "alarm %d (%s at %s): %s\n", a.Seq, a.Type, a.Locker, a.State)
	return nil
}
