package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trailhq/trail/internal/bench"
)

// TestBenchMemory: trail bench --embedded --baseline gives each of its
// three runs its own allocations per event and peak RSS of this process, in
// the JSON and in the table.
func TestBenchMemory(t *testing.T) {
	out, errOut, code := runTrail(t, "bench", "--embedded", "--events", "3000", "--producers", "8", "--baseline", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var raw []map[string]any
	if err := json.Unmarshal([]byte(out), &raw); err != nil || len(raw) != 3 {
		t.Fatalf("want three results: %v\n%s", err, out)
	}
	for _, m := range raw {
		for _, k := range []string{"allocs_per_event", "alloc_bytes_per_event", "peak_rss_mb", "peak_rss_of"} {
			if _, ok := m[k]; !ok {
				t.Errorf("%v has no %s", m["mode"], k)
			}
		}
	}
	var rs []bench.Result
	if err := json.Unmarshal([]byte(out), &rs); err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		// Every writer encodes each event of about 300 bytes at least once,
		// and acknowledges it (a channel or a pending receipt).
		if r.AllocsPerEvent < 2 || r.AllocsPerEvent > 200 || r.AllocBytesPerEvent < 300 || r.AllocBytesPerEvent > 100000 {
			t.Errorf("%s: %.1f allocations, %.0f bytes per event", r.Mode, r.AllocsPerEvent, r.AllocBytesPerEvent)
		}
		// The program alone is resident for some MB; none of these runs
		// needs a GB.
		if r.PeakRSSMB == nil || *r.PeakRSSMB < 5 || *r.PeakRSSMB > 1024 || r.PeakRSSOf != bench.RSSOfBench {
			t.Errorf("%s: peak RSS %v MB of %q", r.Mode, r.PeakRSSMB, r.PeakRSSOf)
		}
	}
	// The engine does more per event than the naive writer.
	if rs[0].AllocBytesPerEvent <= rs[2].AllocBytesPerEvent {
		t.Errorf("engine %.0f B per event, naive writer %.0f", rs[0].AllocBytesPerEvent, rs[2].AllocBytesPerEvent)
	}

	out, errOut, code = runTrail(t, "bench", "--embedded", "--events", "2000", "--producers", "8")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasSuffix(lines[0], "allocs/ev      B/ev  RSS MB") || strings.HasSuffix(lines[1], "n/a") {
		t.Errorf("table:\n%s", out)
	}
}

// TestBenchServerRSS: with --server the server is not the bench's, so its
// peak RSS is n/a (null), while the client's allocations are reported.
func TestBenchServerRSS(t *testing.T) {
	p := startServe(t, filepath.Join(t.TempDir(), "data"))
	out, errOut, code := runTrail(t, "bench", "--server", p.url, "--token", p.token, "--events", "1000", "--producers", "8", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatal(err)
	}
	if rss, ok := m["peak_rss_mb"]; !ok || rss != nil {
		t.Errorf("peak_rss_mb %v (present %v), want null: %s", rss, ok, out)
	}
	if a, _ := m["allocs_per_event"].(float64); a < 1 {
		t.Errorf("allocs_per_event %v: %s", m["allocs_per_event"], out)
	}
	out, errOut, code = runTrail(t, "bench", "--server", p.url, "--token", p.token, "--events", "1000", "--producers", "8")
	if code != 0 || !strings.HasSuffix(strings.TrimSpace(out), " n/a") {
		t.Errorf("exit %d, table without n/a for the RSS:\n%s%s", code, out, errOut)
	}
}
