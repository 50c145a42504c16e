package main

import (
	"encoding/base64"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"crypto/ed25519"

	"github.com/lockerd/lockerd/cmd/internal/config"
	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/locker/httpapi"
	"github.com/lockerd/lockerd/locker/lockertest"
	"github.com/lockerd/lockerd/sync/brokertest"
	"github.com/lockerd/lockerd/sync/hub"
	"github.com/lockerd/lockerd/sync/hub/fleet"
	"github.com/lockerd/lockerd/sync/hub/hubtest"
	"github.com/lockerd/lockerd/sync/protocol"
)

// TestConfigPush: the central pushes configurations to a running locker.
// One that validates is applied: lockerd runs itself again on it, is
// healthy, and the central records config.applied. One that does not
// validate is refused at the hub with lockerd's own FILE:LINE message,
// before anything is sent. One that drops a compartment holding an order
// is refused by the locker. One that starts but cannot reach the broker
// is rolled back by the locker by itself: the previous configuration
// runs again and the central records config.rejected (rolled back). A
// rollback command sends an earlier version again.
func TestConfigPush(t *testing.T) {
	t.Parallel() // self-contained (its own broker, hub and directories), and mostly waiting
	mq := brokertest.StartMosquitto(t, brokertest.MosquittoOptions{})
	key, _ := newKey(t)
	h := hubtest.Start(t, hub.Config{Brokers: []string{mq.URL}, SigningKey: key, PickupKey: lockertest.Key,
		Lockers: []string{lockerID}, ClientID: "lockerhub", Provisioning: fleet.Provisioning{
			Validate: func(name string, raw []byte) error { _, err := config.Parse(name, raw, false); return err }}})
	pub := base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey))
	apiAddr := fmt.Sprintf("127.0.0.1:%d", brokertest.FreePort(t))
	c := newCabinet(t, "0s", withMQTT(mq.URL, pub, "  config_probation: 3s\n"))
	base, err := os.ReadFile(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	// A fixed API address: lockerd keeps it when it runs itself again.
	base = []byte(strings.Replace(string(base), `api: {listen: "127.0.0.1:0"}`, `api: {listen: "`+apiAddr+`"}`, 1))
	os.WriteFile(c.Config, base, 0o600)
	d := start(t, c.Config)
	online := func() bool {
		li, _ := h.Locker(lockerID)
		return li.Online
	}
	until(t, "online", online)
	state := func(version uint64) fleet.ConfigVersion {
		hist, _ := h.Fleet().ConfigHistory(lockerID)
		for _, v := range hist {
			if v.Version == version {
				return v
			}
		}
		return fleet.ConfigVersion{}
	}
	waitState := func(version uint64, want string) fleet.ConfigVersion {
		t.Helper()
		var v fleet.ConfigVersion
		deadline := time.Now().Add(30 * time.Second)
		for v = state(version); v.State != want; v = state(version) {
			if time.Now().After(deadline) {
				t.Fatalf("configuration %d: %s %v, want %s\n%s", version, v.State, v.Reasons, want, d.logs())
			}
			time.Sleep(50 * time.Millisecond)
		}
		return v
	}

	// 1. Applied.
	v1 := string(base) + "kiosk: {help_text: \"Pushed by the central\"}\n"
	if _, err := h.Fleet().PushConfig(lockerID, []byte(v1), "test", ""); err != nil {
		t.Fatal(err)
	}
	d.reattach(2, 30*time.Second)
	waitState(1, fleet.ConfigApplied)
	if got, _ := os.ReadFile(c.Config); string(got) != v1 {
		t.Fatalf("the configuration on disk is not the pushed one:\n%s", got)
	}
	var page struct {
		HelpText string `json:"help_text"`
	}
	d.must("GET", "/kiosk/config", nil, &page)
	if page.HelpText != "Pushed by the central" {
		t.Fatalf("the kiosk after the push: %+v", page)
	}

	// 2. Refused at the hub: nothing sent.
	bad := strings.Replace(v1, "size: M", "size: XXL", 1)
	if _, err := h.Fleet().PushConfig(lockerID, []byte(bad), "test", ""); err == nil || !strings.Contains(err.Error(), lockerID+".yaml:") || !strings.Contains(err.Error(), `"XXL": want S, M, L or XL`) {
		t.Fatalf("an invalid configuration: %v", err)
	}
	if hist, _ := h.Fleet().ConfigHistory(lockerID); len(hist) != 1 {
		t.Fatalf("an invalid configuration was kept: %+v", hist)
	}

	// 3. Refused by the locker: C01 holds an order.
	rep := d.addOrder(httpapi.AddOrderRequest{Compartment: "C01"})
	noC01 := strings.Replace(v1, "  - {id: C01, size: L, lock: L6, sensor: D6}\n", "", 1)
	if noC01 == v1 {
		t.Fatal("the test's config has no C01 line to drop")
	}
	v3, err := h.Fleet().PushConfig(lockerID, []byte(noC01), "test", "")
	if err != nil {
		t.Fatal(err)
	}
	if v := waitState(v3.Version, fleet.ConfigRejected); !strings.Contains(strings.Join(v.Reasons, " "), "compartment C01 would be dropped") {
		t.Fatalf("refusal: %+v", v.Reasons)
	}
	if d.readyCount() != 2 {
		t.Fatal("lockerd ran itself again on a refused configuration")
	}
	if res := d.scan("front", rep.Code); res.Outcome != locker.OutcomeOpened {
		t.Fatalf("the order in C01 after the refusal: %+v", res)
	}
	d.sim("close", "C01")

	// 4. Starts, cannot reach the broker: rolled back by the locker.
	dead := fmt.Sprintf("tcp://127.0.0.1:%d", brokertest.FreePort(t))
	unreachable := strings.Replace(v1, mq.URL, dead, 1)
	v4, err := h.Fleet().PushConfig(lockerID, []byte(unreachable), "test", "")
	if err != nil {
		t.Fatal(err)
	}
	d.reattach(4, 60*time.Second) // on it, then back on the previous one
	v := waitState(v4.Version, fleet.ConfigRolledBack)
	if !strings.Contains(strings.Join(v.Reasons, " "), "not connected to the broker") {
		t.Fatalf("rollback reasons: %v", v.Reasons)
	}
	if got, _ := os.ReadFile(c.Config); string(got) != v1 {
		t.Fatalf("after the rollback the configuration on disk is not the previous one:\n%s", got)
	}
	until(t, "online again", online)
	as, _ := h.OpenAlarms()
	found := false
	for _, a := range as {
		found = found || a.Type == fleet.AlarmConfigRejected
	}
	if !found {
		t.Fatal("no config.rejected alarm")
	}

	// 5. A rollback command sends version 1 again.
	v5, err := h.Fleet().RollbackConfig(lockerID, 1, "test")
	if err != nil || v5.Note != "rollback to 1" {
		t.Fatalf("rollback: %+v %v", v5, err)
	}
	d.reattach(5, 30*time.Second)
	waitState(v5.Version, fleet.ConfigApplied)
	if cmd, err := h.Command(v5.CmdID); err != nil || cmd.Status != protocol.CmdDone {
		t.Fatalf("the rollback's command: %+v %v", cmd, err)
	}
}
