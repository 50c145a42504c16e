package hidscan

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func TestKeyboard(t *testing.T) {
	var k Keyboard
	type ev struct {
		code  uint16
		value int32
	}
	// "aB!" then Enter, with a held shift, a repeat that must not type,
	// and caps lock inverting letters only.
	evs := []ev{{30, 1}, {30, 0}, {42, 1}, {48, 1}, {48, 2}, {48, 0}, {2, 1}, {2, 0}, {42, 0},
		{58, 1}, {58, 0}, {31, 1}, {31, 0}, {3, 1}, {3, 0}, {42, 1}, {31, 1}, {31, 0}, {42, 0}, {28, 1}, {28, 0}}
	var got []byte
	for _, e := range evs {
		if c, ok := k.Key(e.code, e.value); ok {
			got = append(got, c)
		}
	}
	if string(got) != "aB!S2s\r" {
		t.Fatalf("typed %q", got)
	}
}

func TestKeystrokesRoundTrip(t *testing.T) {
	in := "]Q1ABCD-2345 xyz/_+:\"?~|"
	var k Keyboard
	var got []byte
	recs := Keystrokes(in + "\r")
	if len(recs)%EventSize != 0 {
		t.Fatalf("%d bytes is not whole records", len(recs))
	}
	for off := 0; off < len(recs); off += EventSize {
		typ, code, value := decode(recs[off : off+EventSize])
		if typ == EvKey {
			if c, ok := k.Key(code, value); ok {
				got = append(got, c)
			}
		}
	}
	if string(got) != in+"\r" {
		t.Fatalf("round trip %q, want %q", got, in+"\r")
	}
}

// Events written into a FIFO reach Read as characters; a FIFO is not
// grabbed (only character devices are).
func TestDeviceReadsRecordsFromAPipe(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "event-kbd")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// Opening the reading end does not wait for a writer; the writer,
	// opened after, does not wait either.
	d, err := Open(fifo)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(Keystrokes("Ab1")[:EventSize+3]) // a record split across writes
	w.Write(Keystrokes("Ab1")[EventSize+3:])
	w.Close() // the writer going away is not the end of the device
	if d.Grabbed() {
		t.Error("a FIFO was grabbed")
	}
	d.SetReadTimeout(50 * time.Millisecond)
	var got []byte
	buf := make([]byte, 64)
	deadline := time.Now().Add(5 * time.Second)
	for string(got) != "Ab1" && time.Now().Before(deadline) {
		n, err := d.Read(buf)
		if err != nil {
			t.Fatalf("read: %v (got %q)", err, got)
		}
		got = append(got, buf[:n]...)
	}
	if string(got) != "Ab1" {
		t.Fatalf("got %q", got)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(Keystrokes("]Q1AB-12\r"))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		// One read's worth of records (Device reads 64 at a time): longer
		// inputs add nothing but make the fuzzer's minimiser crawl.
		b = b[:min(len(b), 64*EventSize)]
		var k Keyboard
		for off := 0; off+EventSize <= len(b); off += EventSize {
			typ, code, value := decode(b[off : off+EventSize])
			if typ == EvKey {
				if c, ok := k.Key(code, value); ok && (c < ' ' && c != '\r' && c != '\t' || c > '~') {
					t.Fatalf("typed control byte %q", c)
				}
			}
		}
	})
}
