// lockerhub locker add, provision, config, release, rollout, badge: running the fleet (docs/fleet.md).

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lockerd/lockerd/sync/hub/fleet"
	"github.com/lockerd/lockerd/sync/hub/hubclient"
	"github.com/lockerd/lockerd/sync/protocol"
	qrcode "github.com/skip2/go-qrcode"
)

func cmdLockerAdd(k *call) error {
	c, pos, out := k.c, k.pos, k.out
	if len(pos) != 1 {
		return errors.New("want: locker add ID")
	}
	if err := c.AddLocker(pos[0]); err != nil {
		return err
	}
	fmt.Fprintf(out, "locker %s added: the hub serves it\n", pos[0])
	return nil
}

func cmdProvisionCreate(k *call) error {
	c, opt, out := k.c, k.f, k.out
	if err := k.needLocker(); err != nil {
		return err
	}
	if *opt.cfgPath == "" {
		return errors.New("want: provision create --locker ID --config FILE (the cabinet's wiring)")
	}
	raw, err := os.ReadFile(*opt.cfgPath)
	if err != nil {
		return err
	}
	provTTL := "" // the token's default (24h), unless --ttl was given
	k.fs.Visit(func(f *flag.Flag) {
		if f.Name == "ttl" {
			provTTL = *opt.ttl
		}
	})
	created, err := c.CreateProvisionToken(fleet.NewProvisionToken{Locker: *opt.lockerID, Config: string(raw), TTL: provTTL})
	if err != nil {
		return err
	}
	central := *opt.centralURL
	if central == "" {
		central = c.Scheme + "://" + c.Addr
	}
	payload := provisionURI(central, *opt.lockerID, created.Token)
	fmt.Fprintf(out, "provisioning token for %s (single use, expires %s):\n  %s\n\non the cabinet:\n  lockerctl provision --central %s --locker %s --token %s\n",
		*opt.lockerID, created.Record.Expires.Local().Format(time.DateTime), created.Token, central, *opt.lockerID, created.Token)
	code, err := qrcode.New(payload, qrcode.Medium)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nor scan this on the cabinet (lockerctl provision --uri):\n%s", code.ToSmallString(false))
	if *opt.qr != "" {
		if err := qrcode.WriteFile(payload, qrcode.Medium, 384, *opt.qr); err != nil {
			return err
		}
		fmt.Fprintf(out, "QR code written to %s\n", *opt.qr)
	}
	return nil
}

func cmdProvisionRevoke(k *call) error {
	c, opt, out := k.c, k.f, k.out
	if err := k.needLocker(); err != nil {
		return err
	}
	if *opt.reason == "" {
		return errors.New("want: provision revoke --locker ID --reason TEXT (stolen, scrapped, replaced...)")
	}
	cred, err := c.RevokeLocker(*opt.lockerID, *opt.reason)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "locker %s: broker credentials revoked at %s", cred.ID, cred.Revoked.Local().Format(time.DateTime))
	if cred.CertSerial != "" {
		fmt.Fprintf(out, "; certificate %s on the revocation list (reload the broker: systemctl reload mosquitto)", cred.CertSerial)
	}
	fmt.Fprintln(out)
	return nil
}

func cmdProvisionList(k *call) error {
	c, out := k.c, k.out
	toks, err := c.ProvisionTokens()
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOKEN\tLOCKER\tCREATED\tEXPIRES\tUSED\tFROM\tBY")
	for _, t := range toks {
		used := "-"
		if !t.UsedAt.IsZero() {
			used = t.UsedAt.Local().Format(time.DateTime)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Locker, t.Created.Local().Format(time.DateTime),
			t.Expires.Local().Format(time.DateTime), used, t.UsedFrom, t.By)
	}
	return tw.Flush()
}

func cmdConfigPush(k *call) error {
	c, opt, pos, out := k.c, k.f, k.pos, k.out
	if err := k.needLocker(); err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("want: config push --locker ID FILE")
	}
	raw, err := os.ReadFile(pos[0])
	if err != nil {
		return err
	}
	v, err := c.PushConfig(*opt.lockerID, raw)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "configuration %d sent to %s (sha256 %s…)\n", v.Version, *opt.lockerID, v.SHA256[:12])
	return waitCommand(c, v.CmdID, "cmd.config", out)
}

func cmdConfigRollback(k *call) error {
	c, opt, out := k.c, k.f, k.out
	if err := k.needLocker(); err != nil {
		return err
	}
	v, err := c.RollbackConfig(*opt.lockerID, uint64(*opt.toVersion))
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "configuration %d (%s) sent to %s\n", v.Version, v.Note, *opt.lockerID)
	return waitCommand(c, v.CmdID, "cmd.config", out)
}

func cmdConfigHistory(k *call) error {
	c, opt, out := k.c, k.f, k.out
	if err := k.needLocker(); err != nil {
		return err
	}
	hist, err := c.ConfigHistory(*opt.lockerID)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tPUSHED\tBY\tSTATE\tSHA256\tNOTE\tREASONS")
	for _, v := range hist {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", v.Version, v.Pushed.Local().Format(time.DateTime), v.By, v.State, v.SHA256[:12], v.Note, strings.Join(v.Reasons, "; "))
	}
	return tw.Flush()
}

func cmdReleaseAdd(k *call) error {
	c, opt, pos, out := k.c, k.f, k.pos, k.out
	if *opt.relVersion == "" || len(pos) == 0 {
		return errors.New("want: release add --version V FILE... (lockerd-linux-arm64, -armv7, -armv6, -amd64)")
	}
	for _, file := range pos {
		arch, err := archOf(file)
		if err != nil {
			return err
		}
		// Signed with the release key where it is kept (release
		// sign wrote FILE.manifest), or by the hub.
		manifest, err := os.ReadFile(file + ".manifest")
		switch {
		case errors.Is(err, os.ErrNotExist):
			manifest = nil
		case err != nil:
			return err
		case len(manifest) > fleet.MaxManifest:
			return fmt.Errorf("%s.manifest: over %d bytes: not a manifest", file, fleet.MaxManifest)
		case *opt.relRollback:
			return fmt.Errorf("%s.manifest: the rollback mark is in the signed manifest (release sign --rollback), not given here", file)
		}
		f, err := os.Open(file)
		if err != nil {
			return err
		}
		var m protocol.Manifest
		if manifest != nil {
			m, err = c.AddSignedArtifact(*opt.relVersion, arch, f, manifest)
		} else {
			m, err = c.AddArtifact(*opt.relVersion, arch, f, *opt.relRollback)
		}
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		by := "signed by the hub"
		if manifest != nil {
			by = "opt.its manifest signed with the release key"
		}
		fmt.Fprintf(out, "%s %s: %d bytes, sha256 %s, %s\n", m.Version, m.Arch, m.Size, m.SHA256, by)
	}
	return nil
}

func cmdReleaseList(k *call) error {
	c, out := k.c, k.out
	rels, err := c.Releases()
	if err != nil {
		return err
	}
	for _, r := range rels {
		var arches []string
		for a := range r.Artifacts {
			arches = append(arches, a)
		}
		slices.Sort(arches)
		fmt.Fprintf(out, "%s\t%s\t%s\trollback=%v\n", r.ID, r.Created.Local().Format(time.DateTime), strings.Join(arches, ","), r.Rollback)
	}
	return nil
}

func cmdRolloutStart(k *call) error {
	c, opt, pos, out := k.c, k.f, k.pos, k.out
	if len(pos) != 1 {
		return errors.New("want: rollout start VERSION [--lockers ID,...|--percent N]")
	}
	req := fleet.NewRollout{Version: pos[0], Percent: *opt.roPercent, MaxFailed: *opt.roMaxFailed}
	if *opt.roLockers != "" {
		req.Lockers = strings.Split(*opt.roLockers, ",")
	}
	if *opt.roStages != "" {
		for _, p := range strings.Split(*opt.roStages, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(p))
			if err != nil {
				return fmt.Errorf("--stages: %q is not a percentage", p)
			}
			req.Stages = append(req.Stages, n)
		}
	}
	ro, err := c.StartRollout(req)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "rollout of %s: %d stages %v; stage 1 sent\n", ro.Version, len(ro.Stages), ro.Stages)
	return nil
}

func cmdRolloutList(k *call) error {
	c, out := k.c, k.out
	ros, err := c.Rollouts()
	if err != nil {
		return err
	}
	for _, ro := range ros {
		fmt.Fprintf(out, "%s\t%s\tstage %d of %d\t%v\t%s\n", ro.Version, ro.State, ro.Stage+1, len(ro.Stages), ro.Results, ro.Note)
	}
	return nil
}

func badgeChange(k *call) error {
	c, opt, pos, out := k.c, k.f, k.pos, k.out
	if err := k.needLocker(); err != nil {
		return err
	}
	if *opt.name == "" {
		return fmt.Errorf("want: %s --locker ID --name NAME ...", k.cmd)
	}
	ch := hubclient.BadgeChange{Locker: *opt.lockerID}
	if k.cmd == "badge revoke" {
		ch.Revoke = []protocol.BadgeRef{{Name: *opt.name}}
	} else {
		if len(pos) != 1 {
			return errors.New("want: badge add --locker ID --name NAME --role ROLE CODE (or - to read the code from standard input)")
		}
		code := pos[0]
		if code == "-" {
			raw, err := io.ReadAll(io.LimitReader(os.Stdin, 256))
			if err != nil {
				return err
			}
			code = strings.TrimSpace(string(raw))
		}
		badgeRole := *opt.role
		if badgeRole == "viewer" { // the flag's default is for user add
			badgeRole = ""
		}
		ch.Add = []hubclient.BadgeAdd{{Name: *opt.name, Role: badgeRole, Code: code}}
	}
	cmdID, err := c.Badges(ch)
	if err != nil {
		return err
	}
	return waitCommand(c, cmdID, "cmd.badges", out)
}
