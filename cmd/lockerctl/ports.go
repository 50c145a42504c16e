package main

import (
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"text/tabwriter"

	"go.bug.st/serial/enumerator"
)

// ports lists what a scanner or lock-board adapter could be configured
// as: serial ports with their USB ids (for port: auto) and stable
// /dev/serial/by-id names, and keyboard-wedge devices under
// /dev/input/by-id (for type: hid).
func ports(out, errw io.Writer) int {
	list, err := enumerator.GetDetailedPortsList()
	if err != nil {
		fmt.Fprintf(errw, "lockerctl ports: %v\n", err)
		return 1
	}
	byID, _ := filepath.Glob("/dev/serial/by-id/*")
	kbd, _ := filepath.Glob("/dev/input/by-id/*-event-kbd")
	writePorts(out, list, byID, kbd, filepath.EvalSymlinks)
	return 0
}

func writePorts(out io.Writer, list []*enumerator.PortDetails, byID, kbd []string, resolve func(string) (string, error)) {
	links := map[string]string{}
	for _, l := range byID {
		if target, err := resolve(l); err == nil {
			links[target] = l
		}
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PORT\tUSB\tSERIAL\tPRODUCT\tSTABLE NAME")
	for _, p := range list {
		usb := "-"
		if p.IsUSB {
			usb = p.VID + ":" + p.PID
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.Name, usb, dash(p.SerialNumber), dash(p.Product), dash(links[p.Name]))
	}
	tw.Flush()
	if len(kbd) > 0 {
		fmt.Fprintln(out, "\nkeyboard-wedge devices (scanners: type: hid):")
		for _, k := range kbd {
			fmt.Fprintln(out, "  "+k)
		}
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
