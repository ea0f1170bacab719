package benchmarks

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/trailhq/trail/internal/bench"
)

// TestRowJSONMemory: a row's allocations and peak RSS are the medians of its
// runs, under their names in the JSON; PostgreSQL's peak RSS is null, the
// figure of this process being its client's alone.
func TestRowJSONMemory(t *testing.T) {
	mb := func(v float64) *float64 { return &v }
	rs := []bench.Result{
		{AllocsPerEvent: 10, AllocBytesPerEvent: 1000, PeakRSSMB: mb(50)},
		{AllocsPerEvent: 12, AllocBytesPerEvent: 3000, PeakRSSMB: mb(70)},
		{AllocsPerEvent: 11, AllocBytesPerEvent: 2000, PeakRSSMB: mb(60)},
	}
	for _, c := range []struct {
		system string
		rss    any
	}{{SystemTrail, 60.0}, {SystemPostgreSQL, nil}} {
		row := median(target{system: c.system, mode: "p=8"}, rs)
		b, err := json.Marshal(row)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		rss, ok := m["peak_rss_mb"]
		if m["allocs_per_event"] != 11.0 || m["alloc_bytes_per_event"] != 2000.0 || !ok || rss != c.rss {
			t.Errorf("%s: %s, want 11 allocations, 2000 bytes and a peak RSS of %v", c.system, b, c.rss)
		}
	}
	rs[1].PeakRSSMB = nil
	if row := median(target{system: SystemTrail}, rs); row.PeakRSSMB != nil {
		t.Errorf("peak RSS %v when a run has none", *row.PeakRSSMB)
	}
}

// TestWriteTableMemory: the table has the allocation and RSS columns, n/a
// where the RSS is unknown, and says whose figures they are.
func TestWriteTableMemory(t *testing.T) {
	mb := 64.4
	rep := Report{Rows: []Row{
		{System: SystemPostgreSQL, Mode: "p=8", Method: "INSERT", Events: 100, Runs: 1, EventsPerSec: 1000, AllocsPerEvent: 21.2, AllocBytesPerEvent: 1077},
		{System: SystemTrail, Mode: "p=8", Method: "HTTP", Events: 100, Runs: 1, EventsPerSec: 5000, AllocsPerEvent: 27.9, AllocBytesPerEvent: 6422, PeakRSSMB: &mb},
	}}
	var b strings.Builder
	if err := WriteTable(&b, rep); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(b.String(), "\n")
	var header, pg, tr string
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "system"):
			header = l
		case strings.HasPrefix(l, "postgresql "):
			pg = l
		case strings.HasPrefix(l, "trail "):
			tr = l
		}
	}
	if !strings.HasSuffix(strings.TrimSpace(header), "allocs/ev  B/ev  RSS MB") {
		t.Errorf("header %q", header)
	}
	if f := strings.Fields(pg); len(f) < 3 || f[len(f)-3] != "21.2" || f[len(f)-2] != "1077" || f[len(f)-1] != "n/a" {
		t.Errorf("postgresql row %q", pg)
	}
	if f := strings.Fields(tr); len(f) < 3 || f[len(f)-3] != "27.9" || f[len(f)-2] != "6422" || f[len(f)-1] != "64" {
		t.Errorf("trail row %q", tr)
	}
	if !strings.Contains(b.String(), "its Go client only") {
		t.Errorf("no note on whose allocations:\n%s", b.String())
	}
}
