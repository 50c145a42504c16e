package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// ErrRefused is wrapped by every refusal.
var ErrRefused = errors.New("refused by the hub's egress policy")

// Policy says which addresses the hub may call.
type Policy struct {
	// Allow lists prefixes called even though they are not public (a
	// webhook receiver on the library's network). An allowed prefix wins
	// over every other rule.
	Allow []netip.Prefix
}

// blocked are the ranges refused besides what netip classifies
// (loopback, private, link-local, multicast, unspecified).
var blocked = []struct {
	p    netip.Prefix
	what string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "'this network'"},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared (carrier-grade NAT, cloud metadata)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignments"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use NAT64"},
	{netip.MustParsePrefix("100::/64"), "discard-only"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation"},
}

// Check says whether ip may be called, and if not why.
func (p Policy) Check(ip netip.Addr) error {
	ip = ip.Unmap()
	for _, a := range p.Allow {
		if a.Contains(ip) {
			return nil
		}
	}
	// An IPv4 address carried in IPv6 (NAT64 well-known prefix, 6to4) is
	// judged as that IPv4 address.
	if inner, ok := embedded(ip); ok {
		if err := p.Check(inner); err != nil {
			return fmt.Errorf("%s carries %s: %w", ip, inner, err)
		}
	}
	why := ""
	switch {
	case !ip.IsValid():
		why = "not an address"
	case ip.IsLoopback():
		why = "loopback"
	case ip.IsUnspecified():
		why = "unspecified"
	case ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast():
		why = "link-local"
	case ip.IsPrivate():
		why = "private"
	case ip.IsMulticast(), ip.IsInterfaceLocalMulticast():
		why = "multicast"
	case ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		why = "broadcast"
	}
	for _, b := range blocked {
		if why == "" && b.p.Contains(ip) {
			why = b.what
		}
	}
	if why != "" {
		return fmt.Errorf("%w: %s is %s (allow it in egress_allow if it is the library's own receiver)", ErrRefused, ip, why)
	}
	return nil
}

func embedded(ip netip.Addr) (netip.Addr, bool) {
	if !ip.Is6() {
		return netip.Addr{}, false
	}
	b := ip.As16()
	switch {
	case netip.MustParsePrefix("64:ff9b::/96").Contains(ip):
		return netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}), true
	case netip.MustParsePrefix("2002::/16").Contains(ip):
		return netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}), true
	}
	return netip.Addr{}, false
}

// CheckURL refuses, when a URL is given to the hub, what can be known
// then: a host that is a refused address, or a name for this machine.
// Names are checked again, as every address is, when they are dialled.
func (p Policy) CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("url: %w", err)
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if host == "" {
		return fmt.Errorf("url %q: no host", raw)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return p.Check(ip)
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		if err := p.Check(netip.MustParseAddr("127.0.0.1")); err != nil {
			return fmt.Errorf("%s: %w", host, err)
		}
	}
	// A decimal, octal or hex IPv4 (http://2130706433/, 0x7f000001,
	// 0x7f.1) that some resolvers take for an address.
	if numeric(host) {
		return fmt.Errorf("%w: host %q looks like a number, not a name", ErrRefused, host)
	}
	return nil
}

// numeric: every dot-separated part of host is a decimal number or 0x
// and hex digits (a name may start with 0x, as 0xcafe.example; it is not
// all hex).
func numeric(host string) bool {
	for _, part := range strings.Split(host, ".") {
		digits, hex := strings.CutPrefix(part, "0x")
		if digits == "" {
			return false
		}
		for _, r := range digits {
			isDec := r >= '0' && r <= '9'
			isHex := isDec || r >= 'a' && r <= 'f'
			if !isDec && !(hex && isHex) {
				return false
			}
		}
	}
	return true
}

// control is the dialer's check of each address it is about to connect
// to (after resolution: what it checks is what it dials).
func (p Policy) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot read address %q", ErrRefused, address)
	}
	return p.Check(ap.Addr())
}

// Dialer is a net.Dialer that dials only what the policy allows.
func (p Policy) Dialer(timeout time.Duration) *net.Dialer {
	return &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second, Control: p.control}
}

// Client is an HTTP client for calling out: every connection checked by
// the policy, no proxy from the environment (a proxy would dial for it,
// unchecked), and no redirect followed (a public receiver could redirect
// to an internal one).
func (p Policy) Client(timeout time.Duration) *http.Client {
	d := p.Dialer(timeout)
	tr := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           16,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    10 * time.Second,
		ResponseHeaderTimeout:  timeout,
		MaxResponseHeaderBytes: 64 << 10,
	}
	return &http.Client{Timeout: timeout, Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// ParseAllow reads an allow-list entry: a prefix (10.20.0.0/16) or one
// address.
func ParseAllow(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q: want an address or a prefix (10.20.0.0/16, fd00::/8)", s)
	}
	return netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen()), nil
}
