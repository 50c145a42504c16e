package main

import (
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/lockerd/lockerd/locker/httpapi"
)

func openFDs(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// Slow clients cannot pile up connections on the local API: at most
// httpapi.MaxConns are open at once, a client that never finishes its
// headers is cut off, and the API serves again once they are gone.
func TestSlowClientsAreBounded(t *testing.T) {
	c := newCabinet(t, "0s")
	d := start(t, c.Config)
	pid := d.cmd.Process.Pid
	base := openFDs(t, pid)
	const slow = 150
	var conns []net.Conn
	defer func() {
		for _, cn := range conns {
			cn.Close()
		}
	}()
	for i := 0; i < slow; i++ {
		cn, err := net.Dial("tcp", d.api)
		if err != nil {
			t.Fatal(err)
		}
		cn.Write([]byte("GET /v1/status HTTP/1.1\r\nHost: " + d.api + "\r\n")) // and never the end
		conns = append(conns, cn)
	}
	peak := 0
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		peak = max(peak, openFDs(t, pid))
	}
	t.Logf("open descriptors: %d before, peak %d with %d slow clients", base, peak, slow)
	if peak > base+httpapi.MaxConns+4 {
		t.Fatalf("lockerd holds %d descriptors with %d slow clients (base %d, bound %d connections)", peak, slow, base, httpapi.MaxConns)
	}
	conns[0].SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := conns[0].Read(make([]byte, 1)); err == nil {
		t.Fatal("a client that never finished its headers was answered")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("a client that never finished its headers was not cut off")
	}
	for _, cn := range conns {
		cn.Close()
	}
	conns = nil
	if _, err := d.client().Status(); err != nil {
		t.Fatalf("API after the slow clients left: %v", err)
	}
}
