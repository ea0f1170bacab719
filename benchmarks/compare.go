package benchmarks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/trailhq/trail/internal/bench"
)

// Config is one comparison. The zero value of each field means its default.
type Config struct {
	// Events is the number of events of each Trail run and of each
	// PostgreSQL COPY run (default 100,000).
	Events int
	// InsertEvents is the number of events of the PostgreSQL single-row
	// INSERT run, which is much slower (default 30,000). Throughput is
	// compared, so the counts may differ; a smaller table favours PostgreSQL.
	InsertEvents int
	// Size is the approximate size of an event as a client sends it, in
	// bytes (default 300, as "trail bench").
	Size int
	// Producers is the number of concurrent callers of the p=N modes, each
	// waiting for its acknowledgement (default 64); PostgreSQL gets as many
	// connections.
	Producers int
	// Streams is the number of distinct streams (default 1000).
	Streams int
	// CopyConns is the number of connections running COPYs at once in the
	// batched mode (default 4).
	CopyConns int
	// CopyBatch is the number of events per COPY (default 1000).
	CopyBatch int
	// Runs is how many times each mode runs; the report gives medians
	// (default 3).
	Runs int
	// Embedded adds rows for the engine driven in-process, without HTTP.
	Embedded bool
	// SkipHTTP leaves out Trail over HTTP (for when only the embedded
	// engine can run).
	SkipHTTP bool
	// OnPostgres adds rows for Trail keeping its log in the same PostgreSQL
	// cluster ("trail serve --store"), over HTTP and, with Embedded, in
	// process.
	OnPostgres bool
	// BaseDir is where Trail's data and PostgreSQL's cluster are made, on the
	// same file system (default os.TempDir()).
	BaseDir string
	// Cluster configures the PostgreSQL cluster; its BaseDir defaults to
	// BaseDir.
	Cluster ClusterConfig
	// Progress receives a line as each run ends (default: discarded).
	Progress io.Writer
}

func (c *Config) fill() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.Events, 100000)
	def(&c.InsertEvents, 30000)
	def(&c.Size, 300)
	def(&c.Producers, 64)
	def(&c.Streams, 1000)
	def(&c.CopyConns, 4)
	def(&c.CopyBatch, 1000)
	def(&c.Runs, 3)
	if c.Cluster.BaseDir == "" {
		c.Cluster.BaseDir = c.BaseDir
	}
	c.Cluster.MaxConnections = max(c.Cluster.MaxConnections, c.Producers+c.CopyConns+10)
	if c.Progress == nil {
		c.Progress = io.Discard
	}
}

// Systems compared.
const (
	SystemTrail         = "trail"
	SystemTrailEmbedded = "trail embedded"
	SystemTrailOnPG     = "trail on pg"          // Trail over HTTP, its log in PostgreSQL
	SystemTrailOnPGEmb  = "trail on pg embedded" // the engine in-process, its log in PostgreSQL
	SystemPostgreSQL    = "postgresql"
)

// ModeBatched names the mode where one caller hands over every event without
// waiting (Trail's --async, PostgreSQL's COPY per batch). The other mode is
// named "p=N" for N producers.
const ModeBatched = "batched"

// Row is the median of one system's runs in one mode.
type Row struct {
	System       string  `json:"system"`
	Mode         string  `json:"mode"`
	Method       string  `json:"method"`
	Events       int     `json:"events"`
	Runs         int     `json:"runs"`
	EventsPerSec float64 `json:"events_per_sec"`
	AckP50ms     float64 `json:"ack_p50_ms"`
	AckP99ms     float64 `json:"ack_p99_ms"`
	AckMaxms     float64 `json:"ack_max_ms"`
	// AllocsPerEvent and AllocBytesPerEvent are the heap allocations of this
	// process per event: for Trail's rows the client's, server's and
	// engine's, all in this process; for PostgreSQL's the Go client's (pgx)
	// only.
	AllocsPerEvent     float64 `json:"allocs_per_event"`
	AllocBytesPerEvent float64 `json:"alloc_bytes_per_event"`
	// PeakRSSMB is this process's peak resident set during the run, in MB
	// (2^20 bytes): Trail's whole for its rows. It is nil (n/a) for
	// PostgreSQL, whose work is in its own processes (see PeakRSSMB's note
	// in the README), and where it is not measured (outside Linux).
	PeakRSSMB *float64 `json:"peak_rss_mb"`
}

// Ratio is Trail's throughput over PostgreSQL's in one mode: the median of
// the ratios within each run (PerRun), and each side's median throughput.
type Ratio struct {
	Mode       string    `json:"mode"`
	System     string    `json:"system"`
	Ratio      float64   `json:"ratio"`
	PerRun     []float64 `json:"ratio_per_run"`
	Goal       float64   `json:"goal"`
	GoalMet    bool      `json:"goal_met"`
	Trail      float64   `json:"trail_events_per_sec"`
	PostgreSQL float64   `json:"postgresql_events_per_sec"`
}

// Report is the outcome of Compare.
type Report struct {
	PostgreSQL string   `json:"postgresql"`
	Settings   []string `json:"postgresql_settings"`
	RunAs      string   `json:"postgresql_user,omitempty"`
	CPUs       int      `json:"cpus"`
	Size       int      `json:"event_size"`
	Rows       []Row    `json:"rows"`
	Ratios     []Ratio  `json:"ratios"`
}

// target is one system in one mode.
type target struct {
	system, mode, method string
	w                    bench.Workload
	open                 func(ctx context.Context) (bench.Appender, func(context.Context) (int, error), error)
}

// Compare starts a throwaway PostgreSQL cluster, runs every mode on both
// systems cfg.Runs times and reports medians and ratios. The cluster is
// stopped and removed before it returns, whatever happened; a cancelled ctx
// ends the run in progress.
func Compare(ctx context.Context, cfg Config) (rep Report, err error) {
	cfg.fill()
	cl, err := StartCluster(ctx, cfg.Cluster)
	if err != nil {
		return Report{}, err
	}
	defer func() {
		if serr := cl.Stop(); err == nil {
			err = serr
		}
	}()
	rep = Report{PostgreSQL: cl.Version, Settings: DurableSettings(), RunAs: cl.RunAs,
		CPUs: runtime.GOMAXPROCS(0), Size: cfg.Size}
	targets := plan(cfg, cl.ConnString())
	results := make([][]bench.Result, len(targets))
	for run := 1; run <= cfg.Runs; run++ {
		for i, t := range targets {
			r, err := runTarget(ctx, t)
			if err != nil {
				return Report{}, fmt.Errorf("%s %s (%s): %w", t.system, t.mode, t.method, err)
			}
			fmt.Fprintf(cfg.Progress, "run %d/%d  %-15s %-8s %9.0f events/s  p50 %6.2f ms  p99 %7.2f ms\n",
				run, cfg.Runs, t.system, t.mode, r.EventsPerSec, r.AckP50ms, r.AckP99ms)
			results[i] = append(results[i], r)
		}
	}
	for i, t := range targets {
		rep.Rows = append(rep.Rows, median(t, results[i]))
	}
	rep.Ratios = ratios(targets, results)
	return rep, nil
}

// plan lists the targets in the order they run: each mode on PostgreSQL,
// then on Trail, so that both meet the machine in the same state.
func plan(cfg Config, conn string) []target {
	p := bench.Workload{Events: cfg.Events, Size: cfg.Size, Producers: cfg.Producers, Streams: cfg.Streams}
	a := p
	a.Async = true
	pMode := fmt.Sprintf("p=%d", cfg.Producers)
	ins := p
	ins.Events = cfg.InsertEvents
	ts := []target{{SystemPostgreSQL, pMode, fmt.Sprintf("INSERT per event, %d connections", cfg.Producers), ins,
		func(ctx context.Context) (bench.Appender, func(context.Context) (int, error), error) {
			t, err := resetTable(ctx, conn)
			if err != nil {
				return nil, nil, err
			}
			ap, err := bench.OpenPGInsert(ctx, t, cfg.Producers)
			if err != nil {
				return nil, nil, err
			}
			return ap, pgStop(t, ap.Close), nil
		}}}
	ts = append(ts, trailTargets(cfg, pMode, p, "Append", conn)...)
	ts = append(ts, target{SystemPostgreSQL, ModeBatched, fmt.Sprintf("COPY per %d events, %d connections", cfg.CopyBatch, cfg.CopyConns), a,
		func(ctx context.Context) (bench.Appender, func(context.Context) (int, error), error) {
			t, err := resetTable(ctx, conn)
			if err != nil {
				return nil, nil, err
			}
			ap, err := bench.OpenPGCopy(ctx, t, cfg.CopyConns, cfg.CopyBatch, 5*time.Millisecond)
			if err != nil {
				return nil, nil, err
			}
			return ap, pgStop(t, ap.Close), nil
		}})
	return append(ts, trailTargets(cfg, ModeBatched, a, "Log all, then Wait", conn)...)
}

func trailTargets(cfg Config, mode string, w bench.Workload, method, conn string) []target {
	var ts []target
	if !cfg.SkipHTTP {
		ts = append(ts, target{SystemTrail, mode, "HTTP client, " + method, w,
			func(ctx context.Context) (bench.Appender, func(context.Context) (int, error), error) {
				s, err := openHTTP(ctx, cfg.BaseDir, lanesFor(mode))
				return s.a, trailStop(s), err
			}})
	}
	if cfg.Embedded {
		ts = append(ts, target{SystemTrailEmbedded, mode, "in-process engine, " + method, w,
			func(ctx context.Context) (bench.Appender, func(context.Context) (int, error), error) {
				s, err := openEmbedded(cfg.BaseDir)
				return s.a, trailStop(s), err
			}})
	}
	if cfg.OnPostgres && !cfg.SkipHTTP {
		ts = append(ts, target{SystemTrailOnPG, mode, "HTTP client, log in PostgreSQL, " + method, w,
			func(ctx context.Context) (bench.Appender, func(context.Context) (int, error), error) {
				s, err := openOnPostgres(ctx, cfg.BaseDir, conn, true, lanesFor(mode))
				return s.a, trailStop(s), err
			}})
	}
	if cfg.OnPostgres && cfg.Embedded {
		ts = append(ts, target{SystemTrailOnPGEmb, mode, "in-process engine, log in PostgreSQL, " + method, w,
			func(ctx context.Context) (bench.Appender, func(context.Context) (int, error), error) {
				s, err := openOnPostgres(ctx, cfg.BaseDir, conn, false, 1)
				return s.a, trailStop(s), err
			}})
	}
	return ts
}

// lanesFor is the client's lanes per mode, as an application would choose
// them: the default (1) for producers that wait for their receipts, 4 for a
// backlog (see the client package's documentation for the measurements).
func lanesFor(mode string) int {
	if mode == ModeBatched {
		return 4
	}
	return 1
}

// eventsTable is the table PostgreSQL stores the events in (the schema is
// internal/bench's, shown in the README).
const eventsTable = "events"

// resetTable drops and creates the events table, then checkpoints so that a
// run starts from an empty table with no dirty pages of the one before.
func resetTable(ctx context.Context, conn string) (*bench.PGTable, error) {
	if err := bench.OpenPGTable(conn, eventsTable).Drop(ctx); err != nil {
		return nil, err
	}
	t, err := bench.CreatePGTableNamed(ctx, conn, eventsTable)
	if err != nil {
		return nil, err
	}
	c, err := pgx.Connect(ctx, conn)
	if err != nil {
		return nil, err
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CHECKPOINT"); err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	return t, nil
}

func pgStop(t *bench.PGTable, close func()) func(context.Context) (int, error) {
	return func(ctx context.Context) (int, error) {
		close()
		n, err := t.Count(ctx)
		return int(n), err
	}
}

func trailStop(s trailSide) func(context.Context) (int, error) {
	return func(ctx context.Context) (int, error) {
		n, err := s.stop(ctx)
		return int(n), err
	}
}

// runTarget runs t once from an empty store and checks that every event was
// stored.
func runTarget(ctx context.Context, t target) (bench.Result, error) {
	a, stop, err := t.open(ctx)
	if err != nil {
		return bench.Result{}, err
	}
	r, err := bench.Run(ctx, a, t.w)
	n, serr := stop(context.WithoutCancel(ctx))
	if err = errors.Join(err, serr); err != nil {
		return bench.Result{}, err
	}
	if n != t.w.Events {
		return bench.Result{}, fmt.Errorf("%d events acknowledged, %d stored", t.w.Events, n)
	}
	return r, nil
}

// median gives each figure's median over the runs separately.
func median(t target, rs []bench.Result) Row {
	m := func(f func(bench.Result) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		return medianOf(v)
	}
	return Row{System: t.system, Mode: t.mode, Method: t.method, Events: t.w.Events, Runs: len(rs),
		EventsPerSec:       m(func(r bench.Result) float64 { return r.EventsPerSec }),
		AckP50ms:           m(func(r bench.Result) float64 { return r.AckP50ms }),
		AckP99ms:           m(func(r bench.Result) float64 { return r.AckP99ms }),
		AckMaxms:           m(func(r bench.Result) float64 { return r.AckMaxms }),
		AllocsPerEvent:     m(func(r bench.Result) float64 { return r.AllocsPerEvent }),
		AllocBytesPerEvent: m(func(r bench.Result) float64 { return r.AllocBytesPerEvent }),
		PeakRSSMB:          medianRSS(t, rs)}
}

// medianRSS is the median of the runs' peak RSS: nil for PostgreSQL, whose
// figure here would be its client's alone, or when a run has none.
func medianRSS(t target, rs []bench.Result) *float64 {
	if t.system == SystemPostgreSQL {
		return nil
	}
	v := make([]float64, len(rs))
	for i, r := range rs {
		if r.PeakRSSMB == nil {
			return nil
		}
		v[i] = *r.PeakRSSMB
	}
	mb := medianOf(v)
	return &mb
}

func medianOf(v []float64) float64 {
	v = slices.Clone(v)
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// ratios pairs each Trail target with PostgreSQL's target of the same mode.
// A ratio is taken within each run, where the two ran one after the other,
// and the median of those is reported: on a shared machine whose speed
// drifts between runs it is steadier than the ratio of the medians. The
// goals are the project's: at least 5× with producers, 3× batched; Trail
// keeping its log in PostgreSQL, at least 2× the per-event INSERT with
// producers and 0.5× COPY batched.
func ratios(targets []target, results [][]bench.Result) []Ratio {
	var out []Ratio
	for i, t := range targets {
		if t.system == SystemPostgreSQL {
			continue
		}
		for j, p := range targets {
			if p.system != SystemPostgreSQL || p.mode != t.mode {
				continue
			}
			per := make([]float64, len(results[i]))
			tv := make([]float64, len(results[i]))
			pv := make([]float64, len(results[i]))
			for k := range per {
				tv[k], pv[k] = results[i][k].EventsPerSec, results[j][k].EventsPerSec
				per[k] = tv[k] / pv[k]
			}
			goal := 5.0
			if t.mode == ModeBatched {
				goal = 3
			}
			if t.system == SystemTrailOnPG || t.system == SystemTrailOnPGEmb {
				goal = 2
				if t.mode == ModeBatched {
					goal = 0.5
				}
			}
			r := medianOf(per)
			out = append(out, Ratio{Mode: t.mode, System: t.system, Ratio: r, PerRun: per, Goal: goal, GoalMet: r >= goal,
				Trail: medianOf(tv), PostgreSQL: medianOf(pv)})
		}
	}
	return out
}
