package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/creack/pty"

	"github.com/lockerd/lockerd/cmd/internal/fleetsim"
	"github.com/lockerd/lockerd/drivers/serialscan"
	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/locker/lockertest"
)

// benchScan: from the last byte of a code written to a pseudo-terminal
// scanner until the sim's lock output is energised, with n orders stored.
// Baseline of the same run: the time for the line to reach lockerd's
// scanner driver (the "wire"); the figure is what lockerd adds to it.
func benchScan(args []string) error {
	fs := newFlags("scan")
	sizes := fs.String("orders", "10000,100000,1000000", "orders in the store")
	n := fs.Int("n", 1000, "scans per size")
	fs.Parse(args)
	ns, err := ints(*sizes)
	if err != nil {
		return err
	}
	fmt.Println("| orders in store | scans | wire p50 | wire p99 | added p50 | added p99 | one bbolt commit p50 | p99 | added − commit p50 |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	for _, size := range ns {
		if err := scanOnce(size, *n); err != nil {
			return err
		}
	}
	return nil
}

func scanOnce(size, n int) error {
	dir, err := os.MkdirTemp("", "lockerbench-scan")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	r, err := fleetsim.New(dir, "bench-01")
	if err != nil {
		return err
	}
	defer r.Close()
	if _, err := lockertest.FillOrders(r.Store, lockertest.Key, size, 0, time.Now().Add(72*time.Hour)); err != nil {
		return err
	}
	master, tty, err := pty.Open()
	if err != nil {
		return err
	}
	defer master.Close()
	port := tty.Name()
	tty.Close()

	lines := make(chan time.Time, 1)
	pulses := make(chan time.Time, 4)
	r.HW.OnPulse(func(lock string, at time.Time) {
		if lock == "L1" {
			pulses <- at
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	up := make(chan struct{}, 1)
	sc := &serialscan.Scanner{Name: "front", Port: port, Baud: 9600, Log: quiet,
		OnLine: func(line string) {
			lines <- time.Now()
			r.L.Scan(ctx, "front", line)
		},
		OnState: func(ok bool, _ error) {
			if ok {
				up <- struct{}{}
			}
		}}
	go sc.Run(ctx)
	<-up
	events, unsub := r.L.Subscribe()
	defer unsub()

	var wire, added, total []time.Duration
	var lastPulse time.Time
	for i := 0; i < n; i++ {
		var code string
		for try := 0; ; try++ { // S1 frees when its door has closed
			_, code, err = r.L.CreateOrder(locker.NewOrder{Compartment: "S1", TTL: time.Hour})
			if err == nil {
				break
			}
			if try > 500 {
				return fmt.Errorf("compartment never freed: %w", err)
			}
			select {
			case <-events:
			case <-time.After(5 * time.Millisecond):
			}
		}
		// Readers do not arrive 20 a second: let the previous pulse end, so
		// that the measurement is not the power-supply pulse limit queueing.
		time.Sleep(time.Until(lastPulse.Add(locker.MinLockPulse + 5*time.Millisecond)))
		t0 := time.Now()
		if _, err := master.Write([]byte(code + "\r")); err != nil {
			return err
		}
		var t1, t2 time.Time
		select {
		case t1 = <-lines:
		case <-time.After(5 * time.Second):
			return fmt.Errorf("scan %d: no line", i)
		}
		select {
		case t2 = <-pulses:
		case <-time.After(5 * time.Second):
			return fmt.Errorf("scan %d: no pulse", i)
		}
		lastPulse = t2
		wire = append(wire, t1.Sub(t0))
		added = append(added, t2.Sub(t1))
		total = append(total, t2.Sub(t0))
	}
	// Baseline of the same run: one small durable write to the same store,
	// the floor under "added" (fail-closed: the door is recorded before
	// the lock is pulsed).
	var commit []time.Duration
	for i := 0; i < n; i++ {
		t := time.Now()
		if err := r.Store.Update(func(tx locker.Tx) error { return tx.SetCounter("bench", uint64(i)) }); err != nil {
			return err
		}
		commit = append(commit, time.Since(t))
	}
	fmt.Printf("| %d | %d | %s | %s | %s | %s | %s | %s | %s |\n", size, n, ms(pct(wire, 50)), ms(pct(wire, 99)),
		ms(pct(added, 50)), ms(pct(added, 99)), ms(pct(commit, 50)), ms(pct(commit, 99)), ms(pct(added, 50)-pct(commit, 50)))
	_ = total
	return nil
}
