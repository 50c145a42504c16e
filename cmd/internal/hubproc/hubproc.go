package hubproc

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	buildBin  string
	buildErr  error
)

// Build builds cmd/lockerhub once per test process and returns its path.
func Build(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		_, here, _, _ := runtime.Caller(0)
		src := filepath.Join(filepath.Dir(here), "..", "..", "lockerhub")
		dir, err := os.MkdirTemp("", "lockerhub-bin")
		if err != nil {
			buildErr = err
			return
		}
		buildBin = filepath.Join(dir, "lockerhub")
		if out, err := exec.Command("go", "build", "-o", buildBin, src).CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build lockerhub: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}

// Hub is one lockerhub serve process.
type Hub struct {
	t    testing.TB
	Name string
	Bin  string
	Conf string // its config file
	Addr string // its HTTP API, host:port (as in the config)
	Log  string // its output, appended over restarts
	// CAFile: the API is served over TLS with a certificate this CA
	// signed (http.tls).
	CAFile string

	cmd  *exec.Cmd
	done chan struct{}
}

// Start starts the process and waits until its API answers; the test
// fails if it exits first or takes over a minute.
func (h *Hub) Start() {
	h.t.Helper()
	out, err := os.OpenFile(h.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		h.t.Fatal(err)
	}
	defer out.Close()
	h.cmd = exec.Command(h.Bin, "serve", "-config", h.Conf)
	h.cmd.Stdout, h.cmd.Stderr = out, out
	if err := h.cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	h.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(h.cmd, h.done)
	client, scheme := http.DefaultClient, "http://"
	if h.CAFile != "" {
		pem, err := os.ReadFile(h.CAFile)
		if err != nil {
			h.t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		client, scheme = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}, "https://"
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp, err := client.Get(scheme + h.Addr + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case <-h.done:
			raw, _ := os.ReadFile(h.Log)
			h.t.Fatalf("%s exited at start:\n%s", h.Name, raw)
		default:
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%s did not serve", h.Name)
		}
	}
}

// Token is the admin token the hub wrote at its first start (its
// config's http.admin_token_file, default admin.token beside it).
func (h *Hub) Token() string {
	h.t.Helper()
	raw, err := os.ReadFile(filepath.Join(filepath.Dir(h.Conf), "admin.token"))
	if err != nil {
		h.t.Fatalf("%s's admin token: %v", h.Name, err)
	}
	return strings.TrimSpace(string(raw))
}

// Kill kills the process (SIGKILL) and reaps it.
func (h *Hub) Kill() {
	if h.cmd == nil {
		return
	}
	h.cmd.Process.Signal(syscall.SIGKILL)
	<-h.done
	h.cmd = nil
}

// New returns a Hub (not started) whose process is killed when the test
// ends, its log shown if the test failed.
func New(t testing.TB, name, bin, conf, addr, log string) *Hub {
	h := &Hub{t: t, Name: name, Bin: bin, Conf: conf, Addr: addr, Log: log}
	t.Cleanup(func() {
		h.Kill()
		if t.Failed() {
			raw, _ := os.ReadFile(h.Log)
			s := string(raw)
			if len(s) > 4000 {
				s = "…" + s[len(s)-4000:]
			}
			t.Logf("%s's log (tail):\n%s", h.Name, s)
		}
	})
	return h
}
