package boltstoretest

import (
	"os"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// CorruptPages overwrites the page headers (flags, count) of every page
// from the third to the one at frac of the file with garbage, leaving the
// two meta pages and the length whole, as a card wearing out would: only a
// look inside finds it. Pages are taken to be 4096 bytes (bbolt's on
// amd64 and arm64 alike).
func CorruptPages(t testing.TB, path string, frac float64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	const ps = 4096
	for off := int64(2 * ps); off < int64(float64(info.Size())*frac); off += ps {
		if _, err := f.WriteAt([]byte{0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0x7E, 0x3C, 0xAB, 0xFF, 0xFF}, off+4); err != nil {
			t.Fatal(err)
		}
	}
}

// Truncate cuts the file to frac of the part its data uses (the meta
// page's high-water mark): bbolt grows a file ahead of its data, so a cut
// at a fraction of the file's length may leave every used page whole and
// the store intact.
func Truncate(t testing.TB, path string, frac float64) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var used int64
	err = db.View(func(tx *bolt.Tx) error { used = tx.Size(); return nil })
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, int64(float64(used)*frac)); err != nil {
		t.Fatal(err)
	}
}
