// lockerhub order add|cancel, snapshot, open, orders, lockers, events: a locker's orders and what it reports.

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lockerd/lockerd/sync/hub"
	"github.com/lockerd/lockerd/sync/hub/notice"
	qrcode "github.com/skip2/go-qrcode"
)

func cmdOrderAdd(k *call) error {
	c, opt, out := k.c, k.f, k.out
	if err := k.needLocker(); err != nil {
		return err
	}
	created, err := c.CreateOrder(hub.NewOrder{Locker: *opt.lockerID, Patron: *opt.patron, Accessible: *opt.accessible, Delivery: *opt.delivery,
		Contact:    notice.Contact{Email: *opt.email, Phone: *opt.phone, Lang: *opt.lang},
		SameCodeAs: *opt.sameCode, Size: *opt.size, Compartment: *opt.comp, Items: wireItems(opt.its), TTL: *opt.ttl})
	if err != nil {
		return err
	}
	if created.Code == "" {
		fmt.Fprintf(out, "order %s for %s (rev %d), expires %s\npickup code: the same as order %s\n", created.Order.ID, *opt.lockerID,
			created.Order.Rev, created.Order.ExpiresAt.Local().Format(time.DateTime), *opt.sameCode)
		return nil
	}
	fmt.Fprintf(out, "order %s for %s (rev %d), expires %s\npickup code: %s\n", created.Order.ID, *opt.lockerID,
		created.Order.Rev, created.Order.ExpiresAt.Local().Format(time.DateTime), created.Code)
	if *opt.qr != "" {
		payload := created.Code
		if *opt.pickupURL != "" {
			payload = *opt.pickupURL + "?locker=" + url.QueryEscape(*opt.lockerID) + "&code=" + created.Code
		}
		if err := qrcode.WriteFile(payload, qrcode.Medium, 256, *opt.qr); err != nil {
			return fmt.Errorf("QR: %w", err)
		}
		fmt.Fprintf(out, "QR code written to %s\n", *opt.qr)
	}
	return nil
}

func cmdOrderCancel(k *call) error {
	c, opt, pos, out := k.c, k.f, k.pos, k.out
	if err := k.needLocker(); err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("want: order cancel --locker ID ORDER")
	}
	rev, err := c.CancelOrder(*opt.lockerID, pos[0])
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "cancel of %s sent (rev %v)\n", pos[0], rev)
	return nil
}

func cmdSnapshotCmd(k *call) error {
	c, opt, out := k.c, k.f, k.out
	if err := k.needLocker(); err != nil {
		return err
	}
	snapID, parts, err := c.Snapshot(*opt.lockerID, *opt.partSize)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "snapshot %v sent in %v parts\n", snapID, parts)
	return nil
}

func cmdOpenCmd(k *call) error {
	c, opt, pos, out := k.c, k.f, k.pos, k.out
	if err := k.needLocker(); err != nil {
		return err
	}
	if len(pos) != 1 || *opt.reason == "" {
		return errors.New("want: open --locker ID COMPARTMENT --reason TEXT")
	}
	cmdID, err := c.Open(*opt.lockerID, pos[0], *opt.reason)
	if err != nil {
		return err
	}
	return waitCommand(c, cmdID, "cmd.open", out)
}

func cmdOrdersList(k *call) error {
	c, opt, out := k.c, k.f, k.out
	if err := k.needLocker(); err != nil {
		return err
	}
	os, err := c.Orders(*opt.lockerID)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ORDER\tREV\tSTATUS\tSIZE\tCOMPARTMENTS\tEXPIRES")
	for _, o := range os {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", o.ID, o.Rev, o.Status, o.Size, strings.Join(o.Compartments, ","), o.ExpiresAt.Local().Format(time.DateTime))
	}
	return tw.Flush()
}

func cmdLockersList(k *call) error {
	c, out := k.c, k.out
	ls, err := c.Lockers()
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LOCKER\tONLINE\tBOOT\tSTORE\tORDERS_REV\tEVENTS\tACKED\tLAST SEEN")
	for _, l := range ls {
		fmt.Fprintf(tw, "%s\t%v\t%d\t%s\t%d\t%d\t%d\t%s\n", l.ID, l.Online, l.Boot, l.Store, l.OrdersRev, l.Events, l.Acked, l.LastSeen.Local().Format(time.DateTime))
	}
	return tw.Flush()
}

func cmdEventsList(k *call) error {
	c, opt, out := k.c, k.f, k.out
	if err := k.needLocker(); err != nil {
		return err
	}
	cur, err := hub.ParseCursor(*opt.after)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(out)
	for {
		evs, err := c.Events(*opt.lockerID, cur)
		if err != nil {
			return err
		}
		for _, e := range evs {
			enc.Encode(e)
			cur = hub.Cursor{Epoch: e.Epoch, Seq: e.Seq}
		}
		if !*opt.follow {
			return nil
		}
		if len(evs) == 0 {
			time.Sleep(300 * time.Millisecond)
		}
	}
}
