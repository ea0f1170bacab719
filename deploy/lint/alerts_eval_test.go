package lint

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/promql/promqltest"
)

// TestAlertsFire evaluates each alert's expression with Prometheus's own
// query engine over series made for it, at a moment when it should fire and
// at one when it should not: a condition that cannot be true (a wrong label
// value, a ratio upside down, an "and" that never matches) fails here. The
// series are in promqltest's load notation: one sample a step from time 0,
// "a+bxn" for n steps growing by b from a.
func TestAlertsFire(t *testing.T) {
	p := parser.NewParser(parser.Options{})
	groups, errs := rulefmt.ParseFile("../prometheus/alerts.yml", false, model.UTF8Validation, p, slog.New(slog.DiscardHandler))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	exprs := map[string]string{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			exprs[r.Alert] = r.Expr
		}
	}
	type at struct {
		t    time.Duration
		fire bool
	}
	cases := []struct {
		alert, load string
		at          []at
	}{
		{"TrailDown", `load 1m
			up{job="trail"} 1 1 0 0
			up{job="other"} 0 0 0 0`,
			[]at{{time.Minute, false}, {3 * time.Minute, true}}},
		{"TrailNotReady", `load 1m
			trail_ready 1 1 0 0`,
			[]at{{time.Minute, false}, {3 * time.Minute, true}}},
		{"TrailStorageFailed", `load 1m
			trail_failed 0 0 1`,
			[]at{{time.Minute, false}, {2 * time.Minute, true}}},
		{"TrailFsyncSlow", `load 1m
			trail_fsync_duration_seconds_bucket{le="0.01"} 0+100x10 1000x10
			trail_fsync_duration_seconds_bucket{le="1"} 0+100x10 1000+100x10
			trail_fsync_duration_seconds_bucket{le="+Inf"} 0+100x10 1000+100x10`,
			[]at{{10 * time.Minute, false}, {20 * time.Minute, true}}},
		{"TrailIntegrityFailure", `load 1m
			trail_integrity_failures_total 0 0 0 1 1`,
			[]at{{2 * time.Minute, false}, {4 * time.Minute, true}}},
		{"TrailQueueNearlyFull", `load 1m
			trail_queue_events 100 900
			trail_queue_limit_events 1000 1000`,
			[]at{{0, false}, {time.Minute, true}}},
		{"TrailAppendsRefusedOverload", `load 1m
			trail_http_rejected_total{reason="unauthenticated"} 0+5x10
			trail_http_rejected_total{reason="overloaded"} 0x5 0+3x5`,
			[]at{{4 * time.Minute, false}, {9 * time.Minute, true}}},
		{"TrailDiskSpaceLow", `load 1m
			trail_disk_free_bytes 50 5
			trail_disk_size_bytes 100 100`,
			[]at{{0, false}, {time.Minute, true}}},
		{"TrailDiskSpaceCritical", `load 1m
			trail_disk_free_bytes 5 2
			trail_disk_size_bytes 100 100`,
			[]at{{0, false}, {time.Minute, true}}},
		// 40 % free after 6 hours: at 0.9 % an hour it lasts the day; at 3 %
		// an hour it does not.
		{"TrailDiskFullWithin24h", `load 10m
			trail_disk_free_bytes{disk="slow"} 45400-150x36
			trail_disk_free_bytes{disk="fast"} 58000-500x36
			trail_disk_size_bytes{disk="slow"} 100000x36
			trail_disk_size_bytes{disk="fast"} 100000x36`,
			[]at{{6 * time.Hour, true}}},
		// Stale: the log grew past the latest checkpoint, signed long ago
		// (or not since the start: 0). Idle: an old checkpoint of the whole
		// log. Recent: a checkpoint a moment ago.
		{"TrailCheckpointStale", `load 1m
			trail_log_events{case="stale"} 10x20
			trail_checkpoint_size{case="stale"} 5x20
			trail_checkpoint_timestamp_seconds{case="stale"} 0x20
			trail_log_events{case="idle"} 10x20
			trail_checkpoint_size{case="idle"} 10x20
			trail_checkpoint_timestamp_seconds{case="idle"} 0x20
			trail_log_events{case="recent"} 10+1x20
			trail_checkpoint_size{case="recent"} 9+1x20
			trail_checkpoint_timestamp_seconds{case="recent"} 0+60x20`,
			[]at{{2 * time.Minute, false}, {10 * time.Minute, true}}},
		{"TrailIndexBehind", `load 1m
			trail_log_events 200000 300000
			trail_index_applied_events 190000 100000`,
			[]at{{0, false}, {time.Minute, true}}},
		{"TrailTokensUnreadable", `load 1m
			trail_tokens_reload_errors_total 0 0 0 1`,
			[]at{{2 * time.Minute, false}, {3 * time.Minute, true}}},
	}
	engine := promqltest.NewTestEngineWithOpts(t, promql.EngineOpts{
		MaxSamples: 100000, Timeout: 10 * time.Second, Parser: p,
	})
	tested := map[string]bool{}
	for _, tc := range cases {
		t.Run(tc.alert, func(t *testing.T) {
			tested[tc.alert] = true
			expr, ok := exprs[tc.alert]
			if !ok {
				t.Fatalf("no alert %s in alerts.yml", tc.alert)
			}
			st := promqltest.LoadedStorage(t, tc.load)
			for _, a := range tc.at {
				q, err := engine.NewInstantQuery(context.Background(), st, nil, expr, time.Unix(0, 0).Add(a.t))
				if err != nil {
					t.Fatal(err)
				}
				res := q.Exec(context.Background())
				if res.Err != nil {
					t.Fatal(res.Err)
				}
				v, err := res.Vector()
				if err != nil {
					t.Fatal(err)
				}
				if fired := len(v) > 0; fired != a.fire {
					t.Errorf("at %v: %s gives %v; want it to fire: %v", a.t, expr, v, a.fire)
				}
				if tc.alert == "TrailDown" || tc.alert == "TrailCheckpointStale" || tc.alert == "TrailDiskFullWithin24h" {
					for _, s := range v {
						if s.Metric.Get("job") == "other" || s.Metric.Get("case") == "idle" || s.Metric.Get("case") == "recent" || s.Metric.Get("disk") == "slow" {
							t.Errorf("at %v: %s fires for %v", a.t, tc.alert, s.Metric)
						}
					}
				}
			}
		})
	}
	for name := range exprs {
		if !tested[name] {
			t.Errorf("alert %s has no case here", name)
		}
	}
}
