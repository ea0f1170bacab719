// Package bench runs Trail's append benchmarks: the workload of "trail bench"
// against any appender, and a bare group-commit writer as the baseline that
// shows what the disk can do.
package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/trailhq/trail"
)

// Workload describes one run.
type Workload struct {
	Events    int  // events to append
	Size      int  // approximate size of an event as sent (client JSON with an id) in bytes
	Producers int  // concurrent callers, each waiting for its receipt
	Async     bool // one caller logs everything, then waits for all
	Streams   int  // distinct streams (default 1000)
}

// Result is what "trail bench" prints.
type Result struct {
	Mode         string  `json:"mode"`
	Events       int     `json:"events"`
	Seconds      float64 `json:"seconds"`
	EventsPerSec float64 `json:"events_per_sec"`
	AckP50ms     float64 `json:"ack_p50_ms"`
	AckP99ms     float64 `json:"ack_p99_ms"`
	AckMaxms     float64 `json:"ack_max_ms"`
	Durable      bool    `json:"durable"`
	// AllocsPerEvent and AllocBytesPerEvent are the heap allocations this
	// process made during the run, per event: of every goroutine in it, so
	// the client's, and the server's and engine's too when they run in it.
	AllocsPerEvent     float64 `json:"allocs_per_event"`
	AllocBytesPerEvent float64 `json:"alloc_bytes_per_event"`
	// PeakRSSMB is the peak resident set during the run, in MB (2^20 bytes),
	// of the processes PeakRSSOf names (RSSOfBench: this one); nil ("n/a")
	// when unknown: outside Linux, or when the work runs in a process the
	// benchmark did not start.
	PeakRSSMB *float64 `json:"peak_rss_mb"`
	PeakRSSOf string   `json:"peak_rss_of,omitempty"`
	// ProcessEvents, of a run through several servers, are the events each
	// acknowledged over HTTP, as its metrics count them.
	ProcessEvents []int64 `json:"process_events,omitempty"`
	// Storage, of a run into PostgreSQL, is what the events take there.
	Storage *Storage `json:"storage,omitempty"`
}

// Storage is what a run's events take in PostgreSQL, in bytes per event:
// the rows (with their TOAST), the rows' indexes, and the Merkle tree's
// nodes (with theirs; Trail only).
type Storage struct {
	Rows    float64 `json:"rows_bytes_per_event"`
	Indexes float64 `json:"indexes_bytes_per_event"`
	Tree    float64 `json:"tree_bytes_per_event"`
}

func (s *Storage) String() string {
	return fmt.Sprintf("%.0f B rows + %.0f B indexes + %.0f B tree = %.0f B per event", s.Rows, s.Indexes, s.Tree, s.Rows+s.Indexes+s.Tree)
}

// Appender is what a benchmark drives: the embedded engine, the client, or
// the bare writer.
type Appender interface {
	Log(ev trail.Event) Waiter
	Append(ctx context.Context, ev trail.Event) error
}

// Waiter is a pending acknowledgement.
type Waiter interface {
	Wait(ctx context.Context) error
}

// serverOverhead approximates the bytes the server adds to a client event.
const serverOverhead = len(`"index":1234567,"stream_seq":1234,"recorded":"2026-11-25T10:00:00.123456789Z","time":"2026-11-25T10:00:00.123456789Z",,"prev":"`) + 64 + 1

// Events builds n distinct-looking events of about size bytes as a client
// sends them (JSON, with an id), spread over streams; a benchmark cycles
// through them. Stored, each is about serverOverhead bytes larger.
func Events(n, size, streams int) []trail.Event {
	if streams <= 0 {
		streams = 1000
	}
	evs := make([]trail.Event, n)
	for i := range evs {
		ev := trail.Event{
			ID:      "01930000-0000-7000-8000-000000000000", // for sizing only; cleared below
			Stream:  fmt.Sprintf("patient/%d", i%streams),
			Type:    "patient-record.read",
			Action:  "R",
			Actor:   trail.Actor{ID: fmt.Sprintf("dr-%d", i%97), Role: "physician", Address: "10.1.2.3"},
			Patient: fmt.Sprintf("%d", i%streams),
		}
		b, _ := json.Marshal(ev)
		pad := size - len(b) - len(`,"details":{"note":""}`)
		if pad > 0 {
			ev.Details = json.RawMessage(`{"note":"` + strings.Repeat("x", pad) + `"}`)
		}
		ev.ID = ""
		evs[i] = ev
	}
	return evs
}

// Run drives a with w and measures throughput and acknowledgement latency.
func Run(ctx context.Context, a Appender, w Workload) (Result, error) {
	return RunSplit(ctx, []Appender{a}, w)
}

// RunSplit drives several appenders (say, clients of several servers) with
// w as one run: producer p appends through as[p%len(as)], so that the
// producers are split evenly; an async run logs event i through
// as[i%len(as)].
func RunSplit(ctx context.Context, as []Appender, w Workload) (Result, error) {
	if len(as) == 0 {
		return Result{}, fmt.Errorf("bench: no appender")
	}
	evs := Events(min(w.Events, 4096), w.Size, w.Streams)
	src := source{evs: evs}
	if w.Streams > len(evs) {
		// More streams than templates: event i goes to stream i%Streams,
		// its name made once beforehand, not in the timed loop.
		src.streams = make([]string, min(w.Streams, w.Events))
		for i := range src.streams {
			src.streams[i] = fmt.Sprintf("patient/%d", i)
		}
	}
	// The benchmark's own bookkeeping is made before the measurement starts,
	// so that the allocations per event are the work's.
	lat := make([]time.Duration, w.Events)
	var sent []time.Time
	if w.Async {
		sent = make([]time.Time, w.Events)
	}
	// Garbage of what ran before (an earlier run, the templates) is collected
	// and its memory given back to the system, so that the peak RSS is this
	// run's.
	debug.FreeOSMemory()
	m := startMeter()
	start := time.Now()
	var err error
	if w.Async {
		err = runAsync(ctx, as, src, lat, sent)
	} else {
		err = runProducers(ctx, as, src, lat, max(w.Producers, 1))
	}
	el := time.Since(start)
	var res Result
	m.stop(w.Events, &res)
	if err != nil {
		return Result{}, err
	}
	slices.Sort(lat)
	q := func(f float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[min(int(f*float64(len(lat))), len(lat)-1)]) / 1e6
	}
	res.Events, res.Seconds, res.EventsPerSec = w.Events, el.Seconds(), float64(w.Events)/el.Seconds()
	res.AckP50ms, res.AckP99ms, res.AckMaxms = q(0.50), q(0.99), q(1)
	return res, nil
}

// source hands out the events of a run: templates, cycled, each put in its
// own stream when the run has more streams than templates.
type source struct {
	evs     []trail.Event
	streams []string // stream names when there are more than templates
}

func (s source) event(i int) trail.Event {
	ev := s.evs[i%len(s.evs)]
	if len(s.streams) > 0 {
		ev.Stream = s.streams[i%len(s.streams)]
		ev.Patient = ev.Stream[len("patient/"):]
	}
	return ev
}

// runProducers appends len(lat) events with producers callers, each waiting
// for its acknowledgement, and puts each event's latency in lat.
func runProducers(ctx context.Context, as []Appender, src source, lat []time.Duration, producers int) error {
	n := len(lat)
	var wg sync.WaitGroup
	errs := make(chan error, producers)
	for p := 0; p < producers; p++ {
		wg.Add(1)
		a := as[p%len(as)]
		go func() {
			defer wg.Done()
			for i := p; i < n; i += producers {
				t0 := time.Now()
				if err := a.Append(ctx, src.event(i)); err != nil {
					errs <- fmt.Errorf("event %d: %w", i, err)
					return
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// runAsync logs len(lat) events from one caller while another waits for
// their acknowledgements in order; sent holds each event's start.
func runAsync(ctx context.Context, as []Appender, src source, lat []time.Duration, sent []time.Time) error {
	n := len(lat)
	ws := make(chan Waiter, 1<<16)
	done := make(chan error, 1)
	go func() {
		var first error
		i := 0
		for w := range ws {
			if err := w.Wait(ctx); err != nil && first == nil {
				first = fmt.Errorf("event %d: %w", i, err)
			}
			lat[i] = time.Since(sent[i])
			i++
		}
		done <- first
	}()
	for i := 0; i < n; i++ {
		sent[i] = time.Now()
		ws <- as[i%len(as)].Log(src.event(i))
	}
	close(ws)
	return <-done
}

// Format writes r as the table row "trail bench" prints.
func Format(r Result) string { return FormatWidth(r, modeWidth) }

// FormatWidth is Format with the mode column width wide (at least 22), for
// a table whose modes are longer (see HeaderWidth).
func FormatWidth(r Result, width int) string {
	return fmt.Sprintf("%-*s %10d %9.2f %14.0f %10.2f %10.2f %10.2f %8v %10.1f %9.0f %7s",
		max(width, modeWidth), r.Mode, r.Events, r.Seconds, r.EventsPerSec, r.AckP50ms, r.AckP99ms, r.AckMaxms, r.Durable,
		r.AllocsPerEvent, r.AllocBytesPerEvent, FormatRSS(r.PeakRSSMB))
}

// Header is the table header matching Format.
const Header = "mode                       events   seconds     events/s       p50 ms     p99 ms     max ms  durable  allocs/ev      B/ev  RSS MB"

// modeWidth is the width of Header's mode column.
const modeWidth = 22

// HeaderWidth is the header matching FormatWidth(r, width).
func HeaderWidth(width int) string {
	return "mode" + strings.Repeat(" ", max(width, modeWidth)-modeWidth) + Header[len("mode"):]
}
