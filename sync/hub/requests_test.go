package hub_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lockerd/lockerd/sync/hub"
	"github.com/lockerd/lockerd/sync/hub/circulation"
	"github.com/lockerd/lockerd/sync/hub/requests"
	"github.com/lockerd/lockerd/sync/protocol"
	"github.com/lockerd/lockerd/sync/sip2"
	"github.com/lockerd/lockerd/sync/sip2/sip2test"
)

// holdsBridge is a bridge (a fake ILS behind a real SIP2 session) with the
// holds service wired as lockerhub serve wires it; locker nb-1 is pickup
// point NB1 at the library system.
func holdsBridge(t testing.TB) (*bridge, *requests.Service) {
	var finish func(*hub.Hub) *requests.Service
	b := newBridge(t, func(cfg *hub.Config) {
		cfg.Circulation.Locations = map[string]string{"nb-1": "NB1"}
		finish = requests.Wire(cfg, 0)
	})
	s := finish(b.h)
	b.ils.AddPatrons(sip2test.Patron{ID: "P1", Name: "Li Wei", Email: "li.wei@example.org", Language: "019"},
		sip2test.Patron{ID: "P2", Name: "Zhang Min", Email: "zhang@example.org"}, sip2test.Patron{ID: "PX", Blocked: true})
	b.ils.AddItems(
		sip2test.Item{Barcode: "H1", Title: "三体", HoldFor: "P1", Pickup: "NB1"},
		sip2test.Item{Barcode: "H2", Title: "活着", HoldFor: "P1", Pickup: "nb1"},
		sip2test.Item{Barcode: "H3", Title: "围城", HoldFor: "P2", Pickup: "NB1"},
		sip2test.Item{Barcode: "FAR", Title: "红楼梦", HoldFor: "P2", Pickup: "SOUTH"},
		sip2test.Item{Barcode: "HX", Title: "水浒传", HoldFor: "PX", Pickup: "NB1"},
		sip2test.Item{Barcode: "H5", Title: "边城", HoldFor: "P1", Pickup: "NB1"},
		sip2test.Item{Barcode: "H6", Title: "骆驼祥子", HoldFor: "P1", Pickup: "NB1"},
		sip2test.Item{Barcode: "LENT", Title: "论语"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := b.s.Checkout(ctx, sip2.Checkout{Patron: "P2", Item: "LENT", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	return b, s
}

// A staff scan of an item with no order: the library system is asked
// whose hold it is and where it goes; the order is made for that reader,
// with their contact from the library system; the same reader's items of
// one visit share one code; a refusal names its reason. Every scan is in
// the circulation list.
func TestHoldScans(t *testing.T) {
	b, s := holdsBridge(t)
	ctx := context.Background()
	scan := func(item, card, visit string, loading ...string) protocol.RespHold {
		t.Helper()
		return s.Scan(ctx, "nb-1", protocol.ReqHold{Item: item, Card: card, By: "Staff A", Visit: visit, Loading: loading})
	}
	first := scan("H1", "", "V1")
	if !first.OK || first.Order == nil || first.Order.ID != requests.OrderID("nb-1", "V1", "H1") || first.Order.Items[0].Title != "三体" ||
		first.Order.PatronHash == "" || first.Order.CodeHash == "" {
		t.Fatalf("first scan: %+v", first)
	}
	o, found, err := b.h.Order("nb-1", first.Order.ID)
	if err != nil || !found || o.Patron != "P1" || o.Contact.Email != "li.wei@example.org" || o.Contact.Lang != "zh" || len(o.SealedCode) != 0 {
		// No notice key in this hub: nothing sealed, and no code kept.
		t.Fatalf("order kept: %+v (found %v, err %v)", o, found, err)
	}
	again := scan("H1", "", "V1")
	if !again.OK || again.Order.ID != first.Order.ID || again.Order.Rev != first.Order.Rev {
		t.Fatalf("the same scan again makes no second order: %+v", again)
	}
	second := scan("H2", "", "V1")
	if !second.OK || second.Order.ID == first.Order.ID || second.Order.CodeHash != first.Order.CodeHash {
		t.Fatalf("the same reader's second item in the visit shares the code: %+v", second)
	}
	other := scan("H3", "", "V1")
	if !other.OK || other.Order.CodeHash == first.Order.CodeHash {
		t.Fatalf("another reader's item gets its own code: %+v", other)
	}
	later := scan("H5", "", "V2") // another visit: its own order, its own code
	if !later.OK || later.Order.CodeHash == first.Order.CodeHash {
		t.Fatalf("another visit: %+v", later)
	}
	// The reader's order whose door is open for loading takes the item in.
	joined := scan("H6", "", "V1", first.Order.ID)
	if !joined.OK || joined.Order.ID != first.Order.ID || len(joined.Order.Items) != 2 || joined.Order.Rev <= first.Order.Rev {
		t.Fatalf("joined while its door is open: %+v", joined)
	}

	for _, tt := range []struct {
		item, card, reason string
	}{
		{"FAR", "", protocol.HoldElsewhere},
		{"B1", "", protocol.HoldNone},
		{"LENT", "", protocol.HoldNone},
		{"NOPE", "", protocol.HoldUnknownItem},
		{"HX", "", protocol.HoldRefused},
		{"bad|item", "", protocol.HoldUnknownItem},
	} {
		if r := scan(tt.item, tt.card, "V1"); r.OK || r.Reason != tt.reason || r.Message == "" {
			t.Errorf("%s: %+v, want %s", tt.item, r, tt.reason)
		}
	}

	// A library system that says "on the hold shelf" but not for whom
	// (Koha, FOLIO): the staff scan the reader's card from the slip, and
	// the hold is checked among that reader's (63).
	b.ils.SetFaults(sip2test.Faults{NoHoldPatron: true})
	b.ils.AddItems(sip2test.Item{Barcode: "H4", Title: "家", HoldFor: "P2", Pickup: "NB1"})
	if r := scan("H4", "", "V3"); r.OK || r.Reason != protocol.HoldNoReader {
		t.Fatalf("no CY: %+v", r)
	}
	if r := scan("H4", "P1", "V3"); r.OK || r.Reason != protocol.HoldNotTheirs {
		t.Fatalf("another reader's card: %+v", r)
	}
	if r := scan("H4", "P2", "V3"); !r.OK {
		t.Fatalf("the slip's card: %+v", r)
	}

	all := b.circs("")
	kinds := map[string]int{}
	for _, c := range all {
		if c.Kind == circulation.CircHold {
			kinds[c.State]++
		}
	}
	if kinds[circulation.CircDone] != 7 || kinds[circulation.CircRefused] != 8 {
		t.Fatalf("hold scans listed: %v", kinds)
	}
}

// Offline, the locker records the scan (hold.scan_queued); when the event
// reaches the hub, the bridge asks the library system and makes the
// order — or keeps the refusal for the staff — once.
func TestQueuedHoldScans(t *testing.T) {
	b, _ := holdsBridge(t)
	b.event(protocol.EvHoldScanQueued, true, tEvent, protocol.HoldScanQueued{By: "Staff A", Item: "H1", Visit: "V9"})
	b.event(protocol.EvHoldScanQueued, true, tEvent, protocol.HoldScanQueued{By: "Staff A", Item: "FAR", Visit: "V9"})
	b.event(protocol.EvHoldScanQueued, true, tEvent, protocol.HoldScanQueued{By: "Staff A", Item: strings.Repeat("9", 200), Visit: "V9"}) // not a barcode: kept, not queued
	if q := b.circs(circulation.CircQueued); len(q) != 2 || q[0].Kind != circulation.CircHold || q[0].Visit != "V9" {
		t.Fatalf("queued: %+v", q)
	}
	b.work()
	done, refused := b.circs(circulation.CircDone), b.circs(circulation.CircRefused)
	if len(done) != 1 || done[0].Order != requests.OrderID("nb-1", "V9", "H1") || done[0].Patron != "P1" {
		t.Fatalf("done: %+v", done)
	}
	if len(refused) != 1 || refused[0].LastError != protocol.HoldElsewhere || refused[0].Screen == "" {
		t.Fatalf("refused: %+v", refused)
	}
	if _, found, _ := b.h.Order("nb-1", done[0].Order); !found {
		t.Fatal("the queued scan's order was not made")
	}
	b.work()
	if q := b.circs(circulation.CircQueued); len(q) != 0 {
		t.Fatalf("worked once: %+v", q)
	}
}

// BenchmarkHoldScan measures a staff scan of a held item at the central:
// 17 and 63 to the fake ILS over loopback, the order made (its code, its
// transaction synced to disk) and the scan kept in the circulation list.
// Baseline: the same order made through the API (hub.CreateOrder), with
// no library system asked. BENCHMARKS.md §13 reports the ratio.
func BenchmarkHoldScan(b *testing.B) {
	br, s := holdsBridge(b)
	ctx := context.Background()
	n := 0
	b.Run("baseline=create-order", func(b *testing.B) {
		for b.Loop() {
			n++
			if _, err := br.h.CreateOrder(hub.NewOrder{Locker: "nb-1", ID: fmt.Sprintf("B-%d", n), Patron: "P1", Items: []protocol.Item{{Barcode: fmt.Sprintf("X%d", n)}}}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("hold-scan", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			n++
			item := fmt.Sprintf("H%d", n)
			br.ils.AddItems(sip2test.Item{Barcode: item, Title: "三体", HoldFor: "P1", Pickup: "NB1"})
			b.StartTimer()
			if r := s.Scan(ctx, "nb-1", protocol.ReqHold{Item: item, By: "staff", Visit: fmt.Sprintf("V%d", n)}); !r.OK {
				b.Fatalf("scan: %+v", r)
			}
		}
	})
}
