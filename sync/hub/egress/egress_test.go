package egress

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestCheck(t *testing.T) {
	p := Policy{Allow: []netip.Prefix{netip.MustParsePrefix("10.20.0.0/16"), netip.MustParsePrefix("fd00:1::/32")}}
	for _, tt := range []struct {
		ip string
		ok bool
	}{
		{"93.184.216.34", true},
		{"2606:2800:220:1::1", true},
		{"127.0.0.1", false},
		{"127.8.9.10", false},
		{"::1", false},
		{"0.0.0.0", false},
		{"::", false},
		{"169.254.169.254", false}, // cloud metadata
		{"100.100.100.200", false}, // cloud metadata (shared address space)
		{"fe80::1", false},
		{"10.0.0.1", false},
		{"172.16.5.4", false},
		{"192.168.1.1", false},
		{"fc00::1", false},
		{"224.0.0.1", false},
		{"255.255.255.255", false},
		{"240.0.0.1", false},
		{"::ffff:127.0.0.1", false},   // IPv4-mapped
		{"64:ff9b::a9fe:a9fe", false}, // NAT64 of 169.254.169.254
		{"2002:7f00:1::", false},      // 6to4 of 127.0.0.1
		{"10.20.3.4", true},           // allowed: the library's receiver
		{"fd00:1::5", true},
		{"10.21.0.1", false},
	} {
		err := p.Check(netip.MustParseAddr(tt.ip))
		if (err == nil) != tt.ok {
			t.Errorf("Check(%s) = %v, want ok %v", tt.ip, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrRefused) {
			t.Errorf("Check(%s): %v does not wrap ErrRefused", tt.ip, err)
		}
	}
}

func TestCheckURL(t *testing.T) {
	var p Policy
	for _, tt := range []struct {
		url string
		ok  bool
	}{
		{"https://hooks.library.example/lockers", true},
		{"http://169.254.169.254/latest/meta-data/", false},
		{"http://127.0.0.1:8490/v1/open", false},
		{"http://[::1]:8490/", false},
		{"http://localhost:22/", false},
		{"http://LOCALHOST./", false},
		{"http://a.localhost/", false},
		{"http://10.0.0.1/", false},
		{"http://2130706433/", false}, // 127.0.0.1 as one number
		{"http://0x7f000001/", false},
		{"http://017700000001/", false},
		{"http://0x7f.1/", false},
		{"http://0xcafe.example/hooks", true}, // a name that starts with 0x
		{"http://7eleven.example/", true},
	} {
		if err := p.CheckURL(tt.url); (err == nil) != tt.ok {
			t.Errorf("CheckURL(%s) = %v, want ok %v", tt.url, err, tt.ok)
		}
	}
}

// The check is made on the address dialled: a name that resolves to a
// refused address (localhost here; a rebinding name alike) is refused
// when it is called, whatever it looked like when it was given; an
// allowed prefix is reached.
func TestClientChecksAtDialTime(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	defer srv.Close()
	port := srv.URL[strings.LastIndex(srv.URL, ":"):]
	_, err := Policy{}.Client(2 * time.Second).Get("http://localhost" + port + "/")
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("a name resolving to loopback: %v, want a refusal", err)
	}
	// A redirect is not followed (a public receiver could send the hub
	// inward).
	allowed := Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}}
	resp, err := allowed.Client(2 * time.Second).Get("http://localhost" + port + "/")
	if err != nil || resp.StatusCode != 204 {
		t.Fatalf("an allowed receiver: %v %v", resp, err)
	}
	resp.Body.Close()
	redir := httptest.NewServer(http.RedirectHandler("http://169.254.169.254/", http.StatusFound))
	defer redir.Close()
	resp, err = allowed.Client(2 * time.Second).Get(redir.URL)
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("a redirect: %v %v, want the 302 itself", resp, err)
	}
	resp.Body.Close()
}

func TestParseAllow(t *testing.T) {
	for in, want := range map[string]string{"10.20.0.0/16": "10.20.0.0/16", "10.20.1.7": "10.20.1.7/32", "fd00::/8": "fd00::/8", "10.20.1.7/16": "10.20.0.0/16"} {
		if p, err := ParseAllow(in); err != nil || p.String() != want {
			t.Errorf("ParseAllow(%q) = %v, %v; want %s", in, p, err, want)
		}
	}
	if _, err := ParseAllow("library-net"); err == nil {
		t.Error("a name taken as a prefix")
	}
}
