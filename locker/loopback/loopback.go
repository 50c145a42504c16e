package loopback

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
)

// Check returns nil if hostport ("127.0.0.1:8480", "[::1]:80",
// "localhost:8480") listens on loopback addresses only. Of names, only
// localhost (and *.localhost) is taken, resolved, and every address it
// resolves to must be loopback: a "localhost" that some hosts file points
// elsewhere is refused. An empty host ("" or ":8480") listens everywhere
// and is refused.
func Check(hostport string) error {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return fmt.Errorf("%q: want host:port", hostport)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: bad port", hostport)
	}
	if host == "" {
		return fmt.Errorf("%q listens on every address, not loopback only", hostport)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if !ip.IsLoopback() {
			return fmt.Errorf("%s is not a loopback address", host)
		}
		return nil
	}
	// Only the names of this machine are resolved (from /etc/hosts, no
	// DNS): a listen address is checked without the network, and quickly.
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	if name != "localhost" && !strings.HasSuffix(name, ".localhost") {
		return fmt.Errorf("%s: give a loopback address (127.0.0.1, [::1]) or localhost", host)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupHost(ctx, host)
	if err != nil {
		return fmt.Errorf("%s: %w", host, err)
	}
	if len(addrs) == 0 {
		return errors.New(host + " resolves to nothing")
	}
	for _, a := range addrs {
		ip, err := netip.ParseAddr(a)
		if err != nil || !ip.IsLoopback() {
			return fmt.Errorf("%s resolves to %s, which is not a loopback address", host, a)
		}
	}
	return nil
}

// FreePort returns a TCP port free on 127.0.0.1 at the time of asking
// (for test servers and benches started on loopback).
//
// It picks at random below the kernel's ephemeral range
// (/proc/sys/net/ipv4/ip_local_port_range, 32768 up by default) and checks
// it with a bind: a port the kernel handed out from that range is free
// only until some outgoing connection takes it, which is how a test
// server once failed to bind a port between asking and listening.
func FreePort() (int, error) {
	low := ephemeralLow()
	for range 200 {
		port := freeRangeStart + rand.IntN(low-freeRangeStart)
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		ln.Close()
		return port, nil
	}
	// Below the range is crowded: fall back on the kernel's choice.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// freeRangeStart is where FreePort starts looking: above the ports of
// well-known and commonly installed services.
const freeRangeStart = 20000

// ephemeralLow is the first port of the kernel's ephemeral range.
func ephemeralLow() int {
	low := 32768
	if raw, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(raw)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				low = n
			}
		}
	}
	if low < freeRangeStart+1000 {
		// A range that starts low leaves nothing to choose from below it.
		low = 32768
	}
	return low
}
