// lockerhub webhooks list|add|remove|failed|redeliver: the library systems' subscriptions.

package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lockerd/lockerd/sync/hub/webhook"
)

func cmdWebhooksList(k *call) error {
	c, out := k.c, k.out
	ws, err := c.Webhooks()
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tURL\tEVENTS\tSOURCE\tREMOVED")
	for _, w := range ws {
		removed := ""
		if !w.Removed.IsZero() {
			removed = w.Removed.Local().Format(time.DateTime)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", w.ID, w.URL, strings.Join(w.Events, ","), w.Source, removed)
	}
	return tw.Flush()
}

func cmdWebhooksAdd(k *call) error {
	c, opt, out := k.c, k.f, k.out
	raw, err := os.ReadFile(*opt.hookSecret)
	if err != nil {
		return fmt.Errorf("--secret-file: %w", err)
	}
	w, err := c.AddWebhook(webhook.NewWebhook{URL: *opt.hookURL, Events: strings.Split(*opt.hookEvents, ","), Secret: strings.TrimSpace(string(raw))})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "webhook %s: %s gets %s\n", w.ID, w.URL, strings.Join(w.Events, ","))
	return nil
}

func cmdWebhooksRemove(k *call) error {
	c, pos, out := k.c, k.pos, k.out
	if len(pos) != 1 {
		return errors.New("want: webhooks remove ID")
	}
	if err := c.RemoveWebhook(pos[0]); err != nil {
		return err
	}
	fmt.Fprintf(out, "webhook %s removed: nothing more is sent to it\n", pos[0])
	return nil
}

func cmdWebhooksFailed(k *call) error {
	c, out := k.c, k.out
	ds, err := c.FailedDeliveries()
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tWEBHOOK\tEVENT\tTYPE\tCREATED\tATTEMPTS\tERROR")
	for _, d := range ds {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\n", d.ID, d.Webhook, d.EventID, d.Type, d.Created.Local().Format(time.DateTime), d.Attempts, d.Error)
	}
	return tw.Flush()
}

func cmdWebhooksRedeliver(k *call) error {
	c, pos, out := k.c, k.pos, k.out
	if len(pos) != 1 {
		return errors.New("want: webhooks redeliver ID")
	}
	id, err := strconv.ParseUint(pos[0], 10, 64)
	if err != nil {
		return fmt.Errorf("delivery %q: want opt.its number", pos[0])
	}
	d, err := c.Redeliver(id)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "delivery %d (%s) queued again\n", d.ID, d.EventID)
	return nil
}
