package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/lockerd/lockerd/locker/loopback"
)

// EnvDSN names an existing server for the tests (its DSN); unset, Main
// starts one.
const EnvDSN = "LOCKERD_TEST_PG"

// Server is a PostgreSQL server the tests may create databases on.
type Server struct {
	// DSN reaches the server's maintenance database as a superuser.
	DSN  string
	dir  string // "" for a server not started here
	data string
	cred *syscall.Credential
	bin  string
	opts string // the server's options (pg_ctl -o), to start it again
}

// Options of a started server.
type Options struct {
	// Durable keeps fsync and synchronous commit on (benchmarks); tests
	// run without them, since the server is thrown away.
	Durable bool
}

// BinDir finds PostgreSQL's server programs: Debian keeps them under
// /usr/lib/postgresql/VERSION/bin (the newest is taken), other systems on
// PATH.
func BinDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "pg_ctl")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("PostgreSQL's server programs (initdb, pg_ctl) are not installed: apt-get install postgresql (make test does it as root), or set " + EnvDSN + " to the DSN of a server the tests may create databases on")
}

func version(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// Start initialises and starts a server in a new temp directory.
func Start(opts Options) (*Server, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "lockerd-pg-")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, data: filepath.Join(dir, "data"), bin: bin}
	if os.Geteuid() == 0 {
		// PostgreSQL will not run as root: as the postgres user (made by
		// Debian's package), owning the temp directory.
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("running as root, the test server needs the postgres user to run as (Debian's postgresql package makes it): %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	if out, err := s.run("initdb", "-D", s.data, "-U", "lockerd", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %w: %s", err, out)
	}
	port, err := loopback.FreePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	o := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c max_connections=300", port, dir)
	if !opts.Durable {
		o += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
	}
	s.opts = o
	if err := s.start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s.DSN = fmt.Sprintf("postgres://lockerd@127.0.0.1:%d/postgres?sslmode=disable", port)
	return s, nil
}

func (s *Server) start() error {
	if out, err := s.run("pg_ctl", "-D", s.data, "-o", s.opts, "-l", filepath.Join(s.dir, "server.log"), "-w", "-t", "60", "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(s.dir, "server.log"))
		return fmt.Errorf("pg_ctl start: %w: %s\n%s", err, out, log)
	}
	return nil
}

// Crash stops a server started here at once, as a machine losing power
// would (pg_ctl -m immediate: no checkpoint, every connection cut); Start
// brings it back on the same port, recovering from its WAL.
func (s *Server) Crash() error {
	if s.dir == "" {
		return errors.New("not a server started here")
	}
	if out, err := s.run("pg_ctl", "-D", s.data, "-m", "immediate", "-w", "stop"); err != nil {
		return fmt.Errorf("pg_ctl stop: %w: %s", err, out)
	}
	return nil
}

// Restart starts a server stopped by Crash again.
func (s *Server) Restart() error {
	if s.dir == "" {
		return errors.New("not a server started here")
	}
	return s.start()
}

func (s *Server) run(prog string, args ...string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(s.bin, prog), args...)
	cmd.Dir = s.dir
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	return cmd.CombinedOutput()
}

// Stop stops a server started here and removes its directory.
func (s *Server) Stop() {
	if s.dir == "" {
		return
	}
	s.run("pg_ctl", "-D", s.data, "-m", "immediate", "-w", "stop")
	os.RemoveAll(s.dir)
}

// PIDs are the server's processes (the postmaster and its children), for
// a benchmark's CPU accounting; none for a server not started here.
func (s *Server) PIDs() []int {
	if s.dir == "" {
		return nil
	}
	raw, err := os.ReadFile(filepath.Join(s.data, "postmaster.pid"))
	if err != nil {
		return nil
	}
	master, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(raw), "\n", 2)[0]))
	if err != nil {
		return nil
	}
	pids := []int{master}
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat"))
		if err != nil {
			continue
		}
		st := string(stat)
		f := strings.Fields(st[strings.LastIndex(st, ")")+2:])
		if len(f) > 1 && f[1] == strconv.Itoa(master) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// NewDB creates a fresh database and returns its DSN.
func (s *Server) NewDB(ctx context.Context) (string, error) {
	var b [6]byte
	rand.Read(b[:])
	name := "t_" + hex.EncodeToString(b[:])
	conn, err := pgx.Connect(ctx, s.DSN)
	if err != nil {
		return "", fmt.Errorf("test PostgreSQL at %s: %w", s.DSN, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("create database: %w", err)
	}
	u, err := url.Parse(s.DSN)
	if err != nil {
		return "", err
	}
	u.Path = "/" + name
	return u.String(), nil
}

// DropDB drops a database NewDB made.
func (s *Server) DropDB(ctx context.Context, dsn string) error {
	u, err := url.Parse(dsn)
	if err != nil {
		return err
	}
	name := strings.TrimPrefix(u.Path, "/")
	if !strings.HasPrefix(name, "t_") {
		return fmt.Errorf("not a test database: %q", name)
	}
	conn, err := pgx.Connect(ctx, s.DSN)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	return err
}

var (
	mu      sync.Mutex
	shared  *Server
	failure error
)

// Main runs a test binary with a server: the one EnvDSN names, or one
// started for it and stopped after. Use it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
func Main(m *testing.M) int {
	mu.Lock()
	if dsn := os.Getenv(EnvDSN); dsn != "" {
		shared = &Server{DSN: dsn}
	} else {
		shared, failure = Start(Options{})
	}
	mu.Unlock()
	code := m.Run()
	if shared != nil {
		shared.Stop()
	}
	return code
}

// DB returns the DSN of a fresh database for this test, dropped when it
// ends. It fails the test (never skips) when no server could be had.
func DB(t testing.TB) string {
	t.Helper()
	mu.Lock()
	s, err := shared, failure
	mu.Unlock()
	if s == nil && err == nil {
		err = errors.New("pgtest.Main did not run: call it from the package's TestMain")
	}
	if err != nil {
		t.Fatalf("no PostgreSQL for this test: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dsn, err := s.NewDB(ctx)
	if err != nil {
		t.Fatalf("no PostgreSQL database for this test: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.DropDB(ctx, dsn); err != nil {
			t.Logf("drop test database: %v", err)
		}
	})
	return dsn
}
