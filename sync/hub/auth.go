package hub

import (
	"context"
	"time"

	"github.com/lockerd/lockerd/sync/hub/auth"
)

// Remote opens per token: 5 at once, then one every 6 s (10 a minute).
const (
	openBurst = 5
	openEvery = 6 * time.Second
)

type ctxKey struct{}

// Caller is the token a request came with (the zero auth.Token when none).
func Caller(ctx context.Context) auth.Token {
	t, _ := ctx.Value(ctxKey{}).(auth.Token)
	return t
}
