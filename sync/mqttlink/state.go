package mqttlink

import "time"

// State is the link's own durable state: what MQTT's message sizes and
// redelivery make it keep, which is no rule of the locker's. lockerd keeps
// it in its own buckets of the store's file (sync/linkstore); each method
// is one transaction of its own.
type State interface {
	// StagePart keeps one part of snapshot at. Snapshots are ordered by
	// (rev, snap_id): a part of a newer snapshot than the one staged drops
	// the staged parts and starts anew; a part of an older one is not
	// kept, and StagePart returns the staged snapshot instead (a delayed
	// part never destroys a newer snapshot in progress). n is how many
	// parts of the staged snapshot are kept.
	StagePart(at Staged, part int, payload []byte, now time.Time) (staged Staged, kept bool, n int, err error)
	// StagedPart returns one staged part of snapID (nil if it is not
	// staged).
	StagedPart(snapID string, part int) ([]byte, error)
	// StagedStarted is when the staged snapshot's first part was staged
	// (zero if none is).
	StagedStarted() (time.Time, error)
	// ClearStaged drops every staged part.
	ClearStaged() error
	// ClaimCommand remembers a remote command id (a bounded number of
	// them); dup is true if it was claimed before, and the command must
	// then not act again.
	ClaimCommand(id string, at time.Time) (dup bool, err error)
}

// Staged names a snapshot whose parts are being staged.
type Staged struct {
	SnapID string
	Rev    uint64
}

// Newer reports whether s comes after o in snapshot order (rev, then id).
func (s Staged) Newer(o Staged) bool {
	return s.Rev > o.Rev || s.Rev == o.Rev && s.SnapID > o.SnapID
}
