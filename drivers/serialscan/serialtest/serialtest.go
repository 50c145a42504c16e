package serialtest

import (
	"os"
	"testing"

	"github.com/creack/pty"
)

// Plug creates a pseudo-terminal and points link at its device node. The
// returned master is the device's side: bytes written to it arrive at
// whoever opened the port. Close it to unplug. It is closed when the test
// ends.
func Plug(t testing.TB, link string) *os.File {
	t.Helper()
	master, tty, err := pty.Open()
	if err != nil {
		t.Fatalf("open pseudo-terminal: %v", err)
	}
	name := tty.Name()
	tty.Close() // the driver under test opens the device node itself
	os.Remove(link)
	if err := os.Symlink(name, link); err != nil {
		master.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { master.Close() })
	return master
}

// PlugListening is Plug for a device that reads: the terminal side is
// held open until the test ends, so the device can read (and wait for
// requests) before the driver under test opens the port, instead of
// getting EIO from a pseudo-terminal nobody has open.
func PlugListening(t testing.TB, link string) *os.File {
	t.Helper()
	master, tty, err := pty.Open()
	if err != nil {
		t.Fatalf("open pseudo-terminal: %v", err)
	}
	os.Remove(link)
	if err := os.Symlink(tty.Name(), link); err != nil {
		master.Close()
		tty.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { master.Close(); tty.Close() })
	return master
}
