package requests

import (
	"context"
	"testing"

	"github.com/lockerd/lockerd/sync/hub/circulation"
	"github.com/lockerd/lockerd/sync/protocol"
)

// quickFinder finds a hold for every item at once.
type quickFinder struct{}

func (quickFinder) FindHold(_ context.Context, _, item, _ string) (circulation.Hold, error) {
	return circulation.Hold{Item: item, Patron: "P1"}, nil
}
func (quickFinder) RecordHold(string, string, string, circulation.Hold, string, error) error {
	return nil
}

// FuzzQuestions: whatever a locker puts in a question's data, the
// service answers within bounds or drops it, and never panics.
func FuzzQuestions(f *testing.F) {
	f.Add([]byte(`{"item":"B1","by":"staff","visit":"V1"}`))
	f.Add([]byte(`{"item":"B1","card":"P2","by":"staff","visit":"V1","loading":["H-1"]}`))
	f.Add([]byte(`{"card":"2100","pin":"1234"}`))
	f.Add([]byte(`{"item":"","loading":[1,2]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		h := &fakeHub{replies: map[string]any{}, got: make(chan string, 4)}
		s := New(Config{Hub: h, Finder: quickFinder{}})
		for _, typ := range []string{protocol.TypeReqHold, protocol.TypeReqPatron} {
			m := protocol.Message{V: 1, Type: typ, ID: "q1", Locker: "L1", Data: data}
			if typ == protocol.TypeReqHold {
				var req protocol.ReqHold
				if protocol.DecodeData(m, &req) == nil {
					s.Scan(context.Background(), "L1", req) // the look-up itself, synchronously
				}
				s.Hold("L1", m)
			} else {
				s.Card("L1", m)
			}
		}
	})
}
