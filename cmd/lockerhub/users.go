// lockerhub token, user, users, audit: who may use the hub, and what they did.

package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

func cmdTokenCreate(k *call) error {
	c, opt, out := k.c, k.f, k.out
	secret, rec, err := c.CreateToken(*opt.name, strings.Split(*opt.scope, ","))
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "token %s (%s, scopes %s) — shown this once, the hub keeps only opt.its hash:\n%s\n", rec.ID, rec.Name, strings.Join(rec.Scopes, ","), secret)
	return nil
}

func cmdTokenList(k *call) error {
	c, out := k.c, k.out
	ts, err := c.Tokens()
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSCOPES\tCREATED\tBY\tREVOKED")
	for _, t := range ts {
		revoked := ""
		if !t.Revoked.IsZero() {
			revoked = t.Revoked.Local().Format(time.DateTime)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, strings.Join(t.Scopes, ","), t.Created.Local().Format(time.DateTime), t.CreatedBy, revoked)
	}
	return tw.Flush()
}

func cmdTokenRevoke(k *call) error {
	c, pos, out := k.c, k.pos, k.out
	if len(pos) != 1 {
		return errors.New("want: token revoke ID|NAME")
	}
	t, err := c.RevokeToken(pos[0])
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "token %s (%s) revoked\n", t.ID, t.Name)
	return nil
}

func cmdUserAdd(k *call) error {
	c, opt, out := k.c, k.f, k.out
	var raw []byte
	var err error
	if *opt.passwordFile != "" {
		raw, err = os.ReadFile(*opt.passwordFile)
	} else {
		raw, err = io.ReadAll(io.LimitReader(os.Stdin, 1024))
	}
	if err != nil {
		return fmt.Errorf("password: %w", err)
	}
	u, err := c.AddUser(*opt.name, *opt.role, strings.TrimRight(string(raw), "\r\n"))
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "user %s (%s) can sign in to the console\n", u.Name, u.Role)
	return nil
}

func cmdUserDisable(k *call) error {
	c, pos, out := k.c, k.pos, k.out
	if len(pos) != 1 {
		return errors.New("want: user disable NAME")
	}
	if err := c.DisableUser(pos[0]); err != nil {
		return err
	}
	fmt.Fprintf(out, "user %s disabled\n", pos[0])
	return nil
}

func cmdUsersList(k *call) error {
	c, out := k.c, k.out
	us, err := c.Users()
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tROLE\tCREATED\tDISABLED")
	for _, u := range us {
		dis := ""
		if !u.Disabled.IsZero() {
			dis = u.Disabled.Local().Format(time.DateTime)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", u.Name, u.Role, u.Created.Local().Format(time.DateTime), dis)
	}
	return tw.Flush()
}

func cmdAuditLog(k *call) error {
	c, out := k.c, k.out
	as, err := c.AuditLog()
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tAT\tWHO\tFROM\tACTION\tSTATUS\tDETAIL")
	for _, a := range as {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\n", a.Seq, a.At.Local().Format(time.DateTime), a.Who, a.From, a.Action, a.Status, a.Detail)
	}
	return tw.Flush()
}
