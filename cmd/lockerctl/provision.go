package main

// lockerctl provision: a blank cabinet (lockerd installed, no
// configuration yet) gets its identity from the hub with a one-time token.

import (
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"github.com/lockerd/lockerd/cmd/internal/cliflag"
	"github.com/lockerd/lockerd/cmd/internal/config"
	"github.com/lockerd/lockerd/cmd/internal/provisioning"
)

func provision(args []string, out, errw io.Writer) int {
	fs := flag.NewFlagSet("provision", flag.ContinueOnError)
	fs.SetOutput(errw)
	central := fs.String("central", "", "the hub: https://HOST:PORT (as lockerhub provision create printed it)")
	lockerID := fs.String("locker", "", "this cabinet's locker id, checked against the token's (optional: the token names it)")
	token := fs.String("token", "", "the one-time provisioning token (lhp_…)")
	uri := fs.String("uri", "", "instead of the three above: the text of the token's QR code (lockerd-provision:?…)")
	dir := fs.String("dir", filepath.Dir(config.DefaultPath), "where to write the configuration and its keys")
	caFile := fs.String("ca", "", "a CA (PEM) to verify the hub's HTTPS certificate with (default: the system's)")
	force := fs.Bool("force", false, "replace an existing configuration (a cabinet provisioned again)")
	owner := fs.String("owner", "lockerd", "run as root: the service user the secrets are given to (0600) and whose group reads the configuration (0640)")
	if _, err := cliflag.Parse(fs, args); err != nil {
		return 2
	}
	if _, err := provisioning.Run(provisioning.Args{Central: *central, Locker: *lockerID, Token: *token, URI: *uri, Dir: *dir, CA: *caFile, Force: *force, Owner: *owner}, out); err != nil {
		fmt.Fprintf(errw, "lockerctl provision: %v\n", err)
		return 1
	}
	return 0
}
