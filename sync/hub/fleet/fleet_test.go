package fleet_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockerd/lockerd/locker/lockertest"
	"github.com/lockerd/lockerd/sync/hub/alarm"
	"github.com/lockerd/lockerd/sync/hub/alarm/alarmtest"
	"github.com/lockerd/lockerd/sync/hub/auth"
	"github.com/lockerd/lockerd/sync/hub/fleet"
	"github.com/lockerd/lockerd/sync/hub/fleet/fleettest"
	"github.com/lockerd/lockerd/sync/hub/webhook"
	"github.com/lockerd/lockerd/sync/hub/webhook/webhooktest"
	"github.com/lockerd/lockerd/sync/protocol"
)

// The fleet's fast tests: its documents, the registry, alarms and
// webhooks in memory, and the core's lockers and commands as a fake. The
// end-to-end tests (the hub's API, real cabinets provisioned, configured
// and updated) are in sync/hub and cmd/lockerd.

func TestDocsOnMemory(t *testing.T) { fleettest.TestStore(t, fleettest.NewMem()) }

// memStore is the fleet's Store in memory: its documents (fleettest.Mem),
// the lockers served, the alarm and webhook kits; an Update that fails
// leaves all of them as they were.
type memStore struct {
	mu     sync.Mutex
	docs   *fleettest.Mem
	served map[string]string // id → source
	alarms *alarmtest.Mem
	hooks  *webhooktest.Mem
}

func (s *memStore) View(fn func(fleet.Tx) error) error { return s.run(fn) }

func (s *memStore) Update(fn func(fleet.Tx) error) error { return s.run(fn) }

func (s *memStore) run(fn func(fleet.Tx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	reg := registry(maps.Clone(s.served))
	return s.docs.Update(func(docs fleet.Docs) error {
		return s.alarms.Update(func(atx alarm.Tx) error {
			return s.hooks.Update(func(wtx webhook.Tx) error {
				if err := fn(fleet.Tx{Docs: docs, Lockers: reg, Alarms: atx, Hooks: wtx}); err != nil {
					return err
				}
				s.served = reg
				return nil
			})
		})
	})
}

type registry map[string]string

func (r registry) Serve(id, source string, _ time.Time) error {
	if _, ok := r[id]; !ok {
		r[id] = source
	}
	return nil
}

// core is the hub's core as the fleet sees it: the lockers it serves
// (those of the store's registry) and the commands sent.
type core struct {
	store *memStore
	mu    sync.Mutex
	sent  []string // LOCKER TYPE
	fail  map[string]bool
}

func (c *core) RequireServed(id string) error {
	c.store.mu.Lock()
	defer c.store.mu.Unlock()
	if _, ok := c.store.served[id]; !ok {
		return fmt.Errorf("locker %q: unknown", id)
	}
	return c.store.docs.View(func(d fleet.Docs) error { return fleet.Revoked(d, id) })
}

func (c *core) Served() ([]string, error) {
	c.store.mu.Lock()
	defer c.store.mu.Unlock()
	return slices.Sorted(maps.Keys(c.store.served)), nil
}

func (c *core) Command(lockerID, typ string, _ any) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail[lockerID] {
		return "", errors.New("offline for good")
	}
	c.sent = append(c.sent, lockerID+" "+typ)
	return fmt.Sprintf("cmd-%d", len(c.sent)), nil
}

type kit struct {
	svc    *fleet.Service
	store  *memStore
	core   *core
	audits []auth.AuditRec
}

func newKit(t *testing.T, served ...string) *kit {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	k := &kit{store: &memStore{docs: fleettest.NewMem(), served: map[string]string{}, alarms: &alarmtest.Mem{}, hooks: webhooktest.NewMem()}}
	for _, id := range served {
		k.store.served[id] = "config"
	}
	k.core = &core{store: k.store, fail: map[string]bool{}}
	k.svc = fleet.New(fleet.Config{Store: k.store, Lockers: k.core, Prefix: "lockers", Brokers: []string{"mqtts://broker.example:8883"},
		SigningKey: priv, PickupKey: lockertest.Key, ReleasesDir: t.TempDir(),
		Provisioning: fleet.Provisioning{
			Validate: func(name string, raw []byte) error {
				if strings.Contains(string(raw), "XXL") {
					return errors.New(name + `:4: compartments[1].size: "XXL": want S, M, L or XL`)
				}
				return nil
			},
			Render: func(raw []byte, p fleet.ProvisionedLocker) ([]byte, error) {
				return []byte(string(raw) + "\nid: " + p.Locker), nil
			}},
		Raise: func(at alarm.Tx, _ webhook.Tx, a alarm.Alarm) error {
			_, _, err := alarm.Raise(at, a, time.Now())
			return err
		},
		Audit: func(a auth.AuditRec) { k.audits = append(k.audits, a) },
		Log:   slog.New(slog.NewTextHandler(io.Discard, nil))})
	return k
}

func (k *kit) openAlarms(t *testing.T) []alarm.Alarm {
	var out []alarm.Alarm
	k.store.alarms.View(func(tx alarm.Tx) error {
		var err error
		out, err = tx.OpenAlarms()
		return err
	})
	return out
}

// A token is made for a locker (which the hub serves from then on), used
// once, and its credentials are what the broker takes until revoked;
// every refusal is audited, and a refused request leaves the token usable.
func TestProvisionOnMemory(t *testing.T) {
	k := newKit(t)
	if _, err := k.svc.CreateProvisionToken(fleet.NewProvisionToken{Locker: "nb-1", Config: "size: XXL"}, "admin"); err == nil || !strings.Contains(err.Error(), "nb-1.yaml:4") {
		t.Fatalf("a bad configuration: %v", err)
	}
	if len(k.store.served) != 0 {
		t.Fatalf("served after a refused token: %v", k.store.served)
	}
	created, err := k.svc.CreateProvisionToken(fleet.NewProvisionToken{Locker: "nb-1", Config: "wiring"}, "admin")
	if err != nil || created.Record.Hash != "" || k.store.served["nb-1"] != "provision" {
		t.Fatalf("token: %+v %v; served %v", created, err, k.store.served)
	}
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	req := protocol.ProvisionRequest{Locker: "nb-1", Token: created.Token, PublicKey: base64.StdEncoding.EncodeToString(pub)}
	now := time.Now()
	cases := []struct {
		name   string
		req    protocol.ProvisionRequest
		status int
	}{
		{"not a token", protocol.ProvisionRequest{Token: "hello", PublicKey: req.PublicKey}, 403},
		{"wrong secret", protocol.ProvisionRequest{Token: created.Token[:len(created.Token)-2] + "00", PublicKey: req.PublicKey}, 403},
		{"no key", protocol.ProvisionRequest{Token: created.Token}, 400},
		{"another locker", protocol.ProvisionRequest{Locker: "nb-2", Token: created.Token, PublicKey: req.PublicKey}, 403},
	}
	for _, c := range cases {
		_, err := k.svc.Provision(c.req, "10.0.0.9", now)
		var pe *fleet.ProvisionError
		if !errors.As(err, &pe) || pe.Status != c.status {
			t.Errorf("%s: %v, want status %d", c.name, err, c.status)
		}
	}
	if len(k.audits) != len(cases) {
		t.Fatalf("%d refusals audited, want %d", len(k.audits), len(cases))
	}
	reply, err := k.svc.Provision(req, "10.0.0.9", now)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(reply.Body)
	_, secret, _ := protocol.SplitProvisionToken(created.Token)
	if reply.MAC != protocol.ProvisionMAC(secret, raw) || !strings.Contains(string(raw), `id: nb-1`) {
		t.Fatalf("reply: %s (mac %s)", raw, reply.MAC)
	}
	var password string
	if i := strings.Index(string(raw), `"password":"`); i >= 0 {
		password = string(raw)[i+12 : i+12+64]
	}
	if !k.svc.BrokerPasswordOK("nb-1", []byte(password)) || k.svc.BrokerPasswordOK("nb-1", []byte("guess")) || k.svc.BrokerPasswordOK("nb-2", []byte(password)) {
		t.Fatal("the broker password is not checked as issued")
	}
	var pe *fleet.ProvisionError
	if _, err := k.svc.Provision(req, "10.0.0.9", now); !errors.As(err, &pe) || pe.Status != 409 {
		t.Fatalf("a token used twice: %v", err)
	}
	if _, err := k.svc.RevokeLocker("nb-1", "admin", "stolen", now); err != nil {
		t.Fatal(err)
	}
	if k.svc.BrokerPasswordOK("nb-1", []byte(password)) {
		t.Fatal("a revoked password still accepted")
	}
	if err := k.core.RequireServed("nb-1"); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("a revoked locker is still served: %v", err)
	}
	if _, err := k.svc.RevokeLocker("nb-1", "admin", "again", now); err == nil {
		t.Fatal("revoked twice")
	}
}

// A pushed configuration is validated before it is sent, numbered, sent
// as a command, and what the locker made of it recorded in the event's
// transaction: a refusal raises config.rejected; a rollback pushes again
// the last applied one before the newest.
func TestConfigOnMemory(t *testing.T) {
	k := newKit(t, "nb-1")
	if _, err := k.svc.PushConfig("nb-1", []byte("size: XXL"), "admin", ""); err == nil || !strings.Contains(err.Error(), "nb-1.yaml:4") {
		t.Fatalf("a bad configuration: %v", err)
	}
	if _, err := k.svc.PushConfig("nb-9", []byte("a: 1"), "admin", ""); err == nil {
		t.Fatal("a configuration for a locker not served")
	}
	event := func(typ string, data any) {
		t.Helper()
		if err := k.store.Update(func(tx fleet.Tx) error {
			return k.svc.FromEvent(tx, "nb-1", protocol.Event{Type: typ, Locker: "nb-1", TS: time.Now().UTC()}, data)
		}); err != nil {
			t.Fatal(err)
		}
	}
	for i, want := range []string{fleet.ConfigApplied, fleet.ConfigApplied, fleet.ConfigRejected} {
		v, err := k.svc.PushConfig("nb-1", []byte(fmt.Sprintf("v: %d", i+1)), "admin", "")
		if err != nil || v.Version != uint64(i+1) || v.CmdID == "" {
			t.Fatalf("push %d: %+v %v", i+1, v, err)
		}
		if want == fleet.ConfigApplied {
			event(protocol.EvConfigApplied, &protocol.ConfigApplied{Version: v.Version})
		} else {
			event(protocol.EvConfigRejected, &protocol.ConfigRejected{Version: v.Version, Reasons: []string{"C01 dropped"}})
		}
	}
	hist, _ := k.svc.ConfigHistory("nb-1")
	if len(hist) != 3 || hist[0].State != fleet.ConfigApplied || hist[2].State != fleet.ConfigRejected || hist[2].Reasons[0] != "C01 dropped" {
		t.Fatalf("history: %+v", hist)
	}
	if a := k.openAlarms(t); len(a) != 1 || a[0].Type != fleet.AlarmConfigRejected {
		t.Fatalf("alarms: %+v", a)
	}
	v, err := k.svc.RollbackConfig("nb-1", 0, "admin")
	if err != nil || v.Version != 4 || !strings.HasPrefix(v.Config, "v: 1") || v.Note != "rollback to 1" {
		t.Fatalf("rollback: %+v %v", v, err)
	}
	if len(k.core.sent) != 4 || k.core.sent[3] != "nb-1 "+protocol.TypeCmdConfig {
		t.Fatalf("commands: %v", k.core.sent)
	}
}

// A rollout sends its first stage, the next when every locker of a stage
// applied, and halts itself when more than its share of a stage fails.
func TestRolloutOnMemory(t *testing.T) {
	lockers := []string{"l1", "l2", "l3", "l4"}
	k := newKit(t, lockers...)
	if _, err := k.svc.AddArtifact("1.2.3", "arm64", strings.NewReader("binary"), false, "admin"); err != nil {
		t.Fatal(err)
	}
	if _, err := k.svc.AddArtifact("1.2", "arm64", strings.NewReader("binary"), false, "admin"); err == nil {
		t.Fatal("a version that is not MAJOR.MINOR.PATCH")
	}
	if _, err := k.svc.StartRollout(fleet.NewRollout{Version: "9.9.9", Percent: 100}, "admin"); err == nil {
		t.Fatal("a rollout of no release")
	}
	ro, err := k.svc.StartRollout(fleet.NewRollout{Version: "1.2.3", Percent: 100, Stages: []int{25, 100}, MaxFailed: 0.4}, "admin")
	if err != nil || len(ro.Stages) != 2 || !slices.Equal(ro.Stages[0], []string{"l1"}) || len(k.core.sent) != 1 {
		t.Fatalf("started: %+v %v, sent %v", ro, err, k.core.sent)
	}
	result := func(id string, ok bool) {
		t.Helper()
		var typ string
		var data any = &protocol.UpdateApplied{Version: "1.2.3"}
		typ = protocol.EvUpdateApplied
		if !ok {
			typ, data = protocol.EvUpdateFailed, &protocol.UpdateFailed{Version: "1.2.3", Reasons: []string{"no space"}}
		}
		if err := k.store.Update(func(tx fleet.Tx) error {
			return k.svc.FromEvent(tx, id, protocol.Event{Type: typ, Locker: id, TS: time.Now().UTC()}, data)
		}); err != nil {
			t.Fatal(err)
		}
	}
	k.svc.WorkRollouts()
	if len(k.core.sent) != 1 {
		t.Fatalf("the next stage before the first answered: %v", k.core.sent)
	}
	result("l1", true)
	k.svc.WorkRollouts()
	if len(k.core.sent) != 4 {
		t.Fatalf("stage 2 not sent: %v", k.core.sent)
	}
	result("l2", false)
	result("l3", false)
	result("l4", true)
	k.svc.WorkRollouts()
	ros, _ := k.svc.Rollouts()
	if ros[0].State != fleet.RolloutHalted || ros[0].Reasons["l2"] != "no space" {
		t.Fatalf("2 of 3 failed: %+v", ros[0])
	}
	if a := k.openAlarms(t); len(a) != 2 || a[0].Type != fleet.AlarmUpdateFailed {
		t.Fatalf("alarms: %+v", a)
	}
}
