package auth

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Proxies are the reverse proxies trusted to say who their client is. A
// request that comes from one of them is attributed to the rightmost
// X-Forwarded-For address outside the trusted ranges: the one the nearest
// untrusted hop connected from, which a client cannot forge by sending an
// X-Forwarded-For of its own (a forged entry lies to the left of it).
type Proxies []netip.Prefix

// ParseProxies parses CIDR ranges (or single addresses) of trusted proxies.
func ParseProxies(cidrs []string) (Proxies, error) {
	var ps Proxies
	for _, c := range cidrs {
		if !strings.Contains(c, "/") {
			a, err := netip.ParseAddr(c)
			if err != nil {
				return nil, fmt.Errorf("trusted proxy %q is neither a CIDR range nor an address", c)
			}
			c = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()).String()
		}
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q is not a CIDR range such as 10.0.0.0/8: %w", c, err)
		}
		ps = append(ps, p.Masked())
	}
	return ps, nil
}

// Trusted reports whether a is the address of a trusted proxy.
func (ps Proxies) Trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ClientAddr is the address a request is attributed to: its peer, or, when
// the peer is a trusted proxy, the rightmost untrusted X-Forwarded-For
// address, without an IPv6 zone. When every forwarded address is trusted the
// leftmost is taken; malformed entries end the walk (the peer or the last
// good address stands).
func (ps Proxies) ClientAddr(r *http.Request) string {
	peer := PeerAddr(r)
	a, err := netip.ParseAddr(peer)
	if err != nil || len(ps) == 0 || !ps.Trusted(a) {
		return peer
	}
	hops := forwardedHops(r.Header.Values("X-Forwarded-For"))
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		h, err := netip.ParseAddr(hops[i])
		if err != nil {
			break
		}
		// A zone names an interface of the host that wrote it, meaningless
		// here, and may hold any bytes: the address is recorded without it.
		h = h.WithZone("")
		client = h.Unmap().String()
		if !ps.Trusted(h) {
			break
		}
	}
	return client
}

// forwardedHops splits X-Forwarded-For headers (several headers are one list).
func forwardedHops(values []string) []string {
	var hops []string
	for _, v := range values {
		for _, h := range strings.Split(v, ",") {
			h = strings.TrimSpace(h)
			if host, _, err := net.SplitHostPort(h); err == nil {
				h = host // some proxies add the port
			}
			hops = append(hops, strings.Trim(h, "[]"))
		}
	}
	return hops
}

// PeerAddr is the request's peer address without the port.
func PeerAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// LimitKey is the key the failed-authentication limiter counts an address
// under: IPv4 addresses alone, IPv6 addresses by their /64 (one host
// usually holds a whole /64, so counting single IPv6 addresses would let it
// guess without limit).
func LimitKey(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return addr
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}
