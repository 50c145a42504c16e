package brokertest

import (
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

	"github.com/lockerd/lockerd/locker/loopback"
)

// FreePort returns a free loopback TCP port.
func FreePort(t testing.TB) int {
	t.Helper()
	port, err := loopback.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// Mosquitto is a Mosquitto process owned by a test.
type Mosquitto struct {
	t    testing.TB
	Port int
	URL  string // tcp://127.0.0.1:PORT or ssl://...
	conf string
	dir  string
	bin  string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// MosquittoOptions configure a Mosquitto.
type MosquittoOptions struct {
	// TLS, if set, makes the listener require client certificates signed
	// by TLS.CA, use the certificate's CN as the username, and apply ACL.
	TLS *PKI
	ACL string // acl_file content (with TLS)
	// CRLFile (with TLS) is the broker's crlfile: a revocation list of
	// the CA's, reread on Reload. It must exist at Start.
	CRLFile string
	// NoPersistence runs the broker as Mosquitto's default does
	// (persistence false): a Stop loses every session, subscription,
	// queued message and retained message.
	NoPersistence bool
}

// StartMosquitto starts mosquitto on a free loopback port with
// persistence on (sessions and queued QoS 1 messages survive Stop/Start)
// unless opt.NoPersistence,
// and stops it when the test ends.
func StartMosquitto(t testing.TB, opt MosquittoOptions) *Mosquitto {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
			if _, err2 := os.Stat(p); err2 == nil {
				bin, err = p, nil
			}
		}
	}
	if err != nil {
		t.Fatal("mosquitto is not installed: the MQTT tests need a real broker. Install it (Debian: apt-get install -y mosquitto) or run `make test`, which installs it as root.")
	}
	dir := t.TempDir()
	m := &Mosquitto{t: t, Port: FreePort(t), dir: dir, conf: filepath.Join(dir, "mosquitto.conf")}
	var conf strings.Builder
	// Run as the invoking user (as root, mosquitto would switch to its
	// own user and lose access to the test's temporary directory).
	if os.Getuid() == 0 {
		conf.WriteString("user root\n")
	}
	if opt.NoPersistence {
		conf.WriteString("per_listener_settings false\nset_tcp_nodelay true\npersistence false\n")
	} else {
		fmt.Fprintf(&conf, "per_listener_settings false\nset_tcp_nodelay true\npersistence true\npersistence_location %s/\nautosave_interval 1\n", dir)
	}
	fmt.Fprintf(&conf, "log_dest file %s/mosquitto.log\nlog_type error\nlog_type warning\nlog_type notice\n", dir)
	fmt.Fprintf(&conf, "listener %d 127.0.0.1\n", m.Port)
	if opt.TLS != nil {
		fmt.Fprintf(&conf, "cafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\nuse_identity_as_username true\n",
			opt.TLS.CAFile, opt.TLS.ServerCert, opt.TLS.ServerKey)
		acl := filepath.Join(dir, "acl")
		if err := os.WriteFile(acl, []byte(opt.ACL), 0o644); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&conf, "acl_file %s\n", acl)
		if opt.CRLFile != "" {
			fmt.Fprintf(&conf, "crlfile %s\n", opt.CRLFile)
		}
		m.URL = fmt.Sprintf("ssl://127.0.0.1:%d", m.Port)
	} else {
		conf.WriteString("allow_anonymous true\n")
		m.URL = fmt.Sprintf("tcp://127.0.0.1:%d", m.Port)
	}
	if err := os.WriteFile(m.conf, []byte(conf.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	m.bin = bin
	m.Start()
	t.Cleanup(m.Kill)
	return m
}

// Reload makes the broker reread its configuration files (SIGHUP), the
// revocation list among them; it answers new connections meanwhile.
func (m *Mosquitto) Reload() {
	m.t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		m.t.Fatal("mosquitto is not running")
	}
	if err := m.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		m.t.Fatal(err)
	}
}

// Start starts the broker (again) on its port and waits until it accepts
// connections.
func (m *Mosquitto) Start() {
	m.t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		return
	}
	cmd := exec.Command(m.bin, "-c", m.conf)
	out, err := os.OpenFile(filepath.Join(m.dir, "mosquitto.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		m.t.Fatal(err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		m.t.Fatalf("start mosquitto: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", m.Port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-done:
			log, _ := os.ReadFile(filepath.Join(m.dir, "mosquitto.log"))
			m.t.Fatalf("mosquitto exited at start:\n%s", log)
		default:
		}
		if time.Now().After(deadline) {
			m.t.Fatal("mosquitto did not start listening")
		}
		time.Sleep(20 * time.Millisecond)
	}
	m.cmd, m.done = cmd, done
}

// Stop stops the broker gracefully (SIGTERM: it saves its persistence).
func (m *Mosquitto) Stop() { m.signal(syscall.SIGTERM) }

// Kill kills the broker (SIGKILL).
func (m *Mosquitto) Kill() { m.signal(syscall.SIGKILL) }

func (m *Mosquitto) signal(sig syscall.Signal) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return
	}
	m.cmd.Process.Signal(sig)
	select {
	case <-m.done:
	case <-time.After(10 * time.Second):
		m.cmd.Process.Kill()
		<-m.done
	}
	m.cmd = nil
}

// Log returns the broker's log and console output.
func (m *Mosquitto) Log() string {
	raw, _ := os.ReadFile(filepath.Join(m.dir, "mosquitto.log"))
	out, _ := os.ReadFile(filepath.Join(m.dir, "mosquitto.out"))
	return string(raw) + string(out)
}
