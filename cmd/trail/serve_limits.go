package main

import (
	"flag"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/trailhq/trail/auth"
	"github.com/trailhq/trail/server"
)

// serveLimits are the flags of trail serve that bound what one client may
// cost: trusted proxies (who the client is), body time, tails and read
// rates.
type serveLimits struct {
	proxies     stringList
	bodyTimeout time.Duration
	maxTails    int
	readRate    string
	adminRate   string
}

func (l *serveLimits) flags(fs *flag.FlagSet) {
	fs.Var(&l.proxies, "trusted-proxy", "a reverse proxy's `CIDR` (repeatable): requests from it are attributed to the rightmost X-Forwarded-For address outside these ranges")
	fs.DurationVar(&l.bodyTimeout, "body-timeout", time.Minute, "how long a request body may take to arrive")
	fs.IntVar(&l.maxTails, "max-tails", 32, "live tails one principal may hold; more get 429")
	fs.StringVar(&l.readRate, "read-rate", "50:200", "read records a second per principal, and the burst, as `RATE[:BURST]`: a read counts one, plus one per further patient whose events it returned (a read's records past its rate make its next reads wait); more get 429")
	fs.StringVar(&l.adminRate, "admin-read-rate", "1000:2000", "read records a second of the admin, and the burst, as `RATE[:BURST]` (counted as for --read-rate)")
}

// config turns the flags into the server's configuration.
func (l *serveLimits) config() (server.Config, error) {
	var c server.Config
	var err error
	if c.TrustedProxies, err = auth.ParseProxies(l.proxies); err != nil {
		return c, err
	}
	if l.bodyTimeout <= 0 {
		return c, fmt.Errorf("--body-timeout %s: must be positive", l.bodyTimeout)
	}
	if l.maxTails < 1 {
		return c, fmt.Errorf("--max-tails %d: must be at least 1", l.maxTails)
	}
	c.BodyTimeout, c.MaxTails = l.bodyTimeout, l.maxTails
	if c.ReadRate, err = parseRate("--read-rate", l.readRate); err != nil {
		return c, err
	}
	if c.AdminReadRate, err = parseRate("--admin-read-rate", l.adminRate); err != nil {
		return c, err
	}
	return c, nil
}

// parseRate reads RATE[:BURST] (RATE may end in /s), RATE a positive finite
// number; the burst defaults to four seconds' worth (at most MaxInt32).
func parseRate(flagName, v string) (server.Rate, error) {
	rs, bs, hasBurst := strings.Cut(v, ":")
	rate, err := strconv.ParseFloat(strings.TrimSuffix(rs, "/s"), 64)
	if err != nil || !(rate > 0) || math.IsInf(rate, 0) { // NaN and Inf parse, and would turn the limit off
		return server.Rate{}, fmt.Errorf("%s %q: want RATE[:BURST], a positive number of reads a second and optionally a burst, e.g. 50:200", flagName, v)
	}
	r := server.Rate{PerSecond: rate, Burst: int(min(max(1, rate*4), math.MaxInt32))}
	if hasBurst {
		if r.Burst, err = strconv.Atoi(bs); err != nil || r.Burst < 1 {
			return server.Rate{}, fmt.Errorf("%s %q: the burst must be a positive integer", flagName, v)
		}
	}
	return r, nil
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }
