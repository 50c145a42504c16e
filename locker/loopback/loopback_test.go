package loopback

import (
	"net"
	"strconv"
	"testing"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:8480", true},
		{"127.0.0.2:0", true},
		{"[::1]:8480", true},
		{"localhost:8480", true}, // resolved: loopback on every sane host
		{"0.0.0.0:8480", false},
		{":8480", false},
		{"[::]:8480", false},
		{"192.168.1.10:8480", false},
		{"127.0.0.1", false},
		{"127.0.0.1:99999", false},
		{"no-such-host.invalid:80", false},
		{"example.com:80", false}, // not resolved at all: no DNS in a config check
	}
	for _, tt := range tests {
		if err := Check(tt.addr); (err == nil) != tt.ok {
			t.Errorf("Check(%q) = %v, want ok %v", tt.addr, err, tt.ok)
		}
	}
}

// FreePort chooses below the ephemeral range, where no outgoing
// connection can take the port before the test server binds it.
func TestFreePortIsBelowTheEphemeralRange(t *testing.T) {
	low := ephemeralLow()
	for range 20 {
		port, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if port < freeRangeStart || port >= low {
			t.Fatalf("port %d outside [%d, %d)", port, freeRangeStart, low)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			t.Fatalf("port %d not free: %v", port, err)
		}
		ln.Close()
	}
}
