package pgstore_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/lockerd/lockerd/locker/lockertest"
	"github.com/lockerd/lockerd/sync/brokertest"
	"github.com/lockerd/lockerd/sync/hub"
	"github.com/lockerd/lockerd/sync/hub/hubtest"
	"github.com/lockerd/lockerd/sync/hub/pgstore"
	"github.com/lockerd/lockerd/sync/hub/pgstore/pgtest"
	"github.com/lockerd/lockerd/sync/protocol"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// open opens a handle on the database at dsn, closed when the test ends.
func open(t *testing.T, dsn string) *pgstore.Store {
	t.Helper()
	s, err := pgstore.Open(context.Background(), dsn, pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// The conformance suite on PostgreSQL: a database per case, and a pool
// per hub, as replicas in separate processes would have.
func TestStore(t *testing.T) {
	hubtest.TestStore(t, func(t *testing.T) func() hub.Store {
		dsn := pgtest.DB(t)
		return func() hub.Store { return open(t, dsn) }
	})
}

// The schema is brought up to date once; opening again (another replica,
// a restart) changes nothing; a database at a newer schema is refused
// before anything is touched.
func TestSchema(t *testing.T) {
	dsn := pgtest.DB(t)
	open(t, dsn)
	open(t, dsn)
	var versions []int
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, _ := conn.Query(context.Background(), "SELECT version FROM lockerhub_schema ORDER BY version")
	versions, err = pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil || len(versions) != pgstore.SchemaVersion() || versions[len(versions)-1] != pgstore.SchemaVersion() {
		t.Fatalf("schema versions %v (%v), want 1..%d once each", versions, err, pgstore.SchemaVersion())
	}
	if _, err := conn.Exec(context.Background(), "INSERT INTO lockerhub_schema (version, name) VALUES ($1, 'from the future')", pgstore.SchemaVersion()+1); err != nil {
		t.Fatal(err)
	}
	_, err = pgstore.Open(context.Background(), dsn, pgstore.Options{})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("schema version %d, newer than this lockerhub knows (%d)", pgstore.SchemaVersion()+1, pgstore.SchemaVersion())) {
		t.Fatalf("a newer schema: %v", err)
	}
}

// A DSN that does not parse or does not connect is one line saying so,
// without the password.
func TestBadDSN(t *testing.T) {
	for _, tc := range []struct{ dsn, want string }{
		{"postgres://lockerd:s3cret@127.0.0.1:1/hub?sslmode=disable&connect_timeout=2", "postgres lockerd@127.0.0.1:1/hub: cannot connect"},
		{"postgres://lockerd:s3cret@127.0.0.1:99999999/hub", "the DSN does not parse"},
	} {
		_, err := pgstore.Open(context.Background(), tc.dsn, pgstore.Options{})
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want one line with %q and no password", tc.dsn, err, tc.want)
		}
	}
}

func TestReadDSN(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ content, want, err string }{
		{"# the hub's database\n\npostgres://h/db\n", "postgres://h/db", ""},
		{"\n# nothing\n", "", "no DSN in it"},
	} {
		f := filepath.Join(dir, "dsn")
		os.WriteFile(f, []byte(tc.content), 0o600)
		got, err := pgstore.ReadDSN(f)
		if got != tc.want || (tc.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%q: %q %v", tc.content, got, err)
		}
	}
	if _, err := pgstore.ReadDSN(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing file read")
	}
	big := filepath.Join(dir, "big")
	os.WriteFile(big, make([]byte, 1<<20), 0o600)
	if _, err := pgstore.ReadDSN(big); err == nil || !strings.Contains(err.Error(), "not a DSN file") {
		t.Errorf("a 1 MB file: %v", err)
	}
}

// Two replicas subscribing to their own lockers' topics (SubscribeOwned)
// each receive only their share of the events, and every event is stored
// once; a locker added later is subscribed to by its partition's holder.
func TestSubscribeOwned(t *testing.T) {
	url := brokertest.StartMosquitto(t, brokertest.MosquittoOptions{}).URL // (the embedded broker takes one central)
	dsn := pgtest.DB(t)
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	ids := make([]string, 24)
	for i := range ids {
		ids[i] = fmt.Sprintf("nb-%02d", i)
	}
	var hs []*hub.Hub
	for _, name := range []string{"lockerhub", "lockerhub-2"} {
		st, err := pgstore.Open(context.Background(), dsn, pgstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, hubtest.Start(t, hub.Config{Brokers: []string{url}, ClientID: name, SigningKey: priv, PickupKey: lockertest.Key,
			Store: st, Lockers: ids[:20], SubscribeOwned: true, LeaseTTL: 600 * time.Millisecond}))
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	waitFor("the lockers shared out and subscribed", func() bool {
		a, b := hs[0].Partitions(), hs[1].Partitions()
		return a > 0 && b > 0 && a+b == 32 && hs[0].Subscribed() && hs[1].Subscribed()
	})
	if err := hs[0].AddLocker(ids[20], "api"); err != nil { // after the start: subscribed at once, or at a rebalance
		t.Fatal(err)
	}
	waitFor("the new locker's holder subscribed to it", func() bool {
		for _, h := range hs {
			if h.Owns(ids[20]) && h.SubscribedTo(ids[20]) {
				return true
			}
		}
		return false
	})
	before := [2]uint64{}
	for i, h := range hs {
		before[i], _ = h.ReceivedEvents()
	}
	for _, id := range ids[:21] {
		tp := protocol.Topics{Prefix: protocol.DefaultPrefix, Locker: id}
		raw, _ := json.Marshal(protocol.Event{V: 1, ID: protocol.EventID(id, "00aa00aa00aa00aa", 1), Type: "door.opened",
			Locker: id, Store: "00aa00aa00aa00aa", Boot: 1, Seq: 1, TS: time.Now().UTC(), Data: json.RawMessage(`{}`)})
		brokertest.Record(t, url, id, "", nil).Publish(tp.UpEvt(), raw)
	}
	waitFor("every event stored", func() bool {
		for _, id := range ids[:21] {
			if li, _ := hs[0].Locker(id); li.Events != 1 {
				return false
			}
		}
		return true
	})
	var got [2]uint64
	for i, h := range hs {
		all, others := h.ReceivedEvents()
		got[i] = all - before[i]
		if others != 0 {
			t.Errorf("replica %d received %d messages of the other's lockers", i+1, others)
		}
	}
	if got[0]+got[1] != 21 || got[0] == 0 || got[1] == 0 {
		t.Fatalf("events received by each replica: %v, want 21 between them, each some", got)
	}
}
