package hub

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseCursor reads an events cursor: "EPOCH.SEQ", or "SEQ" for the first
// store, or "" for the start.
func ParseCursor(s string) (Cursor, error) {
	if s == "" {
		return Cursor{}, nil
	}
	ep, seq, dotted := strings.Cut(s, ".")
	if !dotted {
		ep, seq = "1", s
	}
	e, err1 := strconv.ParseUint(ep, 10, 32)
	n, err2 := strconv.ParseUint(seq, 10, 64)
	if err1 != nil || err2 != nil {
		return Cursor{}, fmt.Errorf("after %q: want SEQ or EPOCH.SEQ", s)
	}
	return Cursor{Epoch: uint32(e), Seq: n}, nil
}

// String is the cursor as ParseCursor reads it.
func (c Cursor) String() string { return fmt.Sprintf("%d.%d", c.Epoch, c.Seq) }
