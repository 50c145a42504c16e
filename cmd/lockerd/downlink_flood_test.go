package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockerd/lockerd/sync/brokertest"
	"github.com/lockerd/lockerd/sync/protocol"
)

// procKB reads a "Vm...:  N kB" line of /proc/PID/status.
func procKB(t *testing.T, pid int, field string) int {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.Atoi(strings.Fields(v)[0])
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// plainBin is lockerd built without the race detector, whatever this
// test binary is: memory bounds are the product's, and the race
// detector's shadow memory multiplies them (make test runs -race).
var plainBin = sync.OnceValues(func() (string, error) {
	if !raceEnabled {
		return lockerdBin, nil
	}
	bin := filepath.Join(filepath.Dir(lockerdBin), "lockerd-norace")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("building lockerd without -race: %v\n%s", err, out)
	}
	return bin, nil
})

// A flood of oversized unsigned downlink messages — 20 of 8 MiB on the
// orders topic, then 3 of 64 MiB on the command topic — is refused
// before it is copied: its payloads never reach lockerd's memory
// (mqttlink's boundedConn streams them to nothing), each is nacked with
// its size, lockerd's peak RSS stays under 64 MiB (built without the race
// detector), and a genuine command after the flood is still served.
func TestDownlinkFloodStaysBounded(t *testing.T) {
	bin, err := plainBin()
	if err != nil {
		t.Fatal(err)
	}
	mq := brokertest.StartMosquitto(t, brokertest.MosquittoOptions{})
	key, pub := newKey(t)
	rec := brokertest.Record(t, mq.URL, "test-central", "", nil, topics.UpAck(), topics.Status())
	c := newCabinet(t, "0s", withBrokers([]string{mq.URL}, pub, ""))
	d := launchBin(t, bin, c.Config, nil)
	rec.Wait(10*time.Second, "birth", func(m brokertest.Msg) bool { return m.Topic == topics.Status() })
	pid := d.cmd.Process.Pid
	before := procKB(t, pid, "VmRSS")

	floods := []struct {
		topic string
		n     int
		size  int
	}{
		{topics.DownOrders(), 20, 8 << 20},
		{topics.DownCmd(), 3, 64 << 20},
	}
	for _, fl := range floods {
		junk := bytes.Repeat([]byte("x"), fl.size)
		from := rec.Len()
		for i := 0; i < fl.n; i++ {
			rec.Publish(fl.topic, junk)
		}
		want := []byte(fmt.Sprintf("message of %d bytes is over the limit", fl.size))
		deadline := time.Now().Add(90 * time.Second)
		for got := 0; got < fl.n; time.Sleep(50 * time.Millisecond) {
			got = 0
			for _, m := range rec.All()[from:] {
				if m.Topic == topics.UpAck() && bytes.Contains(m.Payload, want) {
					got++
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d oversized messages on %s nacked\n%s", got, fl.n, fl.topic, d.logs())
			}
		}
	}
	peak := procKB(t, pid, "VmHWM")
	t.Logf("lockerd RSS %d MiB before, peak %d MiB after 20 messages of 8 MiB and 3 of 64 MiB", before>>10, peak>>10)
	// Unbounded, 30 messages of 8 MB took lockerd to 503 MB; refused in
	// the handler (after paho had read each whole) to 145 MB; streamed
	// past, the flood costs a few buffers.
	if peak>>10 >= 64 {
		t.Fatalf("lockerd's peak RSS %d MiB during the flood (bound 64 MiB)", peak>>10)
	}
	// Still serving the central library.
	r := &downlinkRig{t: t, d: d, rec: rec, key: key}
	id := r.id()
	exp := time.Now().Add(time.Minute).UTC()
	m := r.reply(topics.DownCmd(), signed(t, key, protocol.Message{V: 1, Type: protocol.TypeCmdPing, ID: id, Locker: lockerID,
		TS: time.Now().UTC(), Exp: &exp}, struct{}{}), id)
	var a protocol.AckCmd
	json.Unmarshal(m.Data, &a)
	if m.Type != protocol.TypeAckCmd || a.Status != protocol.CmdDone {
		t.Fatalf("ping after the flood: %s %s", m.Type, m.Data)
	}
}

// What lockerd's packages allocate at init stays small: a package-level
// value computed at start is paid by every process that imports it, idle
// or not (an argon2id hash at sync/hub's init once took lockerd's idle
// RSS from 13 to 79 MiB). Read from the runtime's own account
// (GODEBUG=inittrace=1), of the binary built without the race detector.
func TestInitAllocatesLittle(t *testing.T) {
	bin, err := plainBin()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-version")
	cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("lockerd -version: %v\n%s", err, out)
	}
	// init PKG @T ms, C ms clock, B bytes, A allocs
	var total, worst int
	var worstPkg string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 11 || f[0] != "init" || f[8] != "bytes," {
			continue
		}
		n, err := strconv.Atoi(f[7])
		if err != nil {
			t.Fatalf("inittrace line %q", line)
		}
		total += n
		if n > worst {
			worst, worstPkg = n, f[1]
		}
	}
	if total == 0 {
		t.Fatalf("no inittrace lines in:\n%s", out)
	}
	t.Logf("package init allocates %d KiB in all; most: %s, %d KiB", total>>10, worstPkg, worst>>10)
	const bound = 4 << 20
	if total > bound {
		t.Fatalf("package init allocates %d KiB (bound %d KiB); most: %s, %d KiB", total>>10, bound>>10, worstPkg, worst>>10)
	}
}
