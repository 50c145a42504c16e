package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lockerd/lockerd/locker/httpapi"
)

// Every signal a service manager or a closed terminal sends stops lockerd
// the way SIGTERM does: locks to their locked level, store closed, exit 0
// — also with a door's pulse in progress.
func TestStopSignals(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT} {
		t.Run(sig.String(), func(t *testing.T) {
			c := newCabinet(t, "0s")
			d := start(t, c.Config)
			opened := make(chan error, 1)
			go func() {
				opened <- d.call("POST", "/v1/open", httpapi.OpenRequest{Compartment: "A01", Reason: "signal test"}, nil)
			}()
			d.stopWith(sig)
			<-opened
			for _, want := range []string{"locks at their locked level", "lockerd stopped"} {
				if !strings.Contains(d.logs(), want) {
					t.Fatalf("no %q in the log after %v:\n%s", want, sig, d.logs())
				}
			}
			// The store was closed cleanly: the next start opens it at once.
			start(t, c.Config).stop()
		})
	}
}

// A closed terminal or log pipe does not kill lockerd: a log write that
// fails is dropped (SIGPIPE is ignored), and lockerd keeps serving.
func TestClosedLogPipeKeepsServing(t *testing.T) {
	c := newCabinet(t, "0s")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(lockerdBin, "-config", c.Config)
	cmd.Stderr = w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(r)
	api, tokenFile := "", ""
	for api == "" && sc.Scan() {
		var rec struct {
			Msg, API  string
			TokenFile string `json:"api_token_file"`
		}
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "ready" {
			api, tokenFile = rec.API, rec.TokenFile
		}
	}
	if api == "" {
		t.Fatal("lockerd did not get ready")
	}
	r.Close() // the terminal is gone
	cl := httpapi.NewClient(api)
	if cl.Token, err = httpapi.ReadToken(tokenFile); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ { // each of these logs a line
		if _, err := cl.Scan("front", "WRONG"+string(rune('A'+i))); err != nil {
			t.Fatalf("scan %d after the log pipe closed: %v", i, err)
		}
	}
	if _, err := cl.Status(); err != nil {
		t.Fatalf("lockerd stopped serving after its log pipe closed: %v", err)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("lockerd did not stop")
	}
}
