package mqttlink

import (
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/sync/protocol"
)

// A snapshot arrives in parts (a message holds at most 500 orders), in any
// order, possibly interleaved with a delayed part of an older one. The
// link stages the parts in its State; when every part of the newest
// snapshot is there, the core replaces its orders with the set, read back
// a part at a time. Nothing changes at the core before the last part.

// maxParts bounds a snapshot's parts (5,000,000 orders).
const maxParts = 10000

// stagedPart is a part as staged (the JSON the core's store used when it
// staged parts itself, so parts staged before an upgrade still read).
type stagedPart struct {
	Parts  int            `json:"parts"`
	Rev    uint64         `json:"rev"`
	Orders []locker.Order `json:"orders"`
}

// errSnapshotGone: the staged parts changed under the apply (cleared by
// the expiry, or replaced by a newer snapshot): the apply stops; the
// central library sends the snapshot again if it is still wanted.
var errSnapshotGone = errors.New("staged snapshot gone during its apply")

// stageSnapshot stages one part of d (its orders already converted) and,
// with the last part, has the core replace its orders.
func (k *Link) stageSnapshot(d protocol.OrdersSnapshot, orders []locker.Order) (locker.OrdersResult, error) {
	if d.SnapID == "" || d.Parts < 1 || d.Part < 1 || d.Part > d.Parts || d.Parts > maxParts {
		return locker.OrdersResult{}, fmt.Errorf("snapshot %q: bad part %d of %d", d.SnapID, d.Part, d.Parts)
	}
	st, err := k.l.SyncState()
	if err != nil {
		return locker.OrdersResult{}, err
	}
	res := locker.OrdersResult{Rev: st.OrdersRev}
	reject := func(format string, args ...any) (locker.OrdersResult, error) {
		res.Rejected = append(res.Rejected, locker.Conflict{Reason: fmt.Sprintf(format, args...)})
		return res, nil
	}
	if d.Rev < st.SnapshotRev {
		return reject("snapshot %s (rev %d) is older than the snapshot applied (rev %d): part %d ignored",
			d.SnapID, d.Rev, st.SnapshotRev, d.Part)
	}
	now := k.now()
	k.expireStaged(now)
	payload, err := json.Marshal(stagedPart{Parts: d.Parts, Rev: d.Rev, Orders: orders})
	if err != nil {
		return res, err
	}
	staged, kept, n, err := k.cfg.State.StagePart(Staged{SnapID: d.SnapID, Rev: d.Rev}, d.Part, payload, now)
	if err != nil {
		return res, err
	}
	if !kept {
		// A delayed part of an older snapshot: the newer one being staged
		// stays whole.
		return reject("snapshot %s (rev %d) is older than snapshot %s (rev %d) being staged: part %d ignored",
			d.SnapID, d.Rev, staged.SnapID, staged.Rev, d.Part)
	}
	if n < d.Parts {
		res.Pending = true
		return res, nil
	}
	res, err = k.l.ReplaceOrders(d.Rev, k.stagedOrders(d.SnapID, d.Parts, d.Rev))
	if err != nil {
		return res, err
	}
	// Killed before this, the parts stay staged: the central library
	// sends the snapshot again (it was not acknowledged), and replacing
	// with the same set again changes nothing.
	if err := k.cfg.State.ClearStaged(); err != nil {
		k.log.Error("staged snapshot not cleared", "snap_id", d.SnapID, "err", err)
	}
	return res, nil
}

// stagedOrders reads the staged parts of snapID back, one at a time.
func (k *Link) stagedOrders(snapID string, parts int, rev uint64) iter.Seq2[[]locker.Order, error] {
	return func(yield func([]locker.Order, error) bool) {
		for p := 1; p <= parts; p++ {
			raw, err := k.cfg.State.StagedPart(snapID, p)
			if err == nil && raw == nil {
				err = fmt.Errorf("snapshot %s part %d: %w", snapID, p, errSnapshotGone)
			}
			var sp stagedPart
			if err == nil {
				if err = json.Unmarshal(raw, &sp); err != nil {
					err = fmt.Errorf("staged part %d: %w", p, err)
				} else if sp.Parts != parts || sp.Rev != rev {
					err = fmt.Errorf("snapshot %s: parts disagree on parts/rev", snapID)
				}
			}
			if !yield(sp.Orders, err) || err != nil {
				return
			}
		}
	}
}

// expireStaged drops the staged parts of a snapshot that has not been
// completed within Config.SnapshotTimeout (a central library that stopped
// sending it): they would hold room, and the next snapshot starts afresh.
func (k *Link) expireStaged(now time.Time) {
	if k.cfg.SnapshotTimeout <= 0 {
		return
	}
	started, err := k.cfg.State.StagedStarted()
	if err != nil || started.IsZero() || now.Sub(started) < k.cfg.SnapshotTimeout {
		return
	}
	if err := k.cfg.State.ClearStaged(); err != nil {
		k.log.Error("staged snapshot not dropped", "err", err)
		return
	}
	k.log.Warn("incomplete snapshot dropped: not completed in time", "staged_at", started, "timeout", k.cfg.SnapshotTimeout)
}
