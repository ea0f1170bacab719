package server

import (
	"context"
	"math"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trailhq/trail"
)

// TestHdLimiterBounded: an attacker who varies its key (a new address, or a
// new /64, for every attempt) cannot grow the failed-authentication table
// past its bound, however many keys it uses.
func TestHdLimiterBounded(t *testing.T) {
	l := newLimiter(failRate, failBurst, maxFailBuckets)
	now := time.Now()
	l.now = func() time.Time { return now } // all within a second: nothing is idle
	peak := 0
	key := []byte("2001:db8::/64#")
	for i := range 1_000_000 {
		l.spend(string(strconv.AppendInt(key[:14], int64(i), 10)))
		if n := len(l.buckets); n > peak {
			peak = n
		}
	}
	if peak > maxFailBuckets {
		t.Errorf("table held %d buckets under 1M distinct keys; the bound is %d", peak, maxFailBuckets)
	}
	if n := l.len(); n == 0 || n > maxFailBuckets {
		t.Errorf("table holds %d buckets after 1M distinct keys, want 1-%d", n, maxFailBuckets)
	}
}

// TestHdLimiterCounts: a key has its burst, then one attempt per refill;
// blocked takes nothing, and other keys are unaffected.
func TestHdLimiterCounts(t *testing.T) {
	now := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	l := newLimiter(1, 3, 10)
	l.now = func() time.Time { return now }
	for i := range 3 {
		if blocked, _ := l.blocked("a"); blocked {
			t.Fatalf("attempt %d of a burst of 3 blocked", i+1)
		}
		l.spend("a")
	}
	blocked, wait := l.blocked("a")
	if !blocked || wait <= 0 || wait > time.Second {
		t.Fatalf("after the burst: blocked %v wait %v, want blocked for at most 1s", blocked, wait)
	}
	if blocked, _ := l.blocked("a"); !blocked {
		t.Fatal("blocked took a token: a second look unblocked the key")
	}
	if blocked, _ := l.blocked("b"); blocked {
		t.Fatal("another key is blocked by a's failures")
	}
	now = now.Add(time.Second)
	if blocked, _ := l.blocked("a"); blocked {
		t.Fatal("a is still blocked a refill later")
	}
	if ok, _ := l.take("a"); !ok {
		t.Fatal("take after a refill failed")
	}
	if ok, wait := l.take("a"); ok || wait <= 0 {
		t.Fatalf("take on an empty bucket: ok %v wait %v, want refused with a wait", ok, wait)
	}
}

// TestHdLimitKey: IPv4 addresses count alone (IPv4-mapped ones as IPv4),
// IPv6 addresses by their /64.
func TestHdLimitKey(t *testing.T) {
	for _, c := range []struct{ a, b string }{
		{"192.0.2.1", "::ffff:192.0.2.1"},
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff"},
		{"2001:db8:1:2::1", "2001:DB8:1:2:abcd::9"},
	} {
		if ka, kb := limitKey(c.a), limitKey(c.b); ka != kb {
			t.Errorf("limitKey(%s) = %q, limitKey(%s) = %q: want one key", c.a, ka, c.b, kb)
		}
	}
	for _, c := range []struct{ a, b string }{
		{"192.0.2.1", "192.0.2.2"},
		{"2001:db8:1:2::1", "2001:db8:1:3::1"},
		{"2001:db8:1:2::1", "2001:db9:1:2::1"},
	} {
		if ka, kb := limitKey(c.a), limitKey(c.b); ka == kb {
			t.Errorf("limitKey(%s) = limitKey(%s) = %q: want different keys", c.a, c.b, ka)
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
	} {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/v1/events", nil)
			r.RemoteAddr = c.peer
			for _, v := range c.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := c.proxies.clientAddr(r); got != c.want {
				t.Errorf("clientAddr = %q, want %q", got, c.want)
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

// TestHdRateNotFinite: a read rate that is NaN, Inf, zero or negative is
// the default, not a limit that never runs out.
func TestHdRateNotFinite(t *testing.T) {
	l, err := trail.Open(t.TempDir(), trail.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		l.Close(ctx)
	})
	for _, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1), 0, -5} {
		s, err := New(l, Config{AdminToken: "trail_x", ReadRate: Rate{v, 3}, AdminReadRate: Rate{v, 3}})
		if err != nil {
			t.Fatal(err)
		}
		if s.cfg.ReadRate != (Rate{defaultReadRate, defaultReadBurst}) || s.cfg.AdminReadRate != (Rate{defaultAdminReadRate, defaultAdminReadBurst}) {
			t.Errorf("rate %v: read rates %+v and %+v, want the defaults", v, s.cfg.ReadRate, s.cfg.AdminReadRate)
		}
		p := &Principal{Name: "clin"}
		refused := false
		for range defaultReadBurst + 10 {
			if s.readAllowed(p) != nil {
				refused = true
				break
			}
		}
		if !refused {
			t.Errorf("rate %v: %d reads at once, none refused", v, defaultReadBurst+10)
		}
	}
}
