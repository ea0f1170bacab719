package trail

import (
	"context"
	"github.com/trailhq/trail/internal/store"
	"math"
	"sync/atomic"
	"time"
)

// Stats is a snapshot of the engine's counters, for metrics.
type Stats struct {
	Size       uint64 // events durable and acknowledged
	Applied    uint64 // events reflected in the index store
	Queued     int    // events accepted and not yet resolved
	QueueLimit int    // Config.QueueSize
	// Syncs is the latency of each group commit's fsync (seconds); Batches
	// the events each made durable.
	Syncs, Batches HistogramSnapshot
	// CheckpointSize and CheckpointTime describe the latest signed
	// checkpoint (the time it was signed by this process; zero if none yet).
	CheckpointSize uint64
	CheckpointTime time.Time
	Err            error // why the engine stopped acknowledging, or nil
	// Queries is how many queries are running; QueryRecords how many
	// records queries have read in all, whether they matched or not (what
	// queries cost: a query that reads far more than it returns scans).
	Queries      int
	QueryRecords uint64
	// StreamHeads is how many streams' last events the sequencer keeps in
	// memory (at most about Config.MaxStreamHeads, plus those the index
	// store has yet to apply).
	StreamHeads int
}

// HistogramSnapshot is a cumulative histogram: Counts[i] observations were
// at most Bounds[i]; Count in all, summing to Sum.
type HistogramSnapshot struct {
	Bounds []float64
	Counts []uint64
	Count  uint64
	Sum    float64
}

// histogram counts observations in fixed buckets without locks.
type histogram struct {
	bounds []float64
	counts []atomic.Uint64 // per bucket, not cumulative; one more for +Inf
	sum    atomic.Uint64   // float64 bits
}

func newHistogram(bounds []float64) *histogram {
	return &histogram{bounds: bounds, counts: make([]atomic.Uint64, len(bounds)+1)}
}

// expBounds returns n bounds from start, each factor times the previous.
func expBounds(start, factor float64, n int) []float64 {
	b := make([]float64, n)
	for i := range b {
		b[i] = start
		start *= factor
	}
	return b
}

func (h *histogram) observe(v float64) {
	i := 0
	for i < len(h.bounds) && v > h.bounds[i] {
		i++
	}
	h.counts[i].Add(1)
	for {
		old := h.sum.Load()
		if h.sum.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

func (h *histogram) snapshot() HistogramSnapshot {
	s := HistogramSnapshot{Bounds: h.bounds, Counts: make([]uint64, len(h.bounds))}
	for i := range h.counts {
		n := h.counts[i].Load()
		s.Count += n
		if i < len(h.bounds) {
			s.Counts[i] = s.Count
		}
	}
	s.Sum = math.Float64frombits(h.sum.Load())
	return s
}

// StoreInfo describes where the log is kept and, for a database, how it is
// replicated.
type StoreInfo = store.Info

// Store describes where the log is kept.
func (l *Log) Store(ctx context.Context) StoreInfo { return l.st.Describe(ctx) }

// Dir returns the data directory the log was opened in ("" for a log in a
// database).
func (l *Log) Dir() string { return l.dir }

// Stats returns the engine's counters now.
func (l *Log) Stats() Stats {
	l.q.mu.Lock()
	queued := l.q.used
	l.q.mu.Unlock()
	s := Stats{
		Size: l.durable.load(), Applied: l.applied.load(),
		Queued: queued, QueueLimit: l.cfg.QueueSize,
		Syncs: l.syncHist.snapshot(), Batches: l.batchHist.snapshot(),
		Err:     l.Err(),
		Queries: int(l.queries.Load()), QueryRecords: l.queryReads.Load(),
		StreamHeads: int(l.headsCached.Load()),
	}
	if c, at, ok := l.st.Latest(); ok {
		s.CheckpointSize = c.Size
		s.CheckpointTime = at
	}
	return s
}
