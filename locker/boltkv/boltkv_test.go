package boltkv

import (
	"path/filepath"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// Numbers sort as keys; JSON values round-trip; a missing value is not
// found and a corrupt one is an error.
func TestHelpers(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "t.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		b, _ := tx.CreateBucket([]byte("b"))
		for _, n := range []uint64{300, 2, 1 << 40, 17} {
			if err := b.Put(U64Key(n), nil); err != nil {
				return err
			}
		}
		var got []uint64
		b.ForEach(func(k, _ []byte) error { got = append(got, U64(k)); return nil })
		if !slices.Equal(got, []uint64{2, 17, 300, 1 << 40}) || U64([]byte("x")) != 0 {
			t.Fatalf("keys in order %v", got)
		}
		type rec struct{ A string }
		if err := PutJSON(b, []byte("r"), rec{"x"}); err != nil {
			return err
		}
		var r rec
		if found, err := GetJSON(b, []byte("r"), &r); !found || err != nil || r.A != "x" {
			t.Fatalf("round trip %+v %v %v", r, found, err)
		}
		if found, err := GetJSON(b, []byte("none"), &r); found || err != nil {
			t.Fatalf("missing: %v %v", found, err)
		}
		b.Put([]byte("bad"), []byte("{"))
		if _, err := GetJSON(b, []byte("bad"), &r); err == nil {
			t.Fatal("a corrupt record decoded")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
