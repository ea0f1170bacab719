package bench

import (
	"fmt"
	"runtime"
)

// meter measures what a run costs this process: the heap allocations made
// during it, by every goroutine of the process (the benchmark's producers,
// and the client, server and engine when they run in it), and the peak
// resident set.
type meter struct {
	before runtime.MemStats
	rss    *RSSWatch
}

// startMeter starts measuring. runtime.ReadMemStats rather than
// runtime/metrics: its Mallocs counts the tiny allocations (small
// pointer-free objects packed into one block) one by one, which
// /gc/heap/allocs:objects leaves out.
func startMeter() *meter {
	m := &meter{rss: WatchRSS(0)}
	runtime.ReadMemStats(&m.before)
	return m
}

// stop ends the measurement and puts its figures, per event of a run of n
// events, in r.
func (m *meter) stop(n int, r *Result) {
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	r.AllocsPerEvent = float64(after.Mallocs-m.before.Mallocs) / float64(n)
	r.AllocBytesPerEvent = float64(after.TotalAlloc-m.before.TotalAlloc) / float64(n)
	r.PeakRSSMB, r.PeakRSSOf = nil, ""
	if mb, ok := m.rss.Stop(); ok {
		r.PeakRSSMB, r.PeakRSSOf = &mb, RSSOfBench
	}
}

// RSSOfBench is Result.PeakRSSOf when the figure is the benchmark's own
// process.
const RSSOfBench = "this process"

// sampleRSS makes WatchRSS sample on Linux even where it could reset the
// peaks (for the tests of the fallback).
var sampleRSS = false

// FormatRSS is a peak RSS in MB as the table prints it: "n/a" when unknown.
func FormatRSS(mb *float64) string {
	if mb == nil {
		return "n/a"
	}
	return fmt.Sprintf("%.0f", *mb)
}
