package metrics

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lockerd/lockerd/locker"
)

// fakeSource is the metrics' Source in memory.
type fakeSource struct {
	events  chan locker.Event
	pulses  uint64
	depth   int
	oldest  time.Time
	healthy bool
}

var _ Source = (*fakeSource)(nil)

func (f *fakeSource) Subscribe() (<-chan locker.Event, func()) { return f.events, func() {} }
func (f *fakeSource) Pulses() uint64                           { return f.pulses }
func (f *fakeSource) SyncState() (locker.SyncState, error) {
	return locker.SyncState{Depth: f.depth, AckedSeq: 7}, nil
}
func (f *fakeSource) Events(after uint64, limit int) ([]locker.Event, error) {
	return []locker.Event{{Seq: after + 1, TS: f.oldest}}, nil
}
func (f *fakeSource) StoreHealthy() bool { return f.healthy }
func (f *fakeSource) ScannerStates() map[string]bool {
	return map[string]bool{"front": true, "returns": false}
}
func (f *fakeSource) HardwareStates() map[string]bool { return map[string]bool{"lock board 1": false} }

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	return string(body)
}

// Each series moves when its event is committed; a refusal that sums up
// a burst counts as the refusals it stands for; the gauges read the
// locker's state when scraped.
func TestSeries(t *testing.T) {
	src := &fakeSource{events: make(chan locker.Event), pulses: 12, depth: 3, oldest: time.Now().Add(-time.Minute), healthy: true}
	m := New(src, func() bool { return true })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx, src); close(done) }()
	send := func(d locker.EventData) {
		src.events <- locker.Event{Type: d.EventType(), Data: locker.DataOf(d)}
	}
	send(locker.PickupCompleted{OrderID: "O1", Via: "scan"})
	send(locker.PickupDenied{Refusal: locker.Refusal{Reason: "unknown", Scanner: "front"}})
	send(locker.PickupDenied{Refusal: locker.Refusal{Reason: "unknown", Scanner: "front", Count: 4, Since: time.Now()}})
	send(locker.LockoutStarted{Scanner: "front", Until: time.Now()})
	send(locker.ItemReturned{Barcode: "978", Scanner: "returns"})
	send(locker.ReturnRefused{Refusal: locker.Refusal{Reason: "bin_full", Scanner: "returns"}})
	send(locker.DoorForced{Compartment: "A01"})
	send(locker.DoorLeftOpen{Compartment: "A01", OpenS: 120})
	zero := 0
	send(locker.DoorJammed{Compartment: "A02", Commanded: true, Jams: &zero})
	send(locker.DoorClosed{Compartment: "A01"}) // the last one: Run has counted the ones before when it is taken
	cancel()
	<-done
	body := scrape(t, m)
	for _, want := range []string{
		`lockerd_pickups_total 1`,
		`lockerd_pickup_denials_total{reason="unknown"} 5`,
		`lockerd_lockouts_total 1`,
		`lockerd_returns_total{result="accepted"} 1`,
		`lockerd_returns_total{result="bin_full"} 1`,
		`lockerd_door_alarms_total{kind="forced"} 1`,
		`lockerd_door_alarms_total{kind="left_open"} 1`,
		`lockerd_jams_total 1`,
		`lockerd_events_total{type="pickup.denied"} 2`,
		`lockerd_relay_pulses_total 12`,
		`lockerd_outbox_depth 3`,
		`lockerd_mqtt_connected 1`,
		`lockerd_store_healthy 1`,
		`lockerd_scanner_up{scanner="front"} 1`,
		`lockerd_scanner_up{scanner="returns"} 0`,
		`lockerd_hardware_up{device="lock board 1"} 0`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("no %q in:\n%s", want, grepLockerd(body))
		}
	}
	if !strings.Contains(body, "lockerd_outbox_oldest_age_seconds 6") && !strings.Contains(body, "lockerd_outbox_oldest_age_seconds 5") {
		t.Errorf("oldest age:\n%s", grepLockerd(body))
	}
}

func grepLockerd(body string) string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, "lockerd_") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
