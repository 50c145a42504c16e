package brokertest

import (
	"io"
	"log/slog"
	"testing"

	"github.com/lockerd/lockerd/sync/broker"
)

// StartEmbedded starts lockerhub's embedded broker on a free loopback port
// and returns its URL; it is closed when the test ends.
func StartEmbedded(t testing.TB, prefix, central string) string {
	t.Helper()
	b, err := broker.Start(broker.Config{Addr: "127.0.0.1:0", Prefix: prefix, Central: central,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return "tcp://" + b.Addr()
}
