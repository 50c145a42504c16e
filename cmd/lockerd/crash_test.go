package main

import (
	"fmt"
	"reflect"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lockerd/lockerd/drivers/serialscan/serialtest"
	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/locker/httpapi"
)

// TestCrashKeepsEveryEventAndSeq SIGKILLs lockerd in the middle of a
// stream of pickups and returns, restarts it on the same store, and checks
// that the store opens, every event recorded before the kill is still
// there unchanged, and sequence numbers have no gap and are never reused.
func TestCrashKeepsEveryEventAndSeq(t *testing.T) {
	c := newCabinet(t, "20ms") // doors close by themselves
	returns := serialtest.Plug(t, c.Returns)
	serialtest.Plug(t, c.Front)
	d := start(t, c.Config)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // returns through the serial scanner
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(15 * time.Millisecond):
			}
			returns.Write([]byte(fmt.Sprintf("97870%08d\r", i)))
		}
	}()
	go func() { // pickups through the API, one compartment at a time
		defer wg.Done()
		comps := []string{"A01", "A02", "A03", "B01", "B02", "C01"}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			var rep httpapi.AddOrderReply
			if d.call("POST", "/v1/orders", httpapi.AddOrderRequest{Compartment: comps[i%len(comps)]}, &rep) != nil {
				time.Sleep(10 * time.Millisecond) // compartment still closing, or daemon gone
				continue
			}
			var res locker.ScanResult
			d.call("POST", "/v1/scan", httpapi.ScanRequest{Scanner: "keypad", Text: rep.Code}, &res) // errors: daemon killed mid-stream
		}
	}()

	d.waitCount(locker.EvItemReturned, nil, 10)
	d.waitCount(locker.EvPickupCompleted, nil, 5)
	seen := d.events(0)
	d.cmd.Process.Signal(syscall.SIGKILL)
	<-d.done
	close(stop)
	wg.Wait()

	d2 := start(t, c.Config)
	after := d2.events(0)
	bySeq := map[uint64]locker.Event{}
	for i, e := range after {
		if e.Seq != uint64(i+1) {
			t.Fatalf("event %d has seq %d: gap or reuse (seqs must be 1..n)", i, e.Seq)
		}
		bySeq[e.Seq] = e
	}
	for _, e := range seen {
		got, ok := bySeq[e.Seq]
		if !ok || got.Type != e.Type || !reflect.DeepEqual(got.Data, e.Data) || got.Boot != 1 {
			t.Fatalf("event seen before the kill changed or lost: before %+v, after %+v", e, got)
		}
	}
	var restart locker.Event
	for _, e := range after {
		if e.Type == locker.EvDaemonStarted && e.Boot == 2 {
			restart = e
		}
	}
	if restart.Seq <= seen[len(seen)-1].Seq {
		t.Fatalf("restart event seq %d not after the last seen seq %d", restart.Seq, seen[len(seen)-1].Seq)
	}
	// The restarted daemon serves, and numbering goes on.
	rep := d2.addOrder(httpapi.AddOrderRequest{Size: "S"})
	if res := d2.scan("keypad", rep.Code); res.Outcome != locker.OutcomeOpened {
		t.Fatalf("pickup after restart: %+v", res)
	}
	last := d2.waitEvent(locker.EvPickupCompleted, map[string]any{"order_id": rep.Order.ID})
	if last.Seq <= restart.Seq || last.Boot != 2 {
		t.Fatalf("event after restart: %+v", last)
	}
	t.Logf("%d events seen before SIGKILL, %d in the store after restart", len(seen), len(after))
}
