// Package boltstoretest damages store files the ways the world does, for
// the tests of the store check and recovery.
package boltstoretest

import (
	"os"
	"testing"
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

// Truncate cuts the file to frac of its length.
func Truncate(t testing.TB, path string, frac float64) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, int64(float64(info.Size())*frac)); err != nil {
		t.Fatal(err)
	}
}
