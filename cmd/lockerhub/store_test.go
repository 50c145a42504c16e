package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lockerd/lockerd/locker/lockertest"
	"github.com/lockerd/lockerd/sync/hub"
	"github.com/lockerd/lockerd/sync/hub/circulation"
	"github.com/lockerd/lockerd/sync/hub/hubbolt"
	"github.com/lockerd/lockerd/sync/hub/hubtest"
	"github.com/lockerd/lockerd/sync/hub/pgstore"
	"github.com/lockerd/lockerd/sync/hub/pgstore/pgtest"
	"github.com/lockerd/lockerd/sync/protocol"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// dump is everything a store holds, as JSON, for comparing two stores.
func dump(t *testing.T, s hub.Store) string {
	t.Helper()
	var b strings.Builder
	err := s.View(func(tx hub.Tx) error {
		add := func(name string, v any, err error) error {
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			raw, _ := json.Marshal(v)
			fmt.Fprintf(&b, "%s: %s\n", name, raw)
			return nil
		}
		known, err := tx.Lockers.KnownLockers()
		if err := add("known", known, err); err != nil {
			return err
		}
		lockers, err := tx.Lockers.Lockers()
		if err := add("lockers", lockers, err); err != nil {
			return err
		}
		for _, k := range known {
			recs, err := tx.Lockers.StoreRecs(k.ID)
			add(k.ID+" stores", recs, err)
			evs, err := tx.Events.Events(k.ID, hub.Cursor{}, 0)
			add(k.ID+" events", evs, err)
			orders, err := tx.Orders.Orders(k.ID)
			add(k.ID+" orders", orders, err)
			rev, err := tx.Orders.LastRev(k.ID)
			add(k.ID+" rev", rev, err)
			pending, err := tx.Orders.PrunePending(k.ID, 0)
			add(k.ID+" pending", pending, err)
		}
		cmds, err := tx.Commands.Commands()
		add("commands", cmds, err)
		alarms, err := tx.Alarms.Alarms(0)
		add("alarms", alarms, err)
		circs, err := tx.Circ.Circs(0, 0)
		add("circulation", circs, err)
		tokens, err := tx.Auth.Tokens()
		add("tokens", tokens, err)
		audit, err := tx.Auth.Audit(0, 0)
		add("audit", audit, err)
		hooks, err := tx.Webhooks.Webhooks()
		add("webhooks", hooks, err)
		dels, err := tx.Webhooks.Deliveries(0, 0)
		return add("deliveries", dels, err)
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// A pilot's bbolt data moves into PostgreSQL whole — lockers, stores,
// events under their epochs, orders, revs, pending changes, commands,
// alarms — and revs go on from where they were; a second run into the
// same database is refused.
func TestMigrateBoltToPostgres(t *testing.T) {
	dir := t.TempDir()
	boltFile := filepath.Join(dir, "hub.db")
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	h, err := hub.New(hub.Config{Store: hubtest.BoltStore(t, boltFile), SigningKey: priv, PickupKey: lockertest.Key, Lockers: []string{"nb-1", "nb-2"},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	tp := protocol.Topics{Prefix: protocol.DefaultPrefix, Locker: "nb-1"}
	birth := func(store string) {
		raw, _ := json.Marshal(protocol.Status{V: 1, Type: protocol.TypeStatus, Online: true, Boot: 1, Store: store, Instance: "i-" + store, OutboxTail: 1, TS: time.Now().UTC()})
		h.HandleUplink(tp.Status(), raw)
	}
	birth("s1")
	for seq := uint64(1); seq <= 30; seq++ {
		raw, _ := json.Marshal(protocol.Event{V: 1, ID: protocol.EventID("nb-1", "s1", seq), Type: "door.closed", Locker: "nb-1", Store: "s1", Boot: 1, Seq: seq, TS: time.Now().UTC(), Data: json.RawMessage(`{}`)})
		h.HandleUplink(tp.UpEvt(), raw)
	}
	birth("s2") // a replaced store: a second epoch and an alarm
	for range 3 {
		if _, err := h.CreateOrder(hub.NewOrder{Locker: "nb-1"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.Open("nb-1", "A01", "migration test"); err != nil {
		t.Fatal(err)
	}
	h.Close()
	// The circulation queue, as a bridge left it: one done, one queued.
	if st, err := hubbolt.Open(boltFile); err != nil {
		t.Fatal(err)
	} else {
		err := st.Update(func(tx hub.Tx) error {
			if _, err := tx.Circ.AddCirc(circulation.CircRec{Locker: "nb-1", Kind: circulation.CircCheckout, Patron: "P1", Item: "B1", State: circulation.CircDone, OK: true, Due: "20261219    235900"}); err != nil {
				return err
			}
			_, err := tx.Circ.AddCirc(circulation.CircRec{Locker: "nb-1", Kind: circulation.CircCheckin, Item: "B2", State: circulation.CircQueued})
			return err
		})
		st.Close()
		if err != nil {
			t.Fatal(err)
		}
	}

	dsnFile := filepath.Join(dir, "hub.dsn")
	dsn := pgtest.DB(t)
	os.WriteFile(dsnFile, []byte(dsn+"\n"), 0o600)
	out, errw, code := cli(t, "migrate", "--from", "bolt:"+boltFile, "--to", "postgres:"+dsnFile)
	if code != 0 || !strings.Contains(out, "copied 2 lockers served (1 heard from), 2 stores, 30 events, 3 orders, 3 pending order changes, 1 commands, 1 alarms, 2 circulation transactions, 0 API tokens, 0 audit records") {
		t.Fatalf("migrate: %d %s %s", code, out, errw)
	}
	src, err := hubbolt.Open(boltFile)
	if err != nil {
		t.Fatal(err)
	}
	want := dump(t, src)
	src.Close()
	dst, err := pgstore.Open(context.Background(), dsn, pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if got := dump(t, dst); got != want {
		t.Fatalf("PostgreSQL holds\n%s\nbbolt held\n%s", got, want)
	}
	dst.Update(func(tx hub.Tx) error {
		if rev, err := tx.Orders.NextRev("nb-1"); rev != 4 || err != nil {
			t.Fatalf("the next rev after the move: %d %v, want 4", rev, err)
		}
		return nil
	})
	if _, errw, code := cli(t, "migrate", "--from", "bolt:"+boltFile, "--to", "postgres:"+dsnFile); code != 1 || !strings.Contains(errw, "copy only into an empty one") {
		t.Fatalf("a second migrate into the same database: %d %s", code, errw)
	}
	if _, errw, code := cli(t, "migrate", "--from", "bolt:"+filepath.Join(dir, "none.db"), "--to", "postgres:"+dsnFile); code != 1 || !strings.Contains(errw, "--from:") {
		t.Fatalf("migrate from a missing file: %d %s", code, errw)
	}
}

// A database that does not answer, one at a newer schema, and a broker
// that refuses each stop the start: exit 1, one line saying which.
func TestServeRefusesBadParts(t *testing.T) {
	dir := t.TempDir()
	cli(t, "keygen", "-out", dir)
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(text), 0o600)
		return p
	}
	newer := pgtest.DB(t)
	st, err := pgstore.Open(context.Background(), newer, pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	conn, err := pgx.Connect(context.Background(), newer)
	if err != nil {
		t.Fatal(err)
	}
	conn.Exec(context.Background(), "INSERT INTO lockerhub_schema (version, name) VALUES (999, 'future')")
	conn.Close(context.Background())
	write("dead.dsn", "postgres://lockerd:pw@127.0.0.1:1/hub?sslmode=disable&connect_timeout=2\n")
	write("newer.dsn", newer+"\n")
	for _, tc := range []struct{ name, config, want string }{
		{"a DSN that does not connect", "store: {driver: postgres, dsn_file: dead.dsn}\n", "cannot connect"},
		{"a newer schema", "store: {driver: postgres, dsn_file: newer.dsn}\n", "schema version 999, newer than this lockerhub knows"},
		{"a broker that refuses", "mqtt: {broker: \"tcp://127.0.0.1:1\"}\n", "mqtt.broker tcp://127.0.0.1:1:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := write("hub.yaml", tc.config+"keys: {signing_key_file: central.key}\n")
			_, errw, code := cli(t, "serve", "-config", cfg)
			if code != 1 || !strings.Contains(errw, tc.want) || strings.Count(errw, "\n") != 1 || strings.Contains(errw, "pw@") {
				t.Fatalf("serve: exit %d, %q; want exit 1 and one line with %q", code, errw, tc.want)
			}
			if _, err := os.Stat(filepath.Join(dir, "lockerhub.db")); err == nil {
				t.Fatal("a store was made before the start failed")
			}
		})
	}
}
