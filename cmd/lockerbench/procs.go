package main

import (
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lockerd/lockerd/locker/lockertest"
	"github.com/lockerd/lockerd/locker/loopback"
)

// hubProcs are hub replicas run as lockerhub processes, each held to a
// share of the CPU in a cgroup of its own: on one machine, a replica
// given a fixed budget stands for one given a machine of its own, so
// what a second replica adds is the central's and not borrowed from the
// lockers and brokers it shares this machine with.
type hubProcs struct {
	ports  []int
	cmds   []*exec.Cmd
	pids   []int
	groups []string
}

// startHubProcs starts n replicas of bin (lockerhub) on PostgreSQL (dsn),
// replica r connecting to brokers(r), serving ids, each held to cores.
func startHubProcs(dir, bin, dsn string, brokers func(r int) []string, key ed25519.PrivateKey, ids []string, n int, cores float64, owned bool) (*hubProcs, error) {
	p := &hubProcs{}
	write := func(name, s string) error { return os.WriteFile(filepath.Join(dir, name), []byte(s), 0o600) }
	if err := errors.Join(write("central.key", hex.EncodeToString(key.Seed())+"\n"), write("pickup.key", hex.EncodeToString(lockertest.Key)+"\n"),
		write("hub.dsn", dsn+"\n")); err != nil {
		return nil, err
	}
	idList, _ := json.Marshal(ids)
	for r := range n {
		port, err := loopback.FreePort()
		if err != nil {
			p.stop()
			return nil, err
		}
		name := fmt.Sprintf("lockerhub-%d", r+1)
		urls, _ := json.Marshal(brokers(r))
		conf := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(conf, []byte(fmt.Sprintf(`store: {driver: postgres, dsn_file: hub.dsn}
http: {listen: "127.0.0.1:%d", admin_token_file: %s.token}
mqtt: {brokers: %s, client_id: %s%s}
keys: {signing_key_file: central.key, pickup_key_file: pickup.key}
lockers: %s
`, port, name, urls, name, map[bool]string{true: ", subscribe_owned: true"}[owned], idList)), 0o600); err != nil {
			p.stop()
			return nil, err
		}
		logf, err := os.Create(filepath.Join(dir, name+".log"))
		if err != nil {
			p.stop()
			return nil, err
		}
		cmd := exec.Command(bin, "serve", "-config", conf)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			logf.Close()
			p.stop()
			return nil, err
		}
		logf.Close()
		p.cmds, p.pids, p.ports = append(p.cmds, cmd), append(p.pids, cmd.Process.Pid), append(p.ports, port)
		group, err := cpuGroup(fmt.Sprintf("lockerbench-%d-%s", os.Getpid(), name), cores, cmd.Process.Pid)
		if group != "" {
			p.groups = append(p.groups, group)
		}
		if err != nil {
			p.stop()
			return nil, err
		}
		if err := waitHealthy(port, 60*time.Second); err != nil {
			raw, _ := os.ReadFile(filepath.Join(dir, name+".log"))
			p.stop()
			return nil, fmt.Errorf("%s: %w\n%s", name, err, raw)
		}
	}
	return p, nil
}

func (p *hubProcs) stop() {
	for _, c := range p.cmds {
		c.Process.Kill()
		c.Wait()
	}
	for _, g := range p.groups {
		os.Remove(g)
	}
}

func waitHealthy(port int, within time.Duration) error {
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", port))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
	}
	return fmt.Errorf("its API did not answer within %v", within)
}

// cpuGroup makes a cgroup holding pid to cores CPUs (cgroup v1's cpu
// controller, or v2's cpu.max) and returns its directory.
func cpuGroup(name string, cores float64, pid int) (string, error) {
	const period = 100_000 // µs
	quota := strconv.Itoa(max(1000, int(cores*period)))
	v1, v2 := "/sys/fs/cgroup/cpu", "/sys/fs/cgroup"
	if _, err := os.Stat(filepath.Join(v1, "cpu.cfs_quota_us")); err == nil {
		dir := filepath.Join(v1, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			return "", fmt.Errorf("-replica-cpu needs root and a cpu cgroup: %w", err)
		}
		err := errors.Join(os.WriteFile(filepath.Join(dir, "cpu.cfs_period_us"), []byte(strconv.Itoa(period)), 0o644),
			os.WriteFile(filepath.Join(dir, "cpu.cfs_quota_us"), []byte(quota), 0o644),
			os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644))
		return dir, err
	}
	if _, err := os.Stat(filepath.Join(v2, "cpu.max")); err == nil || fileHas(filepath.Join(v2, "cgroup.controllers"), "cpu") {
		os.WriteFile(filepath.Join(v2, "cgroup.subtree_control"), []byte("+cpu"), 0o644)
		dir := filepath.Join(v2, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			return "", fmt.Errorf("-replica-cpu needs root and a cpu cgroup: %w", err)
		}
		err := errors.Join(os.WriteFile(filepath.Join(dir, "cpu.max"), []byte(quota+" "+strconv.Itoa(period)), 0o644),
			os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644))
		return dir, err
	}
	return "", errors.New("-replica-cpu needs a cpu cgroup (v1 /sys/fs/cgroup/cpu or v2 cpu.max), as root")
}

func fileHas(path, word string) bool {
	raw, err := os.ReadFile(path)
	return err == nil && slices.Contains(strings.Fields(string(raw)), word)
}

// partitions is how many of the lockers' partitions each replica holds
// (its /healthz; 0 when it does not say), and whether every replica is
// subscribed to all of its lockers' messages (a binary that does not say
// counts as subscribed).
func (p *hubProcs) partitions() (held []int, subscribed bool) {
	held, subscribed = make([]int, len(p.ports)), true
	for i, port := range p.ports {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", port))
		if err != nil {
			subscribed = false
			continue
		}
		h := struct {
			Partitions int
			Subscribed *bool
		}{}
		json.NewDecoder(resp.Body).Decode(&h)
		resp.Body.Close()
		held[i] = h.Partitions
		subscribed = subscribed && (h.Subscribed == nil || *h.Subscribed)
	}
	return held, subscribed
}
