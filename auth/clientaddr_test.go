package auth

import (
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

// TestHdLimitKey: IPv4 addresses count alone (IPv4-mapped ones as IPv4),
// IPv6 addresses by their /64.
func TestHdLimitKey(t *testing.T) {
	for _, c := range []struct{ a, b string }{
		{"192.0.2.1", "::ffff:192.0.2.1"},
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff"},
		{"2001:db8:1:2::1", "2001:DB8:1:2:abcd::9"},
	} {
		if ka, kb := LimitKey(c.a), LimitKey(c.b); ka != kb {
			t.Errorf("LimitKey(%s) = %q, LimitKey(%s) = %q: want one key", c.a, ka, c.b, kb)
		}
	}
	for _, c := range []struct{ a, b string }{
		{"192.0.2.1", "192.0.2.2"},
		{"2001:db8:1:2::1", "2001:db8:1:3::1"},
		{"2001:db8:1:2::1", "2001:db9:1:2::1"},
	} {
		if ka, kb := LimitKey(c.a), LimitKey(c.b); ka == kb {
			t.Errorf("LimitKey(%s) = LimitKey(%s) = %q: want different keys", c.a, c.b, ka)
		}
	}
}

// TestHdClientAddr: behind trusted proxies the client is the rightmost
// X-Forwarded-For address outside them; an untrusted peer's header is
// ignored.
func TestHdClientAddr(t *testing.T) {
	ps, err := ParseProxies([]string{"10.0.0.0/8", "192.0.2.7", "2001:db8:ff::/48"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, peer string
		xff        []string
		proxies    Proxies
		want       string
	}{
		{"no proxies: header ignored", "198.51.100.1:4000", []string{"203.0.113.9"}, nil, "198.51.100.1"},
		{"untrusted peer: header ignored", "198.51.100.1:4000", []string{"203.0.113.9"}, ps, "198.51.100.1"},
		{"trusted peer", "10.1.2.3:4000", []string{"203.0.113.9"}, ps, "203.0.113.9"},
		{"forged leftmost", "10.1.2.3:4000", []string{"1.2.3.4, 203.0.113.9"}, ps, "203.0.113.9"},
		{"forged in a header of its own", "10.1.2.3:4000", []string{"1.2.3.4", "203.0.113.9"}, ps, "203.0.113.9"},
		{"chain of trusted proxies", "10.1.2.3:4000", []string{"1.2.3.4, 203.0.113.9, 10.9.9.9, 192.0.2.7"}, ps, "203.0.113.9"},
		{"with a port", "10.1.2.3:4000", []string{"203.0.113.9:5555"}, ps, "203.0.113.9"},
		{"IPv6 with a port", "[2001:db8:ff::1]:4000", []string{"[2001:db8:1::5]:5555"}, ps, "2001:db8:1::5"},
		{"IPv4-mapped", "10.1.2.3:4000", []string{"::ffff:203.0.113.9"}, ps, "203.0.113.9"},
		{"all trusted: leftmost", "10.1.2.3:4000", []string{"10.0.0.1, 10.0.0.2"}, ps, "10.0.0.1"},
		{"no header", "10.1.2.3:4000", nil, ps, "10.1.2.3"},
		{"malformed rightmost", "10.1.2.3:4000", []string{"203.0.113.9, garbage"}, ps, "10.1.2.3"},
		{"a zone dropped (another host's interface; any bytes)", "10.1.2.3:4000", []string{"::ffff:10.0.0.1, fe80::1%\x85th0"}, ps, "fe80::1"},
		{"a trusted hop with a zone is still trusted", "10.1.2.3:4000", []string{"203.0.113.9, 2001:db8:ff::9%eth0"}, ps, "203.0.113.9"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/v1/events", nil)
			r.RemoteAddr = c.peer
			for _, v := range c.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := c.proxies.ClientAddr(r); got != c.want {
				t.Errorf("ClientAddr = %q, want %q", got, c.want)
			}
		})
	}
}

// TestHdParseProxies: ranges are masked, single addresses become /32 or
// /128, anything else is refused naming the entry.
func TestHdParseProxies(t *testing.T) {
	ps, err := ParseProxies([]string{"10.1.2.3/8", "192.0.2.7", "2001:db8::1", "::ffff:198.51.100.4"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.0/8", "192.0.2.7/32", "2001:db8::1/128", "198.51.100.4/32"}
	if len(ps) != len(want) {
		t.Fatalf("ParseProxies = %v, want %v", ps, want)
	}
	for i, p := range ps {
		if p != netip.MustParsePrefix(want[i]) {
			t.Errorf("proxy %d = %v, want %v", i, p, want[i])
		}
	}
	for _, bad := range []string{"proxy.example", "10.0.0.0/33", "10.0.0/8", "", "10.0.0.0/-1"} {
		if _, err := ParseProxies([]string{bad}); err == nil {
			t.Errorf("ParseProxies(%q) accepted it", bad)
		} else if bad != "" && !strings.Contains(err.Error(), strconv.Quote(bad)) {
			t.Errorf("ParseProxies(%q): error %q does not name the entry", bad, err)
		}
	}
}
