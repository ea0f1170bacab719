package main

import (
	"flag"
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trailhq/trail/server"
)

// TestServeLimitsParseRate: RATE[:BURST], RATE a positive finite number of
// reads a second (optionally ending in /s), BURST a positive integer that
// defaults to four seconds' worth; anything else is refused naming the flag
// and the value.
func TestServeLimitsParseRate(t *testing.T) {
	for _, c := range []struct {
		in   string
		want server.Rate
	}{
		{"50:200", server.Rate{PerSecond: 50, Burst: 200}},
		{"50", server.Rate{PerSecond: 50, Burst: 200}},
		{"50/s", server.Rate{PerSecond: 50, Burst: 200}},
		{"50/s:7", server.Rate{PerSecond: 50, Burst: 7}},
		{"1000:2000", server.Rate{PerSecond: 1000, Burst: 2000}},
		{"0.5", server.Rate{PerSecond: 0.5, Burst: 2}},
		{"0.1", server.Rate{PerSecond: 0.1, Burst: 1}},
		{"2.5:1", server.Rate{PerSecond: 2.5, Burst: 1}},
		{"1e3", server.Rate{PerSecond: 1000, Burst: 4000}},
	} {
		got, err := parseRate("--read-rate", c.in)
		if err != nil {
			t.Errorf("parseRate(%q): %v", c.in, err)
			continue
		}
		if diff := cmp.Diff(c.want, got); diff != "" {
			t.Errorf("parseRate(%q) (-want +got):\n%s", c.in, diff)
		}
	}
	for _, in := range []string{
		"", "0", "-1", "-50:200", "abc", "50:", "50:0", "50:-1", "50:x", "50:2.5", ":200",
		"NaN", "nan:10", "Inf", "+Inf", "-Inf", "inf:10", "1e400", "50:99999999999999999999", "50 :200", "50/m",
	} {
		r, err := parseRate("--admin-read-rate", in)
		if err == nil {
			t.Errorf("parseRate(%q) = %+v, want an error", in, r)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, "--admin-read-rate") || !strings.Contains(msg, `"`+in+`"`) {
			t.Errorf("parseRate(%q): error %q does not name the flag and the value", in, msg)
		}
	}
	// A large rate has a burst that is a positive int, not an overflow.
	r, err := parseRate("--read-rate", "1e300")
	if err == nil && r.Burst < 1 {
		t.Errorf("parseRate(1e300) = %+v: the default burst overflowed", r)
	}
}

// hdLimits parses trail serve's limit flags from args.
func hdLimits(t *testing.T, args ...string) (server.Config, error) {
	t.Helper()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var l serveLimits
	l.flags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse %q: %v", args, err)
	}
	return l.config()
}

// TestServeLimitsConfig: the flags' defaults are the contract's, each flag
// reaches the server's configuration, and bad values are refused naming the
// flag.
func TestServeLimitsConfig(t *testing.T) {
	c, err := hdLimits(t)
	if err != nil {
		t.Fatalf("defaults: %v", err)
	}
	want := server.Config{BodyTimeout: 60 * time.Second, MaxTails: 32,
		ReadRate: server.Rate{PerSecond: 50, Burst: 200}, AdminReadRate: server.Rate{PerSecond: 1000, Burst: 2000}}
	if diff := cmp.Diff(want, c, cmp.Comparer(func(a, b server.Proxies) bool { return len(a) == 0 && len(b) == 0 })); diff != "" {
		t.Errorf("default limits (-want +got):\n%s", diff)
	}

	c, err = hdLimits(t, "--trusted-proxy", "10.0.0.0/8", "--trusted-proxy", "192.0.2.7", "--trusted-proxy", "2001:db8::/32",
		"--body-timeout", "5s", "--max-tails", "3", "--read-rate", "10:5", "--admin-read-rate", "100")
	if err != nil {
		t.Fatal(err)
	}
	want = server.Config{
		TrustedProxies: server.Proxies{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"), netip.MustParsePrefix("2001:db8::/32")},
		BodyTimeout:    5 * time.Second, MaxTails: 3,
		ReadRate: server.Rate{PerSecond: 10, Burst: 5}, AdminReadRate: server.Rate{PerSecond: 100, Burst: 400},
	}
	if diff := cmp.Diff(want, c, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("limits (-want +got):\n%s", diff)
	}

	for _, bad := range []struct {
		args []string
		says []string
	}{
		{[]string{"--trusted-proxy", "proxy.example"}, []string{"trusted proxy", "proxy.example"}},
		{[]string{"--trusted-proxy", "10.0.0.0/33"}, []string{"trusted proxy", "10.0.0.0/33"}},
		{[]string{"--trusted-proxy", "10.0.0.0/8", "--trusted-proxy", "nonsense"}, []string{"nonsense"}},
		{[]string{"--body-timeout", "0s"}, []string{"--body-timeout"}},
		{[]string{"--body-timeout", "-1s"}, []string{"--body-timeout"}},
		{[]string{"--max-tails", "0"}, []string{"--max-tails"}},
		{[]string{"--max-tails", "-3"}, []string{"--max-tails"}},
		{[]string{"--read-rate", "0"}, []string{"--read-rate", `"0"`}},
		{[]string{"--read-rate", "fast"}, []string{"--read-rate", "fast"}},
		{[]string{"--admin-read-rate", "10:0"}, []string{"--admin-read-rate", "burst"}},
		{[]string{"--admin-read-rate", "NaN"}, []string{"--admin-read-rate"}},
	} {
		_, err := hdLimits(t, bad.args...)
		if err == nil {
			t.Errorf("%q accepted", bad.args)
			continue
		}
		for _, s := range bad.says {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%q: error %q does not say %q", bad.args, err, s)
			}
		}
	}
}
