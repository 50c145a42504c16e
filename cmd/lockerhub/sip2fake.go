package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os/signal"
	"syscall"

	"github.com/lockerd/lockerd/cmd/internal/cliflag"
	"github.com/lockerd/lockerd/sync/sip2/sip2test"
)

// Demo patrons and items of lockerhub sip2-fake (make demo).
var (
	demoPatrons = []sip2test.Patron{
		{ID: "21000001", PIN: "1234", Name: "Li Wei"},
		{ID: "21000002", PIN: "4321", Name: "Zhang Min"},
		{ID: "21000099", Name: "Blocked Reader", Blocked: true},
	}
	demoItems = []sip2test.Item{
		{Barcode: "9787020002207", Title: "红楼梦"},
		{Barcode: "9787532736744", Title: "围城"},
		{Barcode: "9787544253994", Title: "百年孤独"},
		{Barcode: "9787020008735", Title: "西游记", Alert: "02", Screen: "Hold for Zhang Min at North branch: send in transit"},
		// On the hold shelf for reader 21000001, to collect at the demo
		// locker (make demo's): a staff scan of it makes the order.
		{Barcode: "9787536692930", Title: "三体", HoldFor: "21000001", Pickup: "demo-01"},
		{Barcode: "9787506365437", Title: "活着", HoldFor: "21000002", Pickup: "NORTH"},
	}
)

// sip2Fake runs the fake ILS of the tests for a demo, until SIGINT/SIGTERM.
func sip2Fake(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("sip2-fake", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:6001", "address to listen on (loopback)")
	if _, err := cliflag.Parse(fs, args); err != nil {
		return err
	}
	s, err := sip2test.Listen(*listen, demoPatrons, demoItems)
	if err != nil {
		return err
	}
	defer s.Close()
	fmt.Fprintf(out, "fake ILS (SIP2) on %s: any login; patrons", s.Addr)
	for _, p := range demoPatrons {
		fmt.Fprintf(out, " %s", p.ID)
	}
	fmt.Fprint(out, "; items")
	for _, it := range demoItems {
		fmt.Fprintf(out, " %s", it.Barcode)
	}
	fmt.Fprintln(out)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	<-ctx.Done()
	return nil
}
