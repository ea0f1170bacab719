package server

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/trailhq/trail"
)

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
		s, err := New(l, Config{AdminToken: "trail_x", ReadRate: Rate{PerSecond: v, Burst: 3}, AdminReadRate: Rate{PerSecond: v, Burst: 3}})
		if err != nil {
			t.Fatal(err)
		}
		if s.cfg.ReadRate != (Rate{PerSecond: defaultReadRate, Burst: defaultReadBurst}) || s.cfg.AdminReadRate != (Rate{PerSecond: defaultAdminReadRate, Burst: defaultAdminReadBurst}) {
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
