package locker_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/locker/lockertest"
)

// TestBruteForceAgainstLockout tries random 8-character codes at full
// scanner speed (10 scans a second) for a simulated day against a locker
// holding 12,000 live orders, with the default policy. It counts how many
// guesses the policy lets through to a code lookup: docs/reliability.md
// turns that rate into the expected time to guess a valid code.
func TestBruteForceAgainstLockout(t *testing.T) {
	c := lockertest.NewCabinet(t, lockertest.Settings())
	const live = 12000
	exp := c.Clock.Now().Add(72 * time.Hour)
	err := c.Store.Update(func(tx locker.Tx) error {
		for i := 0; i < live; i++ {
			code, err := locker.NewCode(locker.DefaultCodeLen)
			if err != nil {
				return err
			}
			o := locker.Order{ID: fmt.Sprintf("O%05d", i), Rev: 1, State: locker.OrderReady, Size: locker.SizeS,
				CodeHash: lockertest.Key.Hash(code), ExpiresAt: exp, Loaded: true, Compartments: []string{"S1"}}
			if err := tx.PutOrder(o); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	const rate = 10 // scans per second
	const day = 24 * time.Hour
	evaluated, lockedOut, opened := 0, 0, 0
	for elapsed := time.Duration(0); elapsed < day; elapsed += time.Second / rate {
		b := make([]byte, locker.DefaultCodeLen)
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		res := scan(t, c, "front", string(b))
		switch {
		case res.Outcome == locker.OutcomeOpened:
			opened++
		case res.Reason == locker.DenyLockedOut:
			lockedOut++
		default:
			evaluated++
		}
		c.Clock.Advance(time.Second / rate)
	}
	t.Logf("one day at %d scans/s: %d scans, %d reached a code lookup, %d refused by lockout, %d opened",
		rate, evaluated+lockedOut+opened, evaluated, lockedOut, opened)
	// 5 guesses per lockout: the doubling ramp 30s+1m+2m+4m+8m (930 s, 25
	// guesses), then a 15 min lockout per 5 guesses: 25 + 5*95 = 500.
	if evaluated > 505 || evaluated < 450 {
		t.Fatalf("%d guesses a day got through the lockout; the policy allows 500", evaluated)
	}
	if opened != 0 {
		t.Fatalf("a random guess opened a door (%d)", opened)
	}
	// The outbox holds the denials and one event per lockout, not a flood.
	if n := len(c.Events(t)); n > evaluated+2*(evaluated/5)+10 {
		t.Fatalf("%d events recorded for %d evaluated guesses", n, evaluated)
	}
}
