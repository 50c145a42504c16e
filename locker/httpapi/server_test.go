package httpapi

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lockerd/lockerd/locker/sse"
)

// An event stream outlives the server's read and write timeouts (which
// bound every other request), and a plain request is cut off by them.
func TestStreamsOutliveTheServerTimeouts(t *testing.T) {
	mux := http.NewServeMux()
	tick := make(chan struct{})
	mux.HandleFunc("GET /stream", func(w http.ResponseWriter, r *http.Request) {
		st, err := sse.Start(w)
		if err != nil {
			t.Error(err)
			return
		}
		for range tick {
			if st.Send("", "", "tick") != nil {
				return
			}
		}
	})
	srv := NewServer(mux, nil)
	srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout = 100*time.Millisecond, 200*time.Millisecond, 200*time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(LimitListener(ln, 4))
	defer srv.Close()

	resp, err := http.Get("http://" + ln.Addr().String() + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rd := bufio.NewReader(resp.Body)
	// Ten sends, each well after the server's timeouts have run out.
	for i := 0; i < 10; i++ {
		time.Sleep(60 * time.Millisecond) // let the read and write bounds pass
		tick <- struct{}{}
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				t.Fatalf("stream cut after %d sends: %v", i, err)
			}
			if strings.HasPrefix(line, "data: ") {
				break
			}
		}
	}
	close(tick)

	// A client that never finishes its headers is cut off.
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("GET /stream HTTP/1.1\r\nHost: x\r\n"))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || strings.Contains(err.Error(), "timeout") {
		t.Fatalf("a half-sent request was not closed by the server: %v", err)
	}
}

// LimitListener never has more than n connections open at once.
func TestLimitListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lim := LimitListener(ln, 3)
	defer lim.Close()
	var open, peak atomic.Int32
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := lim.Accept()
			if err != nil {
				return
			}
			n := open.Add(1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			accepted <- c
		}
	}()
	var clients []net.Conn
	for i := 0; i < 6; i++ {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	for i := 0; i < 6; i++ {
		c := <-accepted // the fourth comes only once one of the first three closed
		if p := peak.Load(); p > 3 {
			t.Fatalf("%d connections accepted at once", p)
		}
		open.Add(-1)
		c.Close()
		c.Close() // twice: the slot is released once
	}
}
