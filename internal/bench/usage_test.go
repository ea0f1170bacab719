package bench

import (
	"context"
	"encoding/json"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/trailhq/trail"
)

// allocAppender allocates allocs blocks of size bytes per event, kept
// reachable, and holds hold bytes, touched, from its first event to the
// end of the run; each event takes at least pause.
type allocAppender struct {
	allocs, size int
	hold         int
	pause        time.Duration
	kept         [][]byte
	held         []byte
	ch           chan struct{} // one event at a time, so kept needs no lock
}

func newAllocAppender(allocs, size, hold int, pause time.Duration) *allocAppender {
	return &allocAppender{allocs: allocs, size: size, hold: hold, pause: pause, ch: make(chan struct{}, 1)}
}

func (a *allocAppender) Append(ctx context.Context, ev trail.Event) error {
	a.ch <- struct{}{}
	defer func() { <-a.ch }()
	if a.held == nil && a.hold > 0 {
		a.held = make([]byte, a.hold)
		for i := 0; i < len(a.held); i += 4096 {
			a.held[i] = 1 // make it resident
		}
	}
	for range a.allocs {
		a.kept = append(a.kept[:0], make([]byte, a.size))
	}
	if a.pause > 0 {
		time.Sleep(a.pause)
	}
	return nil
}

func (a *allocAppender) Log(ev trail.Event) Waiter {
	return doneWaiter{a.Append(context.Background(), ev)}
}

// TestRunCountsAllocations: a run of an appender that makes a known number
// of allocations of a known size per event reports at least those, and not
// much more (the benchmark's own loop allocates next to nothing), in both
// modes.
func TestRunCountsAllocations(t *testing.T) {
	const allocs, size = 5, 1000
	for _, async := range []bool{false, true} {
		w := Workload{Events: 20000, Size: 300, Producers: 8, Async: async}
		r, err := Run(context.Background(), newAllocAppender(allocs, size, 0, 0), w)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("async=%v: %.2f allocations, %.0f bytes per event", async, r.AllocsPerEvent, r.AllocBytesPerEvent)
		if r.AllocsPerEvent < allocs || r.AllocsPerEvent > allocs+2 {
			t.Errorf("async=%v: %.2f allocations per event, want %d to %d", async, r.AllocsPerEvent, allocs, allocs+2)
		}
		if r.AllocBytesPerEvent < allocs*size || r.AllocBytesPerEvent > allocs*(size+100)+200 {
			t.Errorf("async=%v: %.0f bytes allocated per event, want about %d", async, r.AllocBytesPerEvent, allocs*size)
		}
	}
}

// TestRunPeakRSS: a run that holds 96 MB reports a peak RSS of at least
// that; the run after it, which holds nothing, reports its own, lower peak,
// not the one before: each run starts its own measurement. Both with the
// kernel's peak reset and with the sampling it falls back to.
func TestRunPeakRSS(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("peak RSS is measured on Linux only")
	}
	for _, sample := range []bool{false, true} {
		sampleRSS = sample
		const hold = 96 << 20
		w := Workload{Events: 400, Size: 300, Producers: 1}
		big, err := Run(context.Background(), newAllocAppender(1, 100, hold, 500*time.Microsecond), w)
		if err != nil {
			t.Fatal(err)
		}
		small, err := Run(context.Background(), newAllocAppender(1, 100, 0, 500*time.Microsecond), w)
		if err != nil {
			t.Fatal(err)
		}
		if big.PeakRSSMB == nil || small.PeakRSSMB == nil || big.PeakRSSOf != RSSOfBench {
			t.Fatalf("sample=%v: peak RSS %v (of %q) and %v, want both known", sample, big.PeakRSSMB, big.PeakRSSOf, small.PeakRSSMB)
		}
		t.Logf("sample=%v: peak RSS %.1f MB holding 96 MB, then %.1f MB", sample, *big.PeakRSSMB, *small.PeakRSSMB)
		if *big.PeakRSSMB < 96 || *big.PeakRSSMB > 4096 {
			t.Errorf("sample=%v: peak RSS %.1f MB while holding 96 MB", sample, *big.PeakRSSMB)
		}
		// Under the race detector the shadow of the freed 96 MB stays
		// resident, so a run after it cannot show a lower peak; CI checks
		// this without the detector (go test ./...).
		if !raceEnabled && (*small.PeakRSSMB <= 1 || *small.PeakRSSMB > *big.PeakRSSMB-64) {
			t.Errorf("sample=%v: peak RSS %.1f MB holding nothing after a run at %.1f MB: not its own", sample, *small.PeakRSSMB, *big.PeakRSSMB)
		}
	}
	sampleRSS = false
}

// TestResultJSON: the JSON of a result has the new figures under their
// names, and null for an unknown peak RSS; the table prints "n/a" for it.
func TestResultJSON(t *testing.T) {
	mb := 42.0
	for _, r := range []Result{
		{Mode: "x", AllocsPerEvent: 7.5, AllocBytesPerEvent: 1234, PeakRSSMB: &mb, PeakRSSOf: RSSOfBench},
		{Mode: "y", AllocsPerEvent: 7.5, AllocBytesPerEvent: 1234},
	} {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		if m["allocs_per_event"] != 7.5 || m["alloc_bytes_per_event"] != 1234.0 {
			t.Errorf("%s: allocations not under their names", b)
		}
		rss, ok := m["peak_rss_mb"]
		if !ok || (r.PeakRSSMB == nil) != (rss == nil) || (r.PeakRSSMB != nil && rss != 42.0) {
			t.Errorf("%s: peak_rss_mb %v, want %v", b, rss, r.PeakRSSMB)
		}
		row := Format(r)
		if len(row) != len(Header) { // right-aligned under the header
			t.Errorf("row and header not aligned:\n%s\n%s", Header, row)
		}
		want := "42"
		if r.PeakRSSMB == nil {
			want = "n/a"
		}
		if !strings.HasSuffix(row, " "+want) || !strings.Contains(row, " 7.5 ") || !strings.Contains(row, " 1234 ") {
			t.Errorf("row %q: want allocs 7.5, 1234 B and RSS %s", row, want)
		}
	}
}
