// lockerhub notices: what readers were told, and whether it went out.

package main

import (
	"fmt"
	"text/tabwriter"
	"time"
)

func cmdNoticesList(k *call) error {
	ns, err := k.c.Notices(*k.f.order, 0)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(k.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCREATED\tORDER\tLOCKER\tKIND\tCHANNEL\tTO\tSTATE\tATTEMPTS\tSENT\tERROR")
	for _, n := range ns {
		sent := ""
		if !n.Sent.IsZero() {
			sent = n.Sent.Local().Format(time.DateTime)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", n.ID, n.Created.Local().Format(time.DateTime), n.Order, n.Locker,
			n.Kind, n.Channel, n.To, n.State, n.Attempts, sent, n.Error)
	}
	return tw.Flush()
}
