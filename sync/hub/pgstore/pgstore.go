package pgstore

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lockerd/lockerd/sync/hub"
	"github.com/lockerd/lockerd/sync/hub/alarm"
	"github.com/lockerd/lockerd/sync/hub/auth"
	"github.com/lockerd/lockerd/sync/hub/circulation"
	"github.com/lockerd/lockerd/sync/hub/notice"
	"github.com/lockerd/lockerd/sync/hub/stock"
	"github.com/lockerd/lockerd/sync/hub/webhook"
	"github.com/lockerd/lockerd/sync/protocol"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is the hub's Store on a PostgreSQL database.
type Store struct {
	pool      *pgxpool.Pool
	log       *slog.Logger
	closeOnce sync.Once
	// opTimeout bounds one transaction (all its attempts).
	opTimeout time.Duration
	// retries counts the transactions run again after a serialization
	// failure or a deadlock.
	retries atomic.Uint64
}

// Retries is how many times a transaction was run again because it
// conflicted with a concurrent one.
func (s *Store) Retries() uint64 { return s.retries.Load() }

var _ hub.Store = (*Store)(nil)

// Options of Open.
type Options struct {
	Log *slog.Logger
	// MaxConns bounds the pool (default 16).
	MaxConns int32
}

// maxDSNFile bounds the DSN file (a DSN is a line).
const maxDSNFile = 64 << 10

// ReadDSN reads a DSN from a file (its first non-empty line): the DSN may
// hold a password, so it is never given on a command line.
func ReadDSN(file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", fmt.Errorf("dsn file: %w", err)
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, maxDSNFile+1))
	if err != nil {
		return "", fmt.Errorf("dsn file: %w", err)
	}
	if len(raw) > maxDSNFile {
		return "", fmt.Errorf("dsn file %s: over %d bytes: not a DSN file", file, maxDSNFile)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			return line, nil
		}
	}
	return "", fmt.Errorf("dsn file %s: no DSN in it", file)
}

// Open connects to the database at dsn and brings its schema up to date.
// Every failure is one line that says what to do; nothing is left half
// done (the migrations run in one transaction).
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's message may quote the DSN, password and all: not repeated.
		return nil, errors.New("postgres: the DSN does not parse (want postgres://USER:PASSWORD@HOST:PORT/DB?sslmode=... or key=value pairs)")
	}
	cfg.MaxConns = 16
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 10 * time.Second
	}
	where := fmt.Sprintf("%s@%s:%d/%s", cfg.ConnConfig.User, cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres %s: %w", where, err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres %s: cannot connect: %s", where, oneLine(err))
	}
	s := &Store{pool: pool, log: opts.Log, opTimeout: time.Minute}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres %s: %w", where, err)
	}
	return s, nil
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", " ") }

// Close closes the pool (once; again is nothing).
func (s *Store) Close() error {
	s.closeOnce.Do(s.pool.Close)
	return nil
}

// migration is one embedded SQL file: NNNN_name.sql.
type migration struct {
	version int
	name    string
	sql     string
}

func loadMigrations() ([]migration, error) {
	files, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, f := range files {
		base := path.Base(f)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration file %s: want NNNN_name.sql", base)
		}
		raw, err := migrations.ReadFile(f)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{v, base, string(raw)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i, m := range out {
		if m.version != i+1 {
			return nil, fmt.Errorf("migrations: %s out of sequence (want version %d)", m.name, i+1)
		}
	}
	return out, nil
}

// SchemaVersion is the newest schema this binary knows.
func SchemaVersion() int {
	ms, _ := loadMigrations()
	return len(ms)
}

// migrationLock serialises replicas starting at once on one database.
const migrationLock = 0x6c6f636b65726875 // "lockerhu"

// migrate applies the migrations the database has not had, in order, in
// one transaction; a database at a newer version than this binary knows
// is refused before anything is changed.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("schema: %s", oneLine(err))
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(migrationLock)); err != nil {
		return fmt.Errorf("schema lock: %s", oneLine(err))
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS lockerhub_schema (
		version    integer PRIMARY KEY,
		name       text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("schema table: %s", oneLine(err))
	}
	var have int
	if err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM lockerhub_schema").Scan(&have); err != nil {
		return fmt.Errorf("schema version: %s", oneLine(err))
	}
	if have > len(ms) {
		return fmt.Errorf("the database is at schema version %d, newer than this lockerhub knows (%d): run the lockerhub release that upgraded it, or a newer one", have, len(ms))
	}
	for _, m := range ms[have:] {
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			return fmt.Errorf("schema migration %s: %s", m.name, oneLine(err))
		}
		if _, err := tx.Exec(ctx, "INSERT INTO lockerhub_schema (version, name) VALUES ($1, $2)", m.version, m.name); err != nil {
			return fmt.Errorf("schema migration %s: %s", m.name, oneLine(err))
		}
		s.log.Info("hub store schema migrated", "version", m.version, "migration", m.name)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("schema: %s", oneLine(err))
	}
	return nil
}

// View runs fn in a read-only snapshot.
func (s *Store) View(fn func(hub.Tx) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.opTimeout)
	defer cancel()
	return s.run(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn)
}

// Update runs fn in a serializable transaction. When PostgreSQL reports
// that it conflicted with a concurrent one (another replica storing the
// same events, say), fn runs again on fresh data, after a short random
// pause: fn must not keep state from an earlier attempt (the hub's
// functions reset theirs at the start).
func (s *Store) Update(fn func(hub.Tx) error) error { return s.update(pgx.Serializable, fn) }

// UpdateLockers runs fn in a REPEATABLE READ transaction, retried as
// Update's: for the hub's ingest of events, every one of which writes
// the record of each locker it stores events for (hub.LockerScoped).
// Two such transactions for one locker conflict on that row (the first
// to update it wins, the other is run again), and serializable's
// predicate locks — which two replicas storing disjoint lockers' events
// into the same pages of one index trip over — are not taken.
func (s *Store) UpdateLockers(fn func(hub.Tx) error) error { return s.update(pgx.RepeatableRead, fn) }

var _ hub.LockerScoped = (*Store)(nil)

func (s *Store) update(iso pgx.TxIsoLevel, fn func(hub.Tx) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.opTimeout)
	defer cancel()
	var err error
	for attempt := 0; ; attempt++ {
		err = s.run(ctx, pgx.TxOptions{IsoLevel: iso}, fn)
		if !retryable(err) || attempt >= maxAttempts || ctx.Err() != nil {
			return err
		}
		s.retries.Add(1)
		pause := time.Duration(rand.Int64N(int64(time.Millisecond) << min(attempt, 6)))
		time.Sleep(pause)
	}
}

// maxAttempts bounds the retries of one conflicting transaction.
const maxAttempts = 30

// retryable: a serialization failure or a deadlock, which PostgreSQL asks
// the client to retry.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

func (s *Store) run(ctx context.Context, opts pgx.TxOptions, fn func(hub.Tx) error) error {
	ptx, err := s.pool.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	t := &tx{ctx: ctx, tx: ptx, pending: &pgx.Batch{}}
	if err := fn(t.all()); err != nil {
		ptx.Rollback(ctx)
		if t.failed != nil {
			// fn may have wrapped or replaced the database's error; the
			// database's decides whether to retry.
			return errors.Join(err, t.failed)
		}
		return err
	}
	t.flush()
	if t.failed != nil {
		// A statement failed and fn went on (a lookup whose error it
		// ignored): the transaction is aborted, and is not committed.
		ptx.Rollback(ctx)
		return t.failed
	}
	if err := ptx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres commit: %w", err)
	}
	return nil
}

// tx is one hub.Tx on a pgx transaction.
type tx struct {
	ctx       context.Context
	tx        pgx.Tx
	failed    error             // the first statement that failed
	pending   *pgx.Batch        // writes not yet sent (exec)
	hooks     []webhook.Webhook // the subscriptions, once read (hooksRead)
	hooksRead bool
	events    eventRows // events not yet sent (PutEvent), and where each key's row is
	eventAt   map[hub.EventKey]int
}

// all is t as every capability's part of a transaction.
func (t *tx) all() hub.Tx {
	return hub.Tx{Lockers: t, Events: t, Orders: t, Commands: t, Alarms: t, Circ: t, Auth: t, Webhooks: t, Notices: t, Stock: t, Docs: t, Leases: t}
}

func (t *tx) note(err error) error {
	if err != nil && !errors.Is(err, pgx.ErrNoRows) && t.failed == nil {
		t.failed = err
	}
	return err
}

// exec queues a statement whose result nothing reads (a write): the
// queued ones go to the server together, in one round trip, before the
// next read and at commit (flush), so that storing a batch of events
// costs a few round trips, not a few per event. A write's error is the
// flush's: the transaction fails as it would have.
func (t *tx) exec(sql string, args ...any) error {
	if t.failed != nil {
		return t.failed
	}
	t.pending.Queue(sql, args...)
	if t.pending.Len() >= maxPipelined {
		return t.flush()
	}
	return nil
}

// maxPipelined bounds the writes queued at once.
const maxPipelined = 2000

// flush sends the queued writes and reads their results.
func (t *tx) flush() error {
	if t.failed != nil {
		return t.failed
	}
	if ev := t.events; len(ev.lockers) > 0 {
		t.events, t.eventAt = eventRows{}, nil
		t.pending.Queue(`INSERT INTO events (locker, epoch, seq, id, doc)
			SELECT * FROM unnest($1::text[], $2::int[], $3::bigint[], $4::text[], $5::json[])
			ON CONFLICT (locker, epoch, seq) DO UPDATE SET id = EXCLUDED.id, doc = EXCLUDED.doc`, ev.lockers, ev.epochs, ev.seqs, ev.ids, ev.docs)
	}
	if t.pending.Len() == 0 {
		return nil
	}
	b := t.pending
	t.pending = &pgx.Batch{}
	return t.note(t.tx.SendBatch(t.ctx, b).Close())
}

// query and queryRow read, after the queued writes (a read sees them).
func (t *tx) query(sql string, args ...any) (pgx.Rows, error) {
	if err := t.flush(); err != nil {
		return nil, err
	}
	rows, err := t.tx.Query(t.ctx, sql, args...)
	return rows, t.note(err)
}

func (t *tx) queryRow(sql string, args ...any) pgx.Row {
	if err := t.flush(); err != nil {
		return errRow{err}
	}
	return t.tx.QueryRow(t.ctx, sql, args...)
}

// errRow is a row whose read failed before it was asked for.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// getJSON reads one doc into v; found is false when there is no row.
func (t *tx) getJSON(v any, sql string, args ...any) (bool, error) {
	var raw []byte
	err := t.note(t.queryRow(sql, args...).Scan(&raw))
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, json.Unmarshal(raw, v)
}

// listJSON reads every row's doc (the first column) through add.
func listJSON[T any](t *tx, sql string, args ...any) ([]T, error) {
	rows, err := t.query(sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			return nil, t.note(err)
		}
		var v T
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, t.note(rows.Err())
}

func marshal(v any) ([]byte, error) { return json.Marshal(v) }

// i64 converts a seq or rev for a bigint column.
func i64(v uint64) (int64, error) {
	if v > math.MaxInt64 {
		return 0, fmt.Errorf("%d is beyond the store's range", v)
	}
	return int64(v), nil
}

func (t *tx) Locker(id string) (hub.LockerInfo, error) {
	li := hub.LockerInfo{ID: id}
	_, err := t.getJSON(&li, "SELECT doc FROM lockers WHERE id = $1", id)
	return li, err
}

func (t *tx) PutLocker(li hub.LockerInfo) error {
	raw, err := marshal(li)
	if err != nil {
		return err
	}
	return t.exec("INSERT INTO lockers (id, doc) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET doc = EXCLUDED.doc", li.ID, raw)
}

func (t *tx) Lockers() ([]hub.LockerInfo, error) {
	return listJSON[hub.LockerInfo](t, `SELECT doc FROM lockers ORDER BY id COLLATE "C"`)
}

func (t *tx) Known(id string) (bool, error) {
	var one int
	err := t.note(t.queryRow("SELECT 1 FROM known_lockers WHERE id = $1", id).Scan(&one))
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

func (t *tx) PutKnown(k hub.KnownLocker) error {
	raw, err := marshal(k)
	if err != nil {
		return err
	}
	return t.exec("INSERT INTO known_lockers (id, doc) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET doc = EXCLUDED.doc", k.ID, raw)
}

func (t *tx) KnownLockers() ([]hub.KnownLocker, error) {
	return listJSON[hub.KnownLocker](t, `SELECT doc FROM known_lockers ORDER BY id COLLATE "C"`)
}

func (t *tx) StoreRec(lockerID, store string) (rec hub.StoreRec, found bool, err error) {
	found, err = t.getJSON(&rec, "SELECT doc FROM stores WHERE locker = $1 AND store = $2", lockerID, store)
	return rec, found, err
}

func (t *tx) PutStoreRec(lockerID string, rec hub.StoreRec) error {
	raw, err := marshal(rec)
	if err != nil {
		return err
	}
	return t.exec("INSERT INTO stores (locker, store, doc) VALUES ($1, $2, $3) ON CONFLICT (locker, store) DO UPDATE SET doc = EXCLUDED.doc", lockerID, rec.Store, raw)
}

func (t *tx) StoreRecs(lockerID string) ([]hub.StoreRec, error) {
	return listJSON[hub.StoreRec](t, `SELECT doc FROM stores WHERE locker = $1 ORDER BY (doc->>'epoch')::bigint, store COLLATE "C"`, lockerID)
}

func (t *tx) KnownAmong(ids []string) (map[string]bool, error) {
	rows, err := t.query("SELECT id FROM known_lockers WHERE id = ANY($1)", ids)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, t.note(err)
		}
		out[id] = true
	}
	return out, t.note(rows.Err())
}

func (t *tx) LockersOf(ids []string) (map[string]hub.LockerInfo, error) {
	rows, err := t.query("SELECT doc FROM lockers WHERE id = ANY($1)", ids)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[string]hub.LockerInfo, len(ids))
	for _, id := range ids {
		out[id] = hub.LockerInfo{ID: id}
	}
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			return nil, t.note(err)
		}
		var li hub.LockerInfo
		if err := json.Unmarshal(raw, &li); err != nil {
			return nil, err
		}
		out[li.ID] = li
	}
	return out, t.note(rows.Err())
}

func (t *tx) StoreRecsOf(keys []hub.StoreKey) (map[hub.StoreKey]hub.StoreRec, error) {
	lockers, stores := make([]string, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		lockers[i], stores[i] = k.Locker, k.Store
	}
	rows, err := t.query(`SELECT s.locker, s.doc FROM stores s JOIN unnest($1::text[], $2::text[]) AS k(locker, store)
		ON s.locker = k.locker AND s.store = k.store`, lockers, stores)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[hub.StoreKey]hub.StoreRec{}
	for rows.Next() {
		var locker string
		var raw []byte
		if err := rows.Scan(&locker, &raw); err != nil {
			return nil, t.note(err)
		}
		var rec hub.StoreRec
		if err := json.Unmarshal(raw, &rec); err != nil {
			return nil, err
		}
		out[hub.StoreKey{Locker: locker, Store: rec.Store}] = rec
	}
	return out, t.note(rows.Err())
}

func (t *tx) EventsAt(keys []hub.EventKey) (map[hub.EventKey]protocol.Event, error) {
	lockers, epochs, seqs := make([]string, 0, len(keys)), make([]int64, 0, len(keys)), make([]int64, 0, len(keys))
	for _, k := range keys {
		s, err := i64(k.Seq)
		if err != nil {
			continue // no event is stored there
		}
		lockers, epochs, seqs = append(lockers, k.Locker), append(epochs, int64(k.Epoch)), append(seqs, s)
	}
	out := map[hub.EventKey]protocol.Event{}
	if len(lockers) == 0 {
		return out, nil
	}
	rows, err := t.query(`SELECT e.locker, e.epoch, e.doc FROM events e JOIN unnest($1::text[], $2::int[], $3::bigint[]) AS k(locker, epoch, seq)
		ON e.locker = k.locker AND e.epoch = k.epoch AND e.seq = k.seq`, lockers, epochs, seqs)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var locker string
		var epoch int64
		var raw []byte
		if err := rows.Scan(&locker, &epoch, &raw); err != nil {
			return nil, t.note(err)
		}
		var e protocol.Event
		if err := json.Unmarshal(raw, &e); err != nil {
			return nil, err
		}
		out[hub.EventKey{Locker: locker, Epoch: uint32(epoch), Seq: e.Seq}] = e
	}
	return out, t.note(rows.Err())
}

func (t *tx) HasEvent(lockerID string, epoch uint32, seq uint64) (bool, error) {
	s, err := i64(seq)
	if err != nil {
		return false, nil // no event is stored there
	}
	var one int
	err = t.note(t.queryRow("SELECT 1 FROM events WHERE locker = $1 AND epoch = $2 AND seq = $3", lockerID, int64(epoch), s).Scan(&one))
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

func (t *tx) Event(lockerID string, epoch uint32, seq uint64) (e protocol.Event, found bool, err error) {
	s, err := i64(seq)
	if err != nil {
		return e, false, nil
	}
	found, err = t.getJSON(&e, "SELECT doc FROM events WHERE locker = $1 AND epoch = $2 AND seq = $3", lockerID, int64(epoch), s)
	return e, found, err
}

func (t *tx) PutEvent(lockerID string, epoch uint32, e protocol.Event) error {
	s, err := i64(e.Seq)
	if err != nil {
		return fmt.Errorf("event %s: seq %w", e.ID, err)
	}
	raw, err := marshal(e)
	if err != nil {
		return err
	}
	if t.failed != nil {
		return t.failed
	}
	// Queued as a row of one INSERT for all the events flushed together
	// (a batch of events is one statement); the same key again replaces
	// its row (one statement may not change a row twice).
	k := hub.EventKey{Locker: lockerID, Epoch: epoch, Seq: e.Seq}
	if i, ok := t.eventAt[k]; ok {
		t.events.ids[i], t.events.docs[i] = e.ID, string(raw)
		return nil
	}
	if t.eventAt == nil {
		t.eventAt = map[hub.EventKey]int{}
	}
	t.eventAt[k] = len(t.events.lockers)
	t.events.lockers, t.events.epochs, t.events.seqs = append(t.events.lockers, lockerID), append(t.events.epochs, int64(epoch)), append(t.events.seqs, s)
	t.events.ids, t.events.docs = append(t.events.ids, e.ID), append(t.events.docs, string(raw))
	if len(t.events.lockers) >= maxPipelined {
		return t.flush()
	}
	return nil
}

// eventRows are events queued for one INSERT, column by column.
type eventRows struct {
	lockers      []string
	epochs, seqs []int64
	ids, docs    []string
}

func (t *tx) Events(lockerID string, after hub.Cursor, limit int) ([]hub.StoredEvent, error) {
	epoch, seq := int64(after.Epoch), int64(0)
	if after.Seq >= math.MaxInt64 {
		epoch++ // after every seq of that store
	} else {
		seq = int64(after.Seq)
	}
	sql := "SELECT epoch, doc FROM events WHERE locker = $1 AND (epoch, seq) > ($2, $3) ORDER BY epoch, seq"
	args := []any{lockerID, epoch, seq}
	if after.Seq >= math.MaxInt64 {
		sql = "SELECT epoch, doc FROM events WHERE locker = $1 AND epoch >= $2 ORDER BY epoch, seq"
		args = args[:2]
	}
	if limit > 0 {
		sql += " LIMIT " + strconv.Itoa(limit)
	}
	rows, err := t.query(sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []hub.StoredEvent
	for rows.Next() {
		var ep int64
		var raw []byte
		if err := rows.Scan(&ep, &raw); err != nil {
			return nil, t.note(err)
		}
		e := hub.StoredEvent{Epoch: uint32(ep)}
		if err := json.Unmarshal(raw, &e.Event); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, t.note(rows.Err())
}

func (t *tx) Order(lockerID, orderID string) (o hub.OrderRec, found bool, err error) {
	found, err = t.getJSON(&o, "SELECT doc FROM orders WHERE locker = $1 AND id = $2", lockerID, orderID)
	return o, found, err
}

func (t *tx) PutOrder(o hub.OrderRec) error {
	rev, err := i64(o.Rev)
	if err != nil {
		return fmt.Errorf("order %s: rev %w", o.ID, err)
	}
	raw, err := marshal(o)
	if err != nil {
		return err
	}
	return t.exec(`INSERT INTO orders (locker, id, rev, doc) VALUES ($1, $2, $3, $4)
		ON CONFLICT (locker, id) DO UPDATE SET rev = EXCLUDED.rev, doc = EXCLUDED.doc`, o.Locker, o.ID, rev, raw)
}

func (t *tx) Orders(lockerID string) ([]hub.OrderRec, error) {
	return listJSON[hub.OrderRec](t, `SELECT doc FROM orders WHERE locker = $1 ORDER BY rev, id COLLATE "C"`, lockerID)
}

func (t *tx) NextRev(lockerID string) (uint64, error) {
	var rev int64
	err := t.note(t.queryRow(`INSERT INTO order_revs (locker, rev) VALUES ($1, 1)
		ON CONFLICT (locker) DO UPDATE SET rev = order_revs.rev + 1 RETURNING rev`, lockerID).Scan(&rev))
	return uint64(rev), err
}

func (t *tx) LastRev(lockerID string) (uint64, error) {
	var rev int64
	err := t.note(t.queryRow("SELECT rev FROM order_revs WHERE locker = $1", lockerID).Scan(&rev))
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	return uint64(rev), err
}

func (t *tx) SetLastRev(lockerID string, rev uint64) error {
	r, err := i64(rev)
	if err != nil {
		return err
	}
	return t.exec("INSERT INTO order_revs (locker, rev) VALUES ($1, $2) ON CONFLICT (locker) DO UPDATE SET rev = EXCLUDED.rev", lockerID, r)
}

func (t *tx) PutPending(lockerID string, rev uint64, part int, p hub.PendingMsg) error {
	r, err := i64(rev)
	if err != nil {
		return err
	}
	p.Rev, p.Part = rev, part
	raw, err := marshal(p)
	if err != nil {
		return err
	}
	return t.exec(`INSERT INTO pending (locker, rev, part, doc) VALUES ($1, $2, $3, $4)
		ON CONFLICT (locker, rev, part) DO UPDATE SET doc = EXCLUDED.doc`, lockerID, r, part, raw)
}

func (t *tx) PrunePending(lockerID string, rev uint64) ([]hub.PendingMsg, error) {
	r := int64(math.MaxInt64)
	if rev < math.MaxInt64 {
		r = int64(rev)
	}
	// Revs start at 1: up to 0 is nothing to drop (and allowed in a
	// read-only transaction, as on bbolt).
	if rev > 0 {
		if err := t.exec("DELETE FROM pending WHERE locker = $1 AND rev <= $2", lockerID, r); err != nil {
			return nil, err
		}
	}
	return listJSON[hub.PendingMsg](t, "SELECT doc FROM pending WHERE locker = $1 ORDER BY rev, part", lockerID)
}

func (t *tx) DropPending(lockerID, msgID string) (bool, error) {
	if msgID == "" {
		return false, nil
	}
	if err := t.flush(); err != nil {
		return false, err
	}
	tag, err := t.tx.Exec(t.ctx, "DELETE FROM pending WHERE locker = $1 AND doc->>'id' = $2", lockerID, msgID)
	if t.note(err) != nil {
		return false, err
	}
	return tag.RowsAffected() > 0, nil
}

func (t *tx) Command(id string) (rec hub.CmdRec, found bool, err error) {
	found, err = t.getJSON(&rec, "SELECT doc FROM commands WHERE id = $1", id)
	return rec, found, err
}

func (t *tx) PutCommand(rec hub.CmdRec) error {
	raw, err := marshal(rec)
	if err != nil {
		return err
	}
	return t.exec("INSERT INTO commands (id, locker, doc) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET doc = EXCLUDED.doc", rec.ID, rec.Locker, raw)
}

func (t *tx) Commands() ([]hub.CmdRec, error) {
	return listJSON[hub.CmdRec](t, `SELECT doc FROM commands ORDER BY id COLLATE "C"`)
}

// next takes the next number of the gapless counter name (from 1).
func (t *tx) next(name string) (int64, error) {
	var n int64
	err := t.note(t.queryRow(`INSERT INTO counters (name, value) VALUES ($1, 1)
		ON CONFLICT (name) DO UPDATE SET value = counters.value + 1 RETURNING value`, name).Scan(&n))
	return n, err
}

func (t *tx) AddAlarm(a alarm.Alarm) (alarm.Alarm, error) {
	n, err := t.next("alarms")
	if err != nil {
		return a, err
	}
	a.Seq = uint64(n)
	return a, t.PutAlarm(a)
}

func (t *tx) PutAlarm(a alarm.Alarm) error {
	seq, err := i64(a.Seq)
	if err != nil || seq == 0 {
		return fmt.Errorf("alarm seq %d: out of range", a.Seq)
	}
	raw, err := marshal(a)
	if err != nil {
		return err
	}
	var key *string
	if a.Unresolved() {
		k := a.Key()
		key = &k
	}
	return t.exec("INSERT INTO alarms (seq, doc, open_key) VALUES ($1, $2, $3) ON CONFLICT (seq) DO UPDATE SET doc = EXCLUDED.doc, open_key = EXCLUDED.open_key",
		seq, raw, key)
}

func (t *tx) OpenAlarm(key string) (a alarm.Alarm, found bool, err error) {
	found, err = t.getJSON(&a, "SELECT doc FROM alarms WHERE open_key = $1 ORDER BY seq DESC LIMIT 1", key)
	return a, found, err
}

func (t *tx) OpenAlarms() ([]alarm.Alarm, error) {
	return listJSON[alarm.Alarm](t, "SELECT doc FROM alarms WHERE open_key IS NOT NULL ORDER BY seq")
}

func (t *tx) Alarms(after uint64) ([]alarm.Alarm, error) {
	if after >= math.MaxInt64 {
		return nil, nil
	}
	return listJSON[alarm.Alarm](t, "SELECT doc FROM alarms WHERE seq > $1 ORDER BY seq", int64(after))
}

func (t *tx) AddCirc(c circulation.CircRec) (circulation.CircRec, error) {
	n, err := t.next("circulation")
	if err != nil {
		return c, err
	}
	c.ID = uint64(n)
	return c, t.PutCirc(c)
}

func (t *tx) PutCirc(c circulation.CircRec) error {
	id, err := i64(c.ID)
	if err != nil || id == 0 {
		return fmt.Errorf("circulation transaction id %d: out of range", c.ID)
	}
	raw, err := marshal(c)
	if err != nil {
		return err
	}
	return t.exec("INSERT INTO circulation (id, open, doc) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET open = EXCLUDED.open, doc = EXCLUDED.doc",
		id, c.Open(), raw)
}

func (t *tx) Circ(id uint64) (c circulation.CircRec, found bool, err error) {
	n, err := i64(id)
	if err != nil {
		return c, false, nil
	}
	found, err = t.getJSON(&c, "SELECT doc FROM circulation WHERE id = $1", n)
	return c, found, err
}

func (t *tx) Circs(after uint64, limit int) ([]circulation.CircRec, error) {
	if after >= math.MaxInt64 {
		return nil, nil
	}
	sql := "SELECT doc FROM circulation WHERE id > $1 ORDER BY id"
	if limit > 0 {
		sql += " LIMIT " + strconv.Itoa(limit)
	}
	return listJSON[circulation.CircRec](t, sql, int64(after))
}

func (t *tx) OpenCircs(limit int) ([]circulation.CircRec, error) {
	sql := "SELECT doc FROM circulation WHERE open ORDER BY id"
	if limit > 0 {
		sql += " LIMIT " + strconv.Itoa(limit)
	}
	return listJSON[circulation.CircRec](t, sql)
}

func (t *tx) PutToken(tok auth.Token) error {
	raw, err := marshal(tok)
	if err != nil {
		return err
	}
	return t.exec("INSERT INTO tokens (id, doc) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET doc = EXCLUDED.doc", tok.ID, raw)
}

func (t *tx) Token(id string) (tok auth.Token, found bool, err error) {
	found, err = t.getJSON(&tok, "SELECT doc FROM tokens WHERE id = $1", id)
	return tok, found, err
}

func (t *tx) Tokens() ([]auth.Token, error) {
	return listJSON[auth.Token](t, `SELECT doc FROM tokens ORDER BY id COLLATE "C"`)
}

func (t *tx) AddAudit(a auth.AuditRec) (auth.AuditRec, error) {
	n, err := t.next("audit")
	if err != nil {
		return a, err
	}
	a.Seq = uint64(n)
	raw, err := marshal(a)
	if err != nil {
		return a, err
	}
	return a, t.exec("INSERT INTO audit (seq, doc) VALUES ($1, $2)", n, raw)
}

func (t *tx) Audit(after uint64, limit int) ([]auth.AuditRec, error) {
	if after >= math.MaxInt64 {
		return nil, nil
	}
	sql := "SELECT doc FROM audit WHERE seq > $1 ORDER BY seq"
	if limit > 0 {
		sql += " LIMIT " + strconv.Itoa(limit)
	}
	return listJSON[auth.AuditRec](t, sql, int64(after))
}

func (t *tx) PutWebhook(w webhook.Webhook) error {
	raw, err := marshal(w)
	if err != nil {
		return err
	}
	t.hooks, t.hooksRead = nil, false
	return t.exec("INSERT INTO webhooks (id, doc) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET doc = EXCLUDED.doc", w.ID, raw)
}

// Webhooks is read once per transaction (every event stored asks which
// subscriptions want it), and again after a PutWebhook.
func (t *tx) Webhooks() ([]webhook.Webhook, error) {
	if !t.hooksRead {
		hooks, err := listJSON[webhook.Webhook](t, `SELECT doc FROM webhooks ORDER BY id COLLATE "C"`)
		if err != nil {
			return nil, err
		}
		t.hooks, t.hooksRead = hooks, true
	}
	return slices.Clone(t.hooks), nil
}

func (t *tx) AddDelivery(d webhook.Delivery) (webhook.Delivery, error) {
	n, err := t.next("deliveries")
	if err != nil {
		return d, err
	}
	d.ID = uint64(n)
	return d, t.PutDelivery(d)
}

func (t *tx) PutDelivery(d webhook.Delivery) error {
	id, err := i64(d.ID)
	if err != nil || id == 0 {
		return fmt.Errorf("delivery id %d: out of range", d.ID)
	}
	raw, err := marshal(d)
	if err != nil {
		return err
	}
	return t.exec("INSERT INTO deliveries (id, pending, doc) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET pending = EXCLUDED.pending, doc = EXCLUDED.doc",
		id, d.State == webhook.DeliveryPending, raw)
}

func (t *tx) Delivery(id uint64) (d webhook.Delivery, found bool, err error) {
	n, err := i64(id)
	if err != nil {
		return d, false, nil
	}
	found, err = t.getJSON(&d, "SELECT doc FROM deliveries WHERE id = $1", n)
	return d, found, err
}

func (t *tx) PendingDeliveries(limit int) ([]webhook.Delivery, error) {
	sql := "SELECT doc FROM deliveries WHERE pending ORDER BY id"
	if limit > 0 {
		sql += " LIMIT " + strconv.Itoa(limit)
	}
	return listJSON[webhook.Delivery](t, sql)
}

func (t *tx) Deliveries(after uint64, limit int) ([]webhook.Delivery, error) {
	if after >= math.MaxInt64 {
		return nil, nil
	}
	sql := "SELECT doc FROM deliveries WHERE id > $1 ORDER BY id"
	if limit > 0 {
		sql += " LIMIT " + strconv.Itoa(limit)
	}
	return listJSON[webhook.Delivery](t, sql, int64(after))
}

// AddNotice adds n unless its key is there. The key's row is read first;
// two transactions adding the same key at once conflict on the unique key
// and one runs again, finding it.
func (t *tx) AddNotice(n notice.Notice) (notice.Notice, bool, error) {
	var there notice.Notice
	found, err := t.getJSON(&there, "SELECT doc FROM notices WHERE key = $1", n.Key)
	if err != nil || found {
		return there, false, err
	}
	id, err := t.next("notices")
	if err != nil {
		return n, false, err
	}
	n.ID = uint64(id)
	return n, true, t.PutNotice(n)
}

func (t *tx) PutNotice(n notice.Notice) error {
	id, err := i64(n.ID)
	if err != nil || id == 0 {
		return fmt.Errorf("notice id %d: out of range", n.ID)
	}
	raw, err := marshal(n)
	if err != nil {
		return err
	}
	return t.exec("INSERT INTO notices (id, key, ord, pending, doc) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO UPDATE SET pending = EXCLUDED.pending, doc = EXCLUDED.doc",
		id, n.Key, n.Order, n.State == notice.StatePending || n.State == notice.StateSending, raw)
}

func (t *tx) Notice(id uint64) (n notice.Notice, found bool, err error) {
	v, err := i64(id)
	if err != nil {
		return n, false, nil
	}
	found, err = t.getJSON(&n, "SELECT doc FROM notices WHERE id = $1", v)
	return n, found, err
}

func (t *tx) PendingNotices(limit int) ([]notice.Notice, error) {
	sql := "SELECT doc FROM notices WHERE pending ORDER BY id"
	if limit > 0 {
		sql += " LIMIT " + strconv.Itoa(limit)
	}
	return listJSON[notice.Notice](t, sql)
}

func (t *tx) Notices(after uint64, limit int) ([]notice.Notice, error) {
	if after >= math.MaxInt64 {
		return nil, nil
	}
	sql := "SELECT doc FROM notices WHERE id > $1 ORDER BY id"
	if limit > 0 {
		sql += " LIMIT " + strconv.Itoa(limit)
	}
	return listJSON[notice.Notice](t, sql, int64(after))
}

func (t *tx) OrderNotices(order string) ([]notice.Notice, error) {
	return listJSON[notice.Notice](t, "SELECT doc FROM notices WHERE ord = $1 ORDER BY id", order)
}

// ReplaceStock replaces the stock with items, in the transaction's
// pipeline (a list of 12,000 is a few round trips).
func (t *tx) ReplaceStock(items []stock.Item) error {
	if err := t.exec("DELETE FROM stock"); err != nil {
		return err
	}
	for chunk := range slices.Chunk(items, 1000) {
		codes, docs := make([]string, len(chunk)), make([]string, len(chunk))
		for i, it := range chunk {
			raw, err := marshal(it)
			if err != nil {
				return err
			}
			codes[i], docs[i] = it.Barcode, string(raw)
		}
		if err := t.exec("INSERT INTO stock (barcode, doc) SELECT * FROM unnest($1::text[], $2::json[])", codes, docs); err != nil {
			return err
		}
	}
	return nil
}

func (t *tx) StockItem(barcode string) (it stock.Item, found bool, err error) {
	found, err = t.getJSON(&it, "SELECT doc FROM stock WHERE barcode = $1", barcode)
	return it, found, err
}

func (t *tx) Stock(after string, limit int) ([]stock.Item, error) {
	sql := "SELECT doc FROM stock WHERE barcode > $1 ORDER BY barcode"
	if limit > 0 {
		sql += " LIMIT " + strconv.Itoa(limit)
	}
	return listJSON[stock.Item](t, sql, after)
}

func (t *tx) PutUser(u auth.User) error {
	raw, err := marshal(u)
	if err != nil {
		return err
	}
	return t.exec("INSERT INTO users (name, doc) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET doc = EXCLUDED.doc", u.Name, raw)
}

func (t *tx) User(name string) (u auth.User, found bool, err error) {
	found, err = t.getJSON(&u, "SELECT doc FROM users WHERE name = $1", name)
	return u, found, err
}

func (t *tx) Users() ([]auth.User, error) {
	return listJSON[auth.User](t, `SELECT doc FROM users ORDER BY name COLLATE "C"`)
}

func (t *tx) PutDoc(kind, id string, doc any) error {
	raw, err := marshal(doc)
	if err != nil {
		return err
	}
	return t.exec("INSERT INTO docs (kind, id, doc) VALUES ($1, $2, $3) ON CONFLICT (kind, id) DO UPDATE SET doc = EXCLUDED.doc", kind, id, raw)
}

func (t *tx) Doc(kind, id string, into any) (bool, error) {
	return t.getJSON(into, "SELECT doc FROM docs WHERE kind = $1 AND id = $2", kind, id)
}

func (t *tx) Docs(kind string) ([]json.RawMessage, error) {
	return listJSON[json.RawMessage](t, `SELECT doc FROM docs WHERE kind = $1 ORDER BY id COLLATE "C"`, kind)
}

func (t *tx) Claim(name, holder string, ttl time.Duration) (bool, error) {
	var got string
	err := t.note(t.queryRow(`INSERT INTO leases (name, holder, expires) VALUES ($1, $2, now() + $3 * interval '1 microsecond')
		ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires = EXCLUDED.expires
		WHERE leases.holder = EXCLUDED.holder OR leases.expires < now()
		RETURNING holder`, name, holder, ttl.Microseconds()).Scan(&got))
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil // held by another, not expired
	}
	return err == nil && got == holder, err
}

func (t *tx) Release(name, holder string) error {
	return t.exec("DELETE FROM leases WHERE name = $1 AND holder = $2", name, holder)
}

func (t *tx) Held(prefix string) ([]hub.Lease, error) {
	rows, err := t.query(`SELECT name, holder FROM leases WHERE starts_with(name, $1) AND expires >= now() ORDER BY name COLLATE "C"`, prefix)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []hub.Lease
	for rows.Next() {
		var l hub.Lease
		if err := rows.Scan(&l.Name, &l.Holder); err != nil {
			return nil, t.note(err)
		}
		out = append(out, l)
	}
	return out, t.note(rows.Err())
}
