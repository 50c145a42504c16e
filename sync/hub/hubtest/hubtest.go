package hubtest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lockerd/lockerd/sync/hub"
	"github.com/lockerd/lockerd/sync/hub/api"
	"github.com/lockerd/lockerd/sync/hub/auth"
	"github.com/lockerd/lockerd/sync/hub/hubbolt"
	"github.com/lockerd/lockerd/sync/hub/hubclient"
	"github.com/lockerd/lockerd/sync/hub/requests"
)

// Start runs a hub with cfg (a bbolt Store in a temp dir and Log filled in if empty) until
// the test ends, once it is connected to its broker.
func Start(t testing.TB, cfg hub.Config) *hub.Hub {
	t.Helper()
	if cfg.Store == nil {
		cfg.Store = BoltStore(t, filepath.Join(t.TempDir(), "hub.db"))
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	answersFor := requests.Wire(&cfg, 0) // as lockerhub serve does
	h, err := hub.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	answersFor(h)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; h.Close() })
	for deadline := time.Now().Add(10 * time.Second); !h.Connected(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("hub did not connect to its broker")
		}
	}
	return h
}

// Serve serves h's API on a test server until the test ends and returns
// a client with a token of scopes (admin when none are given).
func Serve(t testing.TB, h *hub.Hub, scopes ...string) *hubclient.Client {
	t.Helper()
	srv := httptest.NewServer(api.New(api.ForHub(h)))
	t.Cleanup(srv.Close)
	c := hubclient.New(strings.TrimPrefix(srv.URL, "http://"))
	c.Token = Token(t, h, scopes...)
	return c
}

// Token makes a token of scopes (admin when none are given) and returns
// its secret.
func Token(t testing.TB, h *hub.Hub, scopes ...string) string {
	t.Helper()
	if len(scopes) == 0 {
		scopes = []string{auth.ScopeAdmin}
	}
	secret, _, err := h.Auth().CreateToken(fmt.Sprintf("test-%d", tokenSeq.Add(1)), scopes, "test")
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

var tokenSeq atomic.Int64

// BoltStore opens the hub's bbolt store at path (created if need be).
func BoltStore(t testing.TB, path string) hub.Store {
	t.Helper()
	s, err := hubbolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
