package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lockerd/lockerd/locker/boltstore"
	"github.com/lockerd/lockerd/locker/httpapi"
	"github.com/lockerd/lockerd/locker/lockertest"
)

const footprintConfig = `locker: {id: bench-01}
store: {path: %s}
security: {pickup_key_file: %s}
policy: {clock_trust: always}
hardware: {backend: sim, lock_pulse: 50ms}
scanners:
  - {name: returns, role: return}
compartments:
  - {id: S1, size: S, lock: L1, sensor: D1}
  - {id: S2, size: S, lock: L2, sensor: D2}
  - {id: M1, size: M, lock: L3, sensor: D3}
returns: {lock: LR, sensor: DR}
api: {listen: "127.0.0.1:0"}
log: {level: info}
`

// benchFootprint: lockerd's resident memory idle and under load, start-up
// to ready, and idle CPU, with an empty store (the baseline of the same
// run) and with n orders.
func benchFootprint(args []string) error {
	fs := newFlags("footprint")
	bin := fs.String("lockerd", "bin/lockerd", "lockerd binary")
	sizes := fs.String("orders", "0,100000", "orders in the store")
	fs.Parse(args)
	ns, err := ints(*sizes)
	if err != nil {
		return err
	}
	info, err := os.Stat(*bin)
	if err != nil {
		return err
	}
	fmt.Printf("binary: %s, %.1f MiB\n\n", *bin, float64(info.Size())/(1<<20))
	fmt.Println("| orders | start-up to ready | RSS idle | RSS peak from start to idle (VmHWM) | RSS peak under load (VmHWM reset before it) | RSS after load: anonymous / file-backed (the store's map, the binary) | idle CPU (10 s) |")
	fmt.Println("|---|---|---|---|---|---|---|")
	for _, n := range ns {
		if err := footprintOnce(*bin, n); err != nil {
			return err
		}
	}
	return nil
}

func footprintOnce(bin string, n int) error {
	dir, err := os.MkdirTemp("", "lockerbench-footprint")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	keyFile := filepath.Join(dir, "pickup.key")
	os.WriteFile(keyFile, []byte(fmt.Sprintf("%x\n", []byte(lockertest.Key))), 0o600)
	storePath := filepath.Join(dir, "lockerd.db")
	st, err := boltstore.Open(storePath, boltstore.Options{})
	if err != nil {
		return err
	}
	if _, err := lockertest.FillOrders(st, lockertest.Key, n, 0, time.Now().Add(72*time.Hour)); err != nil {
		return err
	}
	st.Close()
	cfg := filepath.Join(dir, "lockerd.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(footprintConfig, storePath, keyFile)), 0o600)

	cmd := exec.Command(bin, "-config", cfg)
	stderr, _ := cmd.StderrPipe()
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	api, tokenFile := "", ""
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		var rec struct {
			Msg, API  string
			TokenFile string `json:"api_token_file"`
		}
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "ready" {
			api, tokenFile = rec.API, rec.TokenFile
			break
		}
	}
	ready := time.Since(t0)
	go func() {
		for sc.Scan() {
		}
	}()
	if api == "" {
		return fmt.Errorf("lockerd did not become ready")
	}
	token, err := httpapi.ReadToken(tokenFile)
	if err != nil {
		return err
	}
	time.Sleep(2 * time.Second)
	idleRSS := procKB(cmd.Process.Pid, "VmRSS:")
	t1 := cpuTicks(cmd.Process.Pid)
	time.Sleep(10 * time.Second)
	idleCPU := float64(cpuTicks(cmd.Process.Pid)-t1) / 100 / 10 * 100 // % of one core (USER_HZ 100)

	// The peak so far (start-up included: what a package init or the
	// store's open allocated), then the peak reset (clear_refs 5), so
	// that the load's own peak is what is read after it.
	startPeak := procKB(cmd.Process.Pid, "VmHWM:")
	loadPeak := "n/a (clear_refs refused)"
	reset := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", cmd.Process.Pid), []byte("5"), 0) == nil

	// Load: 4 clients scanning returns (each a recorded event) for 5 s.
	var wg sync.WaitGroup
	stop := time.Now().Add(5 * time.Second)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := httpapi.NewClient(api)
			c.Token = token
			for i := 0; time.Now().Before(stop); i++ {
				c.Scan("returns", "not-a-book-"+strconv.Itoa(i))
			}
		}()
	}
	wg.Wait()
	if reset {
		loadPeak = fmt.Sprintf("%.1f MiB", float64(procKB(cmd.Process.Pid, "VmHWM:"))/1024)
	}
	anon, file := procKB(cmd.Process.Pid, "RssAnon:"), procKB(cmd.Process.Pid, "RssFile:")
	fmt.Printf("| %d | %.0f ms | %.1f MiB | %.1f MiB | %s | %.1f / %.1f MiB | %.2f %% |\n", n, float64(ready)/float64(time.Millisecond),
		float64(idleRSS)/1024, float64(startPeak)/1024, loadPeak, float64(anon)/1024, float64(file)/1024, idleCPU)
	return nil
}

func procKB(pid int, field string) int64 {
	raw, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, field) {
			f := strings.Fields(line)
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	return 0
}

func cpuTicks(pid int) int64 {
	raw, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	s := string(raw)
	f := strings.Fields(s[strings.LastIndex(s, ")")+2:])
	u, _ := strconv.ParseInt(f[11], 10, 64)
	k, _ := strconv.ParseInt(f[12], 10, 64)
	return u + k
}
