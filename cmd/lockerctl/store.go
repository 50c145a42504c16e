package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/lockerd/lockerd/cmd/internal/cliflag"
	"github.com/lockerd/lockerd/cmd/internal/config"
	"github.com/lockerd/lockerd/locker/boltstore"
)

// storeCmd is `lockerctl store check [FILE]` and `lockerctl store recover
// [--from DAMAGED] [--to FILE]`, with lockerd stopped. FILE defaults to
// store.path of -config (or of the installed config).
func storeCmd(cfgFile string, args []string, out, errw io.Writer) int {
	if len(args) == 0 || args[0] != "check" && args[0] != "recover" {
		fmt.Fprintln(errw, "lockerctl store: want check [FILE] or recover [--from DAMAGED] [--to FILE]")
		return 2
	}
	sub := args[0]
	fs := flag.NewFlagSet("store "+sub, flag.ContinueOnError)
	fs.SetOutput(errw)
	from := fs.String("from", "", "recover: the damaged store (default: the newest moved aside beside the store)")
	to := fs.String("to", "", "recover: the new store (default: store.path)")
	pos, err := cliflag.Parse(fs, args[1:])
	if err != nil {
		return 2
	}
	storePath := ""
	if len(pos) == 1 {
		storePath = pos[0]
	} else if f := cfgOr(cfgFile); f != "" {
		raw, err := os.ReadFile(f)
		if err == nil {
			var cfg *config.Config
			if cfg, err = config.Parse(f, raw, false); err == nil {
				storePath = cfg.StorePath()
			}
		}
		if err != nil {
			fmt.Fprintf(errw, "lockerctl store: %v\n", err)
			return 2
		}
	}
	if storePath == "" && (sub == "check" || *to == "") {
		fmt.Fprintln(errw, "lockerctl store: which store? give FILE or -config FILE")
		return 2
	}
	if sub == "check" {
		return storeCheck(storePath, out, errw)
	}
	if *to == "" {
		*to = storePath
	}
	if *from == "" {
		aside, ok := boltstore.PendingDamaged(*to)
		if !ok {
			fmt.Fprintf(errw, "lockerctl store recover: no damaged store moved aside beside %s; give --from FILE\n", *to)
			return 2
		}
		*from = aside
	}
	return storeRecover(*from, *to, out, errw)
}

func cfgOr(cfgFile string) string {
	if cfgFile != "" {
		return cfgFile
	}
	if _, err := os.Stat(config.DefaultPath); err == nil {
		return config.DefaultPath
	}
	return ""
}

func storeCheck(path string, out, errw io.Writer) int {
	if _, err := os.Stat(path); err != nil {
		fmt.Fprintf(errw, "lockerctl store check: %v\n", err)
		return 2
	}
	if busy, err := boltstore.InUse(path); err == nil && busy {
		fmt.Fprintf(errw, "lockerctl store check: lockerd is running on %s (it checks its store itself at every start); stop it first: systemctl stop lockerd\n", path)
		return 2
	}
	t0 := time.Now()
	err := boltstore.Check(context.Background(), path, 10*time.Minute)
	switch {
	case err == nil:
		fmt.Fprintf(out, "store %s: ok (checked in %v)\n", path, time.Since(t0).Round(time.Millisecond))
		return 0
	case errors.Is(err, boltstore.ErrDamaged):
		fmt.Fprintf(out, "%v\nrecover what can be read with: lockerctl store recover --from %s --to NEWFILE\n", err, path)
		return 1
	default:
		fmt.Fprintf(errw, "lockerctl store check: %v\n", err)
		return 2
	}
}

func storeRecover(from, to string, out, errw io.Writer) int {
	if busy, err := boltstore.InUse(to); err == nil && busy {
		fmt.Fprintf(errw, "lockerctl store recover: lockerd is running on %s; stop it first: systemctl stop lockerd\n", to)
		return 2
	}
	rep, err := boltstore.Recover(from, to)
	if err != nil {
		fmt.Fprintf(errw, "lockerctl store recover: %v\n", err)
		return 1
	}
	fmt.Fprintf(out, "recovered %s into %s (new store identity %s):\n  orders: %d\n  unsent events: %d (last seq %d)\n  other records: %d\n",
		rep.From, rep.To, rep.StoreID, rep.Orders, rep.Events, rep.LastSeq, rep.Other)
	for _, l := range rep.Lost {
		fmt.Fprintf(out, "  not readable: %s\n", l)
	}
	// The damaged file stays, marked as dealt with: lockerd starts on the
	// new store.
	if err := os.Rename(from, from+boltstore.RecoveredSuffix); err != nil {
		fmt.Fprintf(errw, "lockerctl store recover: %v\n", err)
		return 1
	}
	fmt.Fprintf(out, "the damaged file is kept as %s%s; start lockerd: systemctl start lockerd\n", from, boltstore.RecoveredSuffix)
	return 0
}
