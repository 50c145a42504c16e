package loopback

import "testing"

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
