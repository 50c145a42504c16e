// Command lockerbench measures lockerd end to end, on this machine, each
// figure beside a baseline measured in the same run (BENCHMARKS.md):
//
//	lockerbench scan      scan-to-unlock over a pseudo-terminal scanner, 10k/100k/1M orders
//	lockerbench outbox    30,000 events replayed to Mosquitto until acked, vs a bare paho publisher
//	lockerbench footprint lockerd's RSS, start-up and idle CPU with 100k orders (-lockerd BIN)
//	lockerbench fleet     N simulated lockers against one broker and one lockerhub
//
// Every run is bounded in count and time and talks only to loopback.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: lockerbench scan|outbox|footprint|fleet|central [flags]")
		os.Exit(2)
	}
	if prof := os.Getenv("LOCKERBENCH_CPUPROFILE"); prof != "" {
		f, err := os.Create(prof)
		if err == nil {
			pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}
	var err error
	switch os.Args[1] {
	case "scan":
		err = benchScan(os.Args[2:])
	case "outbox":
		err = benchOutbox(os.Args[2:])
	case "footprint":
		err = benchFootprint(os.Args[2:])
	case "fleet":
		err = benchFleet(os.Args[2:])
	case "central":
		err = benchCentral(os.Args[2:])
	default:
		err = fmt.Errorf("unknown bench %q", os.Args[1])
	}
	if err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "lockerbench:", err)
		os.Exit(1)
	}
}

func ints(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// pct returns the p-th percentile (0..100) of ds.
func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(float64(len(s)-1) * p / 100)
	return s[i]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d)/float64(time.Millisecond)) }

func newFlags(name string) *flag.FlagSet { return flag.NewFlagSet(name, flag.ExitOnError) }
