package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lockerd/lockerd/locker"
	"github.com/lockerd/lockerd/locker/httpapi"
	"github.com/lockerd/lockerd/locker/loopback"
	"github.com/lockerd/lockerd/sync/hub/hubclient"
	"github.com/lockerd/lockerd/sync/protocol"
)

// syncBuffer is the demo's output, read while it runs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

var binDir = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "lockerdemo-bin")
	if err != nil {
		return "", err
	}
	out, err := exec.Command("go", "build", "-o", dir+"/", "../lockerd", "../lockerctl", "../lockerhub").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return dir, nil
})

// freeAddrs are four free loopback addresses, and lockerd's demo
// configuration rewritten to them (and to dir for its store), with the
// demo's keys beside it.
func freeAddrs(t *testing.T, dir string) (addrs, string) {
	t.Helper()
	var ps []string
	for range 4 {
		p, err := loopback.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, fmt.Sprintf("127.0.0.1:%d", p))
	}
	a := addrs{HubHTTP: ps[0], HubMQTT: ps[1], ILS: ps[2], LockerAPI: ps[3]}
	raw, err := os.ReadFile("../../configs/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.NewReplacer(demoAddrs.LockerAPI, a.LockerAPI, demoAddrs.HubMQTT, a.HubMQTT,
		"/tmp/lockerd-demo/lockerd.db", filepath.Join(dir, "demo", "lockerd.db")).Replace(string(raw))
	if strings.Count(cfg, a.LockerAPI) != 1 || strings.Count(cfg, a.HubMQTT) != 1 {
		t.Fatalf("configs/demo.yaml no longer names %s and %s once each", demoAddrs.LockerAPI, demoAddrs.HubMQTT)
	}
	path := filepath.Join(dir, "demo.yaml")
	os.WriteFile(path, []byte(cfg), 0o600)
	for _, k := range []string{"demo-central.key", "demo-pickup.key"} {
		raw, _ := os.ReadFile("../../configs/" + k)
		os.WriteFile(filepath.Join(dir, k), raw, 0o600)
	}
	return a, path
}

// A port taken: the demo stops at once, names it, and starts nothing.
func TestPortTaken(t *testing.T) {
	bin, err := binDir()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	a, cfg := freeAddrs(t, dir)
	ln, err := net.Listen("tcp", a.ILS)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var out syncBuffer
	t0 := time.Now()
	err = run(context.Background(), a, bin, filepath.Join(dir, "demo"), cfg, &out)
	if err == nil || !strings.Contains(err.Error(), "port taken: "+a.ILS) {
		t.Fatalf("run with %s taken: %v", a.ILS, err)
	}
	if took := time.Since(t0); took > 5*time.Second {
		t.Fatalf("took %v to say so", took)
	}
	if _, err := os.Stat(filepath.Join(dir, "demo")); err == nil {
		t.Fatal("the demo's directory was made: something started")
	}
	t.Logf("%v", err)
}

// The demo runs: three orders loaded, the guide printed; Ctrl-C stops
// every part (their ports free again). A part that dies stops the demo
// with its name and log.
func TestDemo(t *testing.T) {
	bin, err := binDir()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	a, cfg := freeAddrs(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, a, bin, filepath.Join(dir, "demo"), cfg, &out) }()
	deadline := time.After(90 * time.Second)
	for !strings.Contains(out.String(), "Ctrl-C stops the demo.") {
		select {
		case err := <-done:
			t.Fatalf("demo ended: %v\n%s", err, out.String())
		case <-deadline:
			t.Fatalf("no guide within 90 s:\n%s", out.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	if n := strings.Count(out.String(), "loaded by staff into"); n != 3 {
		t.Fatalf("%d orders loaded:\n%s", n, out.String())
	}
	hc := hubclient.New(a.HubHTTP)
	tok, _ := os.ReadFile(filepath.Join(dir, "demo", "admin.token"))
	hc.Token = strings.TrimSpace(string(tok))
	orders, err := hc.Orders(lockerID)
	if err != nil || len(orders) != 3 {
		t.Fatalf("the hub's orders: %d %v", len(orders), err)
	}
	// The guide's hold: staff scan a book from the hold shelf and the door
	// opens for its reader's order; one held for elsewhere is refused.
	lt, err := httpapi.ReadToken(filepath.Join(dir, "demo", "api.token"))
	if err != nil {
		t.Fatal(err)
	}
	lc := httpapi.NewClient(a.LockerAPI)
	lc.Token = lt
	if res, err := lc.Scan("front", staff); err != nil || res.Outcome != locker.OutcomeStaffOn {
		t.Fatalf("staff badge: %+v %v", res, err)
	}
	if res, err := lc.Scan("front", "9787536692930"); err != nil || res.Outcome != locker.OutcomeLoading {
		t.Fatalf("the held book: %+v %v", res, err)
	}
	if res, err := lc.Scan("front", "9787506365437"); err != nil || res.Reason != protocol.HoldElsewhere {
		t.Fatalf("the book held for elsewhere: %+v %v", res, err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("after Ctrl-C: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the demo did not stop")
	}
	if !strings.Contains(out.String(), "demo stopped") {
		t.Fatalf("no word of the stop:\n%s", out.String())
	}
	for _, addr := range []string{a.HubHTTP, a.HubMQTT, a.ILS, a.LockerAPI} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("%s still held after the demo stopped: %v", addr, err)
		}
		ln.Close()
	}

	// Again, and lockerd dies: the demo stops, naming it.
	a, cfg = freeAddrs(t, dir)
	var out2 syncBuffer
	done = make(chan error, 1)
	go func() { done <- run(context.Background(), a, bin, filepath.Join(dir, "demo"), cfg, &out2) }()
	for !strings.Contains(out2.String(), "Ctrl-C stops the demo.") {
		select {
		case err := <-done:
			t.Fatalf("demo ended: %v\n%s", err, out2.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	p := pidOf(t, filepath.Join(bin, "lockerd")+"\x00-config\x00"+cfg)
	syscall.Kill(p, syscall.SIGKILL)
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "lockerd stopped") {
			t.Fatalf("after lockerd died: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the demo went on without lockerd")
	}
}

// pidOf finds the process whose command line is cmdline (NUL-separated).
func pidOf(t *testing.T, cmdline string) int {
	t.Helper()
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err != nil {
			continue
		}
		raw, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if strings.TrimRight(string(raw), "\x00") == cmdline {
			return pid
		}
	}
	t.Fatalf("no process %q", cmdline)
	return 0
}
