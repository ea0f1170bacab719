package trail

// Tests of query planning for a Scope (queryplan.go) against a brute-force
// model: every event of the log, filtered by an independent reading of the
// grant patterns.
//
//   - TestQueryScope: random logs over streams of every depth (Trail's own
//     included), random grants, break-glass, filters, orders, cursors and
//     limits; the planned answer must be the model's page by page, and a
//     plan that uses the index must read no record it does not return.
//   - TestQueryScopeNeverWidens: a Scope wider than Readable, a Readable
//     wider than the Scope, and grants planned from a superset list: the
//     answer is what both accept.
//   - TestQueryContextCancelled: a query whose context ends stops with its
//     error, in the scan, the leapfrog join and the time search.

import (
	"context"
	"errors"
	"fmt"
	"github.com/trailhq/trail/internal/store/files"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// sStreams are the streams of TestQueryScope's events: prefixes of one
// another, deeper than the index keeps prefix lists for, top-level ones,
// and Trail's own.
var sStreams = []string{
	"patient/1", "patient/10", "patient/1/labs", "patient/1/labs/x/y", "patient/2", "patient-x/1", "patient",
	"auth/login", "login", "a/b/c/d/e", "a/b/c/d/f", "a/b/c/x", "a/b/x", "ward/icu",
	"trail/access", "trail/break-glass", "trail", "trailer/1",
}

// sPatterns are the grant patterns drawn: exact names, prefixes at every
// depth (deeper than the index keeps lists for too), and patterns that
// match nothing.
var sPatterns = []string{
	"patient/*", "patient/1", "patient/1/*", "patient/1/labs/*", "patient/1/labs/x/*", "patient-x/*", "patient",
	"auth/*", "login", "a/*", "a/b/*", "a/b/c/*", "a/b/c/d/*", "a/b/c/d/e", "trail/*", "trail/access", "trail",
	"ward/icu", "nobody/*", "nobody", "*", "/*", "patient/", "patient*",
}

// sMatch is the model's reading of a grant pattern, written apart from
// Scope.Match: an exact name, or "p/*" for the streams that start with
// "p/" and have more after it.
func sMatch(patterns []string, unreserved bool, stream string) bool {
	if unreserved && stream != "trail" && !strings.HasPrefix(stream, "trail/") {
		return true
	}
	for _, p := range patterns {
		if strings.HasSuffix(p, "/*") {
			dir := p[:len(p)-1] // "p/"
			if strings.HasPrefix(stream, dir) && len(stream) > len(dir) {
				return true
			}
		} else if p == stream {
			return true
		}
	}
	return false
}

// sBuild stores n random events over sStreams, in batches.
func sBuild(t rapid.TB, l *Log, d qDraw, n int) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for n > 0 {
		k := min(n, 1+d.intn(200, "batch"))
		var evs, own []Event
		for range k {
			ev := qEvent(d, "")
			ev.Stream = qPick(d, sStreams, "stream")
			if IsReservedStream(ev.Stream) {
				own = append(own, ev)
			} else {
				evs = append(evs, ev)
			}
		}
		if len(evs) > 0 {
			if _, err := l.AppendBatch(ctx, evs); err != nil {
				t.Fatalf("AppendBatch: %v", err)
			}
		}
		if len(own) > 0 {
			if _, err := l.AppendReserved(ctx, own); err != nil {
				t.Fatalf("AppendReserved: %v", err)
			}
		}
		n -= k
	}
}

// sModel is the model of every record in l.
func sModel(t rapid.TB, l *Log) *qModel {
	m := &qModel{}
	for i := range l.Size() {
		rec, err := l.Read(i)
		if err != nil {
			t.Fatalf("Read(%d): %v", i, err)
		}
		e, err := qEvOf(rec)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		m.evs = append(m.evs, e)
	}
	return m
}

// sDrawScope draws grants: a few patterns, and break-glass sometimes.
func sDrawScope(t *rapid.T) *Scope {
	sc := &Scope{Unreserved: rapid.IntRange(0, 5).Draw(t, "break-glass") == 0}
	n := rapid.IntRange(0, 4).Draw(t, "patterns")
	for range n {
		sc.Patterns = append(sc.Patterns, rapid.SampledFrom(sPatterns).Draw(t, "pattern"))
	}
	return sc
}

func TestQueryScope(t *testing.T) {
	base := t.TempDir()
	rapid.Check(t, func(t *rapid.T) {
		dir, err := os.MkdirTemp(base, "s")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		l, err := Open(dir, Config{Sync: SyncNone, SegmentSize: 64 << 10})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close(context.Background())
		sBuild(t, l, qRapid{t}, rapid.IntRange(0, 600).Draw(t, "events"))
		m := sModel(t, l)
		for k := range rapid.IntRange(1, 8).Draw(t, "queries") {
			q := qDrawQuery(qRapid{t}, m, l.Size())
			q.Stream = rapid.SampledFrom(append([]string{"", "", "", ""}, sStreams...)).Draw(t, "q.stream")
			sc := sDrawScope(t)
			q.Scope = sc
			if q.Readable == nil && rapid.Bool().Draw(t, "exact readable") {
				// What the server passes: the grants' own check beside the
				// Scope.
				q.Readable = func(s string) bool { return sMatch(sc.Patterns, sc.Unreserved, s) }
			}
			what := fmt.Sprintf("query %d %s", k, sc)
			sCheckQuery(t, l, m, q, what)
		}
	})
}

// sCheckQuery pages through q like qCheckQuery, against the model filtered
// by sMatch. Without a Readable narrower than the scope, every page must
// read only the records it returns (and one more when there is a next
// page): the plan reads no record of another stream.
func sCheckQuery(t *rapid.T, l *Log, m *qModel, q qQuery, what string) {
	sc := q.Scope
	mq := q.Query
	mq.Scope = nil
	readable := q.Readable
	mq.Readable = func(s string) bool { return sMatch(sc.Patterns, sc.Unreserved, s) && (readable == nil || readable(s)) }
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tight := readable == nil
	for page := 0; page < 1000; page++ {
		limit := q.Limit
		if limit <= 0 {
			limit = 100
		}
		mq.After = q.After
		want := m.answer(mq)
		res, err := l.Query(ctx, q.Query)
		if err != nil {
			t.Fatalf("%s: %s page %d: %v", what, q, page, err)
		}
		n := min(limit, len(want))
		if !qSamePage(res.Events, want[:n]) || res.More != (len(want) > limit) {
			t.Fatalf("%s: %s page %d (log of %d events):\n got indexes %v more %v\nwant indexes %v more %v",
				what, q, page, len(m.evs), qIndexes(res.Events), res.More, qWantIndexes(want[:n]), len(want) > limit)
		}
		if read := len(res.Events) + b2i(res.More); tight && res.scanned != read {
			t.Fatalf("%s: %s page %d: read %d records for %d events (more %v): the plan reads other streams' records",
				what, q, page, res.scanned, len(res.Events), res.More)
		}
		if !res.More {
			return
		}
		next := res.Next
		q.After = &next
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestQueryScopeNeverWidens: with a Scope wider than Readable the answer is
// Readable's; with a Readable wider than the Scope, the Scope's. A plan that
// trusted the index alone would return the wider set.
func TestQueryScopeNeverWidens(t *testing.T) {
	l := openTest(t, t.TempDir(), Config{Sync: SyncNone})
	defer closeQ(t, l)
	sBuild(t, l, qRng{rand.New(rand.NewPCG(7, 7))}, 2000)
	// More streams below deep/x/ than a union merges: that grant is planned
	// from the list of deep/, which holds deep/y/ too.
	var deep []Event
	for k := range files.MaxScopeLegs + 50 {
		deep = append(deep, Event{Stream: fmt.Sprintf("deep/x/%d", k), Type: "t", Action: "R", Actor: Actor{ID: "a"}})
		deep = append(deep, Event{Stream: fmt.Sprintf("deep/y/%d", k), Type: "t", Action: "R", Actor: Actor{ID: "a"}})
	}
	if _, err := l.AppendBatch(context.Background(), deep); err != nil {
		t.Fatal(err)
	}
	sBuild(t, l, qRng{rand.New(rand.NewPCG(8, 8))}, 500)
	m := qModelFromLog(t, l, "built")
	only := func(s string) bool { return s == "patient/1" }
	// More grants than a union merges: the query reads every candidate.
	var many []string
	for k := range files.MaxScopeLegs + 10 {
		many = append(many, fmt.Sprintf("deep/x/%d", k*2))
	}
	for _, tc := range []struct {
		name string
		q    Query
		want func(string) bool
	}{
		{"scope wider", Query{Scope: &Scope{Patterns: []string{"patient/*"}}, Readable: only}, only},
		{"readable wider", Query{Scope: &Scope{Patterns: []string{"patient/1"}}, Readable: func(string) bool { return true }}, only},
		{"break-glass, readable narrower", Query{Scope: &Scope{Unreserved: true}, Readable: only}, only},
		{"prefix deeper than the index's lists", Query{Scope: &Scope{Patterns: []string{"a/b/c/d/*", "patient/1/labs/x/*"}}},
			func(s string) bool { return sMatch([]string{"a/b/c/d/*", "patient/1/labs/x/*"}, false, s) }},
		{"prefix over more streams than a union merges", Query{Scope: &Scope{Patterns: []string{"deep/x/*"}}},
			func(s string) bool { return strings.HasPrefix(s, "deep/x/") }},
		{"more grants than a union merges", Query{Scope: &Scope{Patterns: many}},
			func(s string) bool { return sMatch(many, false, s) }},
		{"stream outside the scope", Query{Stream: "patient/2", Scope: &Scope{Patterns: []string{"patient/1"}}}, func(string) bool { return false }},
	} {
		for _, desc := range []bool{false, true} {
			q := tc.q
			q.Desc, q.Limit = desc, 1000
			res, err := l.Query(context.Background(), q)
			mq := q
			mq.Scope, mq.Readable = nil, tc.want
			want := m.answer(mq)
			if err != nil || !qSamePage(res.Events, want[:min(1000, len(want))]) {
				t.Errorf("%s, desc %v: %d events %v, %v; want %d %v", tc.name, desc, len(res.Events), qIndexes(res.Events), err,
					len(want), qWantIndexes(want))
			}
		}
	}
}

// TestQueryContextCancelled: a query whose context is cancelled stops with
// context.Canceled, and soon: within a few dozen records of a scan, and
// without finishing a leapfrog join over lists that never meet or a time
// search. The log is large enough that none of these is over before its
// first look at the context.
func TestQueryContextCancelled(t *testing.T) {
	l := openTest(t, t.TempDir(), Config{Sync: SyncNone})
	defer closeQ(t, l)
	ctx := context.Background()
	const n = 100_000
	evs := make([]Event, 0, 10_000)
	for i := range n {
		// Actor x and type y alternate and never meet.
		ev := Event{Stream: fmt.Sprintf("ward/%d", i%100), Type: "t", Action: "R", Actor: Actor{ID: "a"}}
		if i%2 == 0 {
			ev.Actor.ID = "x"
		} else {
			ev.Type = "y"
		}
		if evs = append(evs, ev); len(evs) == cap(evs) {
			if _, err := l.AppendBatch(ctx, evs); err != nil {
				t.Fatal(err)
			}
			evs = evs[:0]
		}
	}
	if _, err := l.Query(ctx, Query{Limit: 1}); err != nil { // the index has caught up
		t.Fatal(err)
	}
	t.Run("scan", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var calls atomic.Int64
		// The client goes away at the 1000th record the query reads.
		readable := func(string) bool {
			if calls.Add(1) == 1000 {
				cancel()
			}
			return false
		}
		_, err := l.Query(ctx, Query{Readable: readable})
		if !errors.Is(err, context.Canceled) || calls.Load() > 1000+ctxEvery {
			t.Errorf("Query: %v after %d records read; want context.Canceled within %d records", err, calls.Load(), 1000+ctxEvery)
		}
	})
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	for _, tc := range []struct {
		name string
		q    Query
	}{
		{"leapfrog", Query{Actor: "x", Type: "y"}},
		{"time search", Query{Since: time.Now().Add(-time.Hour), Readable: func(string) bool { return false }}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := l.Query(cancelled, tc.q); !errors.Is(err, context.Canceled) {
				t.Errorf("Query with a cancelled context: %v; want context.Canceled", err)
			}
		})
	}
}

// TestQueryBefore: Before bounds a query to the indexes below it, in either
// order and with a scope, and RecordIndex reads each event's index; a live
// tail pages through the log this way up to the size it has seen.
func TestQueryBefore(t *testing.T) {
	l := openTest(t, t.TempDir(), Config{Sync: SyncNone})
	defer closeQ(t, l)
	ctx := context.Background()
	var evs []Event
	for i := range 50 {
		evs = append(evs, Event{Stream: fmt.Sprintf("patient/%d", i%5), Type: "t", Action: "R", Actor: Actor{ID: "a"}})
	}
	if _, err := l.AppendBatch(ctx, evs); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		q      Query
		before uint64
		want   []uint64
	}{
		{"all below 7", Query{}, 7, []uint64{0, 1, 2, 3, 4, 5, 6}},
		{"desc", Query{Desc: true}, 3, []uint64{2, 1, 0}},
		{"scope", Query{Scope: &Scope{Patterns: []string{"patient/2"}}}, 30, []uint64{2, 7, 12, 17, 22, 27}},
		{"after and before", Query{Stream: "patient/1"}, 21, []uint64{11, 16}},
		{"zero", Query{}, 0, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			q := tt.q
			q.Before, q.Limit = &tt.before, 1000
			if tt.name == "after and before" {
				after := uint64(6)
				q.After = &after
			}
			res, err := l.Query(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			var got []uint64
			for _, rec := range res.Events {
				i, err := RecordIndex(rec)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, i)
			}
			if !slices.Equal(got, tt.want) || res.More {
				t.Errorf("indexes %v (more %v), want %v", got, res.More, tt.want)
			}
		})
	}
}
