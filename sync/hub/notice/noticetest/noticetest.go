package noticetest

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lockerd/lockerd/sync/hub/notice"
)

// Mem is an in-memory notice store.
type Mem struct {
	mu      sync.Mutex
	notices []notice.Notice
}

// NewMem makes an empty store.
func NewMem() *Mem { return &Mem{} }

func (m *Mem) View(fn func(notice.Tx) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return fn(&memTx{m: m, notices: slices.Clone(m.notices)})
}

func (m *Mem) Update(fn func(notice.Tx) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	tx := &memTx{m: m, notices: slices.Clone(m.notices)}
	if err := fn(tx); err != nil {
		return err
	}
	m.notices = tx.notices
	return nil
}

type memTx struct {
	m       *Mem
	notices []notice.Notice
}

func (t *memTx) AddNotice(n notice.Notice) (notice.Notice, bool, error) {
	for _, o := range t.notices {
		if o.Key == n.Key {
			return o, false, nil
		}
	}
	n.ID = uint64(len(t.notices) + 1)
	t.notices = append(t.notices, n)
	return n, true, nil
}

func (t *memTx) PutNotice(n notice.Notice) error {
	for i, o := range t.notices {
		if o.ID == n.ID {
			t.notices[i] = n
			return nil
		}
	}
	return nil
}

func (t *memTx) Notice(id uint64) (notice.Notice, bool, error) {
	for _, o := range t.notices {
		if o.ID == id {
			return o, true, nil
		}
	}
	return notice.Notice{}, false, nil
}

func (t *memTx) PendingNotices(limit int) ([]notice.Notice, error) {
	var out []notice.Notice
	for _, o := range t.notices {
		if (o.State == notice.StatePending || o.State == notice.StateSending) && (limit <= 0 || len(out) < limit) {
			out = append(out, o)
		}
	}
	return out, nil
}

func (t *memTx) Notices(after uint64, limit int) ([]notice.Notice, error) {
	var out []notice.Notice
	for _, o := range t.notices {
		if o.ID > after && (limit <= 0 || len(out) < limit) {
			out = append(out, o)
		}
	}
	return out, nil
}

func (t *memTx) OrderNotices(order string) ([]notice.Notice, error) {
	var out []notice.Notice
	for _, o := range t.notices {
		if o.Order == order {
			out = append(out, o)
		}
	}
	return out, nil
}

// TestStore is the conformance suite of a notice store: numbering, one
// notice per key, the pending list (pending and sending, by id, bounded),
// state changes, pages, an order's notices, a rolled-back update leaving
// nothing.
func TestStore(t *testing.T, s notice.Store) {
	t.Helper()
	at := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	mk := func(order, kind, ch string) notice.Notice {
		return notice.Notice{Key: order + "/" + kind + "/" + ch, Order: order, Locker: "L1", Kind: kind, Channel: ch, To: "r@example.org",
			Lang: "zh", Sealed: []byte{1, 2, 3}, Created: at, Deadline: at.Add(time.Hour), NextAt: at, State: notice.StatePending}
	}
	var first notice.Notice
	if err := s.Update(func(tx notice.Tx) error {
		var added bool
		var err error
		if first, added, err = tx.AddNotice(mk("O1", notice.KindReady, notice.ChannelEmail)); err != nil || !added || first.ID == 0 {
			t.Fatalf("add: %+v %v %v", first, added, err)
		}
		again, added, err := tx.AddNotice(mk("O1", notice.KindReady, notice.ChannelEmail))
		if err != nil || added || again.ID != first.ID {
			t.Fatalf("the same key added again: %+v %v %v", again, added, err)
		}
		for _, n := range []notice.Notice{mk("O1", notice.KindReady, notice.ChannelHTTP), mk("O2", notice.KindReady, notice.ChannelEmail), mk("O1", notice.KindExpired, notice.ChannelEmail)} {
			if _, added, err := tx.AddNotice(n); err != nil || !added {
				t.Fatalf("add %s: %v %v", n.Key, added, err)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	s.View(func(tx notice.Tx) error {
		got, found, err := tx.Notice(first.ID)
		if err != nil || !found || got.Key != first.Key || !slices.Equal(got.Sealed, []byte{1, 2, 3}) || !got.Created.Equal(at) {
			t.Fatalf("notice %d: %+v %v %v", first.ID, got, found, err)
		}
		if _, found, _ := tx.Notice(9999); found {
			t.Fatal("a notice that is not there found")
		}
		pend, _ := tx.PendingNotices(0)
		if len(pend) != 4 || pend[0].ID != first.ID {
			t.Fatalf("pending %+v", pend)
		}
		if two, _ := tx.PendingNotices(2); len(two) != 2 {
			t.Fatalf("pending, at most 2: %d", len(two))
		}
		if o1, _ := tx.OrderNotices("O1"); len(o1) != 3 {
			t.Fatalf("O1's notices: %d", len(o1))
		}
		return nil
	})
	// Sending stays pending; sent leaves the list and drops its code.
	s.Update(func(tx notice.Tx) error {
		n, _, _ := tx.Notice(first.ID)
		n.State = notice.StateSending
		return tx.PutNotice(n)
	})
	s.Update(func(tx notice.Tx) error {
		pend, _ := tx.PendingNotices(0)
		if len(pend) != 4 || pend[0].State != notice.StateSending {
			t.Fatalf("a sending notice left the pending list: %+v", pend)
		}
		n := pend[1]
		n.State, n.Sealed, n.Sent = notice.StateSent, nil, at
		return tx.PutNotice(n)
	})
	s.View(func(tx notice.Tx) error {
		pend, _ := tx.PendingNotices(0)
		if len(pend) != 3 {
			t.Fatalf("pending after one sent: %d", len(pend))
		}
		all, _ := tx.Notices(0, 0)
		if len(all) != 4 || all[1].State != notice.StateSent || all[1].Sealed != nil {
			t.Fatalf("all %+v", all)
		}
		page, _ := tx.Notices(all[1].ID, 1)
		if len(page) != 1 || page[0].ID != all[2].ID {
			t.Fatalf("page after %d: %+v", all[1].ID, page)
		}
		return nil
	})
	// A failed update leaves nothing.
	if err := s.Update(func(tx notice.Tx) error {
		tx.AddNotice(mk("O9", notice.KindReady, notice.ChannelEmail))
		return errFailed
	}); err != errFailed {
		t.Fatalf("update: %v", err)
	}
	s.View(func(tx notice.Tx) error {
		if o9, _ := tx.OrderNotices("O9"); len(o9) != 0 {
			t.Fatal("a rolled-back notice kept")
		}
		return nil
	})
}

type failed struct{}

func (failed) Error() string { return "failed on purpose" }

var errFailed error = failed{}
