package main

import (
	"time"

	"golang.org/x/sys/unix"
)

// minPlausible is a date the locker's clock cannot really be before: a Pi
// without an RTC that boots at 1970 is caught by it.
var minPlausible = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// clockSynced asks the kernel whether NTP has synchronised the clock
// (adjtimex: STA_UNSYNC clear and no TIME_ERROR state).
func clockSynced() bool {
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	return err == nil && state != unix.TIME_ERROR && tx.Status&unix.STA_UNSYNC == 0
}
