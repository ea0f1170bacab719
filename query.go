package trail

import (
	"context"
	"errors"
	"fmt"
	"github.com/trailhq/trail/event"
	"sort"
	"time"

	"github.com/trailhq/trail/internal/store"
)

// Query selects stored events. Empty fields do not filter; all given
// filters must match. Results come in log order (or backwards with Desc).
type Query struct {
	Stream  string // exact stream
	Patient string // exact patient
	Actor   string // actor.id
	Type    string
	Action  string
	Outcome string // "success" matches events sent without an outcome too
	// Since (inclusive) and Until (exclusive) bound recorded; zero values do
	// not bound.
	Since, Until time.Time
	// After is the cursor: only events after it in the direction of the
	// query (index > After, or < After with Desc). Nil starts at the
	// beginning (or the end with Desc).
	After *uint64
	// Before, when set, leaves out events at or past that index (a live
	// tail reads up to the size it has seen).
	Before *uint64
	// Limit is the most events returned (default 100).
	Limit int
	Desc  bool
	// Readable, when set, leaves out events of streams it refuses. It is
	// asked about every event read, so on its own it costs a scan of the
	// log for a caller that may read little of it: give Scope too.
	Readable func(stream string) bool
	// Scope, when set, leaves out events of streams outside it, and lets
	// the query find the events of the streams inside it through the index
	// (see the store's query planning). With both, an event must pass both.
	Scope *Scope
}

// QueryResult is one page of a query.
type QueryResult struct {
	Events [][]byte // stored bytes, as Read returns them
	Next   uint64   // the cursor for the next page, when More
	More   bool     // another page has events

	scanned int // records read for the page (tests check the plan's cost)
}

// Query returns the events matching q. It sees every event acknowledged
// before it was called: it first waits (under ctx) for the index store to
// catch up with them. Paging with Next returns every matching event exactly
// once, even while events are appended: a page never shifts, as indexes only
// grow.
func (l *Log) Query(ctx context.Context, q Query) (QueryResult, error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	l.queries.Add(1)
	defer l.queries.Add(-1)
	if err := l.waitApplied(ctx, l.durable.load()); err != nil {
		return QueryResult{}, err
	}
	if err := l.beginRead(); err != nil {
		return QueryResult{}, err
	}
	defer l.endRead()
	snap, err := l.st.Snapshot()
	if err != nil {
		return QueryResult{}, fmt.Errorf("trail: %w", err)
	}
	defer snap.Close()
	end := snap.End()
	if q.Scope != nil && q.Stream != "" && !q.Scope.Match(q.Stream) {
		return QueryResult{}, nil
	}
	lo, hi, err := l.queryRange(ctx, q, end)
	if err != nil || lo >= hi {
		return QueryResult{}, err
	}
	f := store.Filter{
		Stream: q.Stream, Patient: q.Patient, Actor: q.Actor, Type: q.Type, Action: q.Action, Outcome: q.Outcome,
		Scope: q.Scope, Desc: q.Desc,
	}
	cand, err := snap.Candidates(ctx, f, lo, hi)
	if err != nil {
		return QueryResult{}, err
	}
	return l.collect(ctx, q, cand)
}

// ctxEvery is how many records a loop reads between looks at its context:
// a client that went away stops its query within a few milliseconds.
const ctxEvery = 64

// collect reads the candidates and keeps the page of those the caller may
// read.
func (l *Log) collect(ctx context.Context, q Query, cand func() (uint64, bool, error)) (QueryResult, error) {
	var res QueryResult
	defer func() { l.queryReads.Add(uint64(res.scanned)) }()
	leaves := &leafWindow{desc: q.Desc}
	for {
		if res.scanned%ctxEvery == ctxEvery-1 {
			if err := ctx.Err(); err != nil {
				return QueryResult{}, err
			}
		}
		i, ok, err := cand()
		if err != nil || !ok {
			return res, err
		}
		rec, err := l.readCheckedIn(i, leaves)
		if err != nil {
			return res, fmt.Errorf("trail: query: read %d: %w", i, err)
		}
		res.scanned++
		if q.Readable != nil || q.Scope != nil {
			h, err := event.ParseHeader(rec)
			if err != nil {
				return res, fmt.Errorf("trail: query: record %d: %w", i, err)
			}
			if q.Scope != nil && !q.Scope.Match(h.Stream) || q.Readable != nil && !q.Readable(h.Stream) {
				continue
			}
		}
		if len(res.Events) == q.Limit {
			res.More = true
			return res, nil
		}
		res.Events = append(res.Events, rec)
		res.Next = i
	}
}

// waitApplied waits until the index store reflects the first n events; a
// waiting reader cuts the indexer's lingering short.
func (l *Log) waitApplied(ctx context.Context, n uint64) error {
	if l.applied.load() >= n {
		return nil
	}
	l.readers.Add(1)
	defer l.readers.Add(-1)
	select {
	case l.indexKick <- struct{}{}:
	default:
	}
	_, err := l.applied.waitPast(ctx, n, false, l.Err, l.idxDone, ErrClosed)
	return err
}

// queryRange turns the time bounds and the cursor into a range of indexes
// [lo, hi) within the first end events. Recorded times never decrease along
// the log, so each bound is a binary search.
func (l *Log) queryRange(ctx context.Context, q Query, end uint64) (lo, hi uint64, err error) {
	hi = end
	if q.Before != nil {
		hi = min(hi, *q.Before)
		end = hi
	}
	if !q.Since.IsZero() {
		if lo, err = l.searchRecorded(ctx, q.Since, end); err != nil {
			return 0, 0, err
		}
	}
	if !q.Until.IsZero() {
		if hi, err = l.searchRecorded(ctx, q.Until, end); err != nil {
			return 0, 0, err
		}
	}
	if q.After != nil {
		if q.Desc {
			hi = min(hi, *q.After)
		} else if *q.After >= hi {
			lo = hi
		} else {
			lo = max(lo, *q.After+1)
		}
	}
	return lo, hi, nil
}

// searchRecorded returns the first index below end recorded at or after t
// (end if none).
func (l *Log) searchRecorded(ctx context.Context, t time.Time, end uint64) (uint64, error) {
	switch y := t.UTC().Year(); {
	case y < 1:
		return 0, nil // before every event
	case y > 9999:
		return end, nil // after every event (and not writable in the layout)
	}
	want := t.UTC().Format(RecordedLayout)
	var ferr error
	i := sort.Search(int(end), func(i int) bool {
		if ferr != nil {
			return true
		}
		if err := ctx.Err(); err != nil {
			ferr = err
			return true
		}
		rec, err := l.st.Read(uint64(i))
		if err == nil {
			var h event.Header
			h, err = event.ParseHeader(rec)
			if err == nil {
				return h.Recorded >= want
			}
		}
		ferr = fmt.Errorf("trail: query: record %d: %w", i, err)
		return true
	})
	return uint64(i), ferr
}

// StreamHead is the last event of a stream.
type StreamHead struct {
	Stream       string `json:"stream"`
	Length       uint64 `json:"length"`
	HeadIndex    uint64 `json:"head_index"`
	HeadLeafHash Hash   `json:"head_leaf_hash"`
}

// StreamHead returns the head of stream as of every event acknowledged
// before the call, or ErrNotFound when the stream has no events.
func (l *Log) StreamHead(ctx context.Context, stream string) (StreamHead, error) {
	if err := l.waitApplied(ctx, l.durable.load()); err != nil {
		return StreamHead{}, err
	}
	if err := l.beginRead(); err != nil {
		return StreamHead{}, err
	}
	defer l.endRead()
	h, ok, err := l.st.Head(stream)
	if err != nil {
		return StreamHead{}, fmt.Errorf("trail: %w", err)
	}
	if !ok {
		return StreamHead{}, fmt.Errorf("stream %q: %w", stream, ErrNotFound)
	}
	return StreamHead{Stream: stream, Length: h.Seq, HeadIndex: h.Index, HeadLeafHash: h.LeafHash}, nil
}

// WaitSize waits until more than n events are stored and returns the size,
// or returns an error when ctx ends or the engine closes or fails.
func (l *Log) WaitSize(ctx context.Context, n uint64) (uint64, error) {
	return l.durable.waitPast(ctx, n, true, l.Err, l.closing, ErrClosed)
}

// RecordIndex returns the index of stored event bytes.
func RecordIndex(rec []byte) (uint64, error) {
	h, err := event.ParseHeader(rec)
	if err != nil {
		return 0, errors.New("trail: record is " + err.Error())
	}
	return h.Index, nil
}

// RecordStream returns the stream of stored event bytes.
func RecordStream(rec []byte) (string, error) {
	h, err := event.ParseHeader(rec)
	if err != nil {
		return "", errors.New("trail: record is " + err.Error())
	}
	return h.Stream, nil
}
