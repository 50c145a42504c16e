package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lockerd/lockerd/cmd/internal/backend"
	"github.com/lockerd/lockerd/cmd/internal/cliflag"
	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/locker/boltstore"
)

// selftestRow is one line of the self-test's table.
type selftestRow struct {
	what, lock, sensor, result, detail string
}

// selftest opens the cabinet's hardware directly (lockerd must be
// stopped: it holds the lines and ports) and, for every compartment in
// turn, pulses its lock, checks its sensor reports open within the
// confirm time, asks for the door to be closed and checks it reads
// closed; then reads the bin sensor and opens every scanner. With
// --dry-run nothing is pulsed: the wiring is resolved and every sensor
// and scanner read.
func selftest(cfgFile string, args []string, out, errw io.Writer) int {
	fs := flag.NewFlagSet("selftest", flag.ContinueOnError)
	fs.SetOutput(errw)
	dry := fs.Bool("dry-run", false, "check the wiring config and read sensors and scanners; pulse nothing")
	closeWait := fs.Duration("close-timeout", 60*time.Second, "how long to wait for each door to be closed")
	only := fs.String("only", "", "comma-separated compartments to test (default all)")
	if _, err := cliflag.Parse(fs, args); err != nil {
		return 2
	}
	if cfgFile == "" {
		fmt.Fprintln(errw, "lockerctl selftest: want -config FILE (the cabinet's lockerd config)")
		return 2
	}
	cfg, err := loadWiring(cfgFile)
	if err != nil {
		fmt.Fprintln(errw, err)
		return 2
	}
	// Two programs on one cabinet would fight over its lines and bus: as
	// root, even a serial port's exclusive open does not keep the second
	// out. A running lockerd holds its store's file lock.
	switch running, err := boltstore.InUse(cfg.StorePath()); {
	case err != nil:
		fmt.Fprintf(errw, "lockerctl selftest: cannot tell whether lockerd is running (%v); make sure it is stopped\n", err)
	case running:
		fmt.Fprintf(errw, "lockerctl selftest: lockerd is running on this cabinet (its store %s is open): stop it first: systemctl stop lockerd\n", cfg.StorePath())
		return 2
	}
	log := slog.New(slog.NewTextHandler(errw, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cab, err := backend.Open(cfg, log)
	if err != nil {
		fmt.Fprintf(errw, "lockerctl selftest: hardware: %v\n(is lockerd running? stop it first: systemctl stop lockerd)\n", err)
		return 1
	}
	defer cab.Close()
	// Lock boards are read by polling: give one that missed its first poll
	// the next ones before judging its doors (a silent board still fails
	// below, with its own reason).
	settle, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	if err := cab.Settle(settle); err != nil {
		fmt.Fprintf(errw, "lockerctl selftest: %v\n", err)
	}
	cancel()
	hw := cab.Hardware
	// The test reads levels with Read; drain the change stream so a driver
	// never waits on a full channel.
	go func() {
		for range hw.Inputs() {
		}
	}()
	confirm := cfg.Policy.DoorOpenConfirm.D()
	if confirm <= 0 {
		confirm = 3 * time.Second
	}

	type door struct{ id, lock, sensor string }
	var doors []door
	want := map[string]bool{}
	for _, id := range strings.Split(*only, ",") {
		if id != "" {
			want[id] = true
		}
	}
	for _, c := range cfg.Compartments {
		if len(want) == 0 || want[c.ID] {
			doors = append(doors, door{c.ID, c.Lock, c.Sensor})
		}
	}
	if r := cfg.Returns; r != nil && (len(want) == 0 || want[locker.ReturnSlotID]) {
		doors = append(doors, door{locker.ReturnSlotID, r.Lock, r.Sensor})
	}

	var rows []selftestRow
	failed := 0
	add := func(r selftestRow) {
		if r.result != "ok" && r.result != "skipped" {
			failed++
		}
		rows = append(rows, r)
	}
	for _, d := range doors {
		if *dry {
			add(dryDoor(hw, d.id, d.lock, d.sensor))
			continue
		}
		fmt.Fprintf(out, "%s: pulsing %s ... ", d.id, d.lock)
		r := testDoor(hw, d.id, d.lock, d.sensor, cfg.Hardware.LockPulse.D(), confirm, *closeWait, func() {
			fmt.Fprintf(out, "open. Close door %s now.\n", d.id)
		})
		if r.result != "ok" {
			fmt.Fprintf(out, "%s\n", r.detail)
		}
		add(r)
	}
	if r := cfg.Returns; r != nil && r.BinFullSensor != "" {
		full, err := hw.Read(r.BinFullSensor)
		switch {
		case err != nil:
			add(selftestRow{"return bin", "", r.BinFullSensor, "FAIL", err.Error()})
		case full:
			add(selftestRow{"return bin", "", r.BinFullSensor, "ok", "reads full: empty the bin if it is not"})
		default:
			add(selftestRow{"return bin", "", r.BinFullSensor, "ok", "reads not full"})
		}
	}
	for _, sc := range cfg.Scanners {
		s := backend.Scanner(sc)
		s.Log = log
		path, err := s.Probe()
		if err != nil {
			add(selftestRow{"scanner " + sc.Name, "", path, "FAIL", err.Error()})
		} else {
			add(selftestRow{"scanner " + sc.Name, "", path, "ok", sc.Type + ", opens"})
		}
	}

	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "COMPARTMENT\tLOCK\tSENSOR\tRESULT\tDETAIL")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.what, r.lock, r.sensor, r.result, r.detail)
	}
	tw.Flush()
	mode := "self-test"
	if *dry {
		mode = "dry run (nothing pulsed)"
	}
	if failed > 0 {
		fmt.Fprintf(out, "%s: %d of %d checks FAILED\n", mode, failed, len(rows))
		return 1
	}
	fmt.Fprintf(out, "%s: all %d checks passed\n", mode, len(rows))
	return 0
}

// dryDoor reads a door's sensor without pulsing its lock.
func dryDoor(hw locker.Hardware, id, lock, sensor string) selftestRow {
	if sensor == "" {
		return selftestRow{id, lock, "-", "ok", "no sensor"}
	}
	open, err := hw.Read(sensor)
	if err != nil {
		return selftestRow{id, lock, sensor, "FAIL", err.Error()}
	}
	if open {
		return selftestRow{id, lock, sensor, "ok", "reads open (close it, or check the sensor's active level)"}
	}
	return selftestRow{id, lock, sensor, "ok", "reads closed"}
}

var errSensorTimeout = errors.New("timeout")

// waitSensor polls a sensor until it reads want or d passes. It returns
// errSensorTimeout if the sensor read but never read want, or the last
// read's error if it could not be read (a board not answering).
func waitSensor(hw locker.Hardware, sensor string, want bool, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		v, err := hw.Read(sensor)
		if err == nil && v == want {
			return nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return err
			}
			return errSensorTimeout
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// testDoor pulses one lock and follows its sensor through open and closed.
func testDoor(hw locker.Hardware, id, lock, sensor string, pulse, confirm, closeWait time.Duration, askClose func()) selftestRow {
	row := selftestRow{id, lock, sensor, "FAIL", ""}
	if sensor == "" {
		row.sensor = "-"
	} else if err := waitSensor(hw, sensor, false, closeWait); err != nil {
		row.detail = sensorDetail(err, fmt.Sprintf("reads open before the test and was not closed within %v (sensor stuck open, or active level inverted?)", closeWait))
		return row
	}
	if err := hw.Pulse(lock, pulse); err != nil {
		row.detail = "pulse failed: " + err.Error()
		return row
	}
	if sensor == "" {
		row.result, row.detail = "ok", "pulsed (no sensor: check by eye)"
		return row
	}
	if err := waitSensor(hw, sensor, true, confirm); err != nil {
		row.detail = sensorDetail(err, fmt.Sprintf("no open seen within %v (lock, relay or sensor wiring)", confirm))
		return row
	}
	askClose()
	if err := waitSensor(hw, sensor, false, closeWait); err != nil {
		row.detail = sensorDetail(err, fmt.Sprintf("not closed within %v (sensor stuck open?)", closeWait))
		return row
	}
	row.result, row.detail = "ok", "opened and closed"
	return row
}

// sensorDetail is the table's detail for a failed wait: the read error if
// the sensor could not be read at all, else what the timeout means.
func sensorDetail(err error, timedOut string) string {
	if errors.Is(err, errSensorTimeout) {
		return timedOut
	}
	return "sensor unreadable: " + err.Error()
}
