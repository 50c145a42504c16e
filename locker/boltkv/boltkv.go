package boltkv

import (
	"encoding/binary"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// U64Key is n as 8 big-endian bytes: keys sort as the numbers do.
func U64Key(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

// U64 reads U64Key's bytes; anything but 8 bytes (a missing value) is 0.
func U64(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

// GetJSON decodes the value under key into v; found is false (and v
// untouched) when there is none. A value that does not decode is an error
// naming the key: a corrupt record, never taken for a missing one.
func GetJSON(b *bolt.Bucket, key []byte, v any) (found bool, err error) {
	raw := b.Get(key)
	if raw == nil {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return true, fmt.Errorf("record %q: corrupt: %w", key, err)
	}
	return true, nil
}

// PutJSON stores v as JSON under key.
func PutJSON(b *bolt.Bucket, key []byte, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, raw)
}
