package trail

// Tests of Log.Query and Log.StreamHead against a model (DESIGN.md,
// "Queries"): the model knows every stored event and answers a query by
// scanning them all; the engine's pages, read with After=Next while More,
// must give exactly the model's answer, byte for byte and in order.
//
//   - TestQueryModel: a rapid state machine that appends (single events,
//     batches, bursts, resends, a batch over one posting chunk), moves a fake
//     clock forwards and back, reopens the engine (sometimes with the clock
//     set back, sometimes without its index store) and checks random queries
//     and stream heads.
//   - TestQueryPagingWhileAppending: paging while producers append returns
//     every event stored before the first page once, in order.
//   - TestQueryReadYourWrites: once Append returns, Query and StreamHead
//     include the event.
//   - TestQueryIndexRebuilt: removing or damaging the index store changes no
//     answer (the store is rebuilt from the log in replay batches of
//     files.ReplayMax).
//   - TestQueryPowerLoss: after power losses at random moments (the harness of
//     faults_test.go), every answer is the model's built from the records
//     actually in the log: nothing lost, nothing twice.
//   - BenchmarkQueryPatient: one patient's 1,000 events among many.
//
// Flags for longer runs:
//
//	-rapid.checks=N -rapid.steps=M  (TestQueryModel)
//	-query.seeds=N                  power-loss runs of TestQueryPowerLoss
//	-query.events=N                 events stored for BenchmarkQueryPatient

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/trailhq/trail/event"
	"github.com/trailhq/trail/internal/datadir"
	"github.com/trailhq/trail/internal/store"
	"github.com/trailhq/trail/internal/store/files"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"pgregory.net/rapid"
)

var (
	querySeeds  = flag.Int("query.seeds", 3, "number of power-loss runs in TestQueryPowerLoss")
	queryEvents = flag.Int("query.events", 1_000_000, "events stored for BenchmarkQueryPatient (the goal is measured with 10000000)")
)

// Pools the events draw from: small, so that values repeat. Values that are
// prefixes of one another, hold NUL bytes or are long enough to be keyed by
// their hash in the index store must still match exactly.
var (
	qStreams  = []string{"patient/1", "patient/10", "patient/2", "auth/login", "ward/icu"}
	qPatients = []string{"", "p1", "p1\x01", "p10", "Ωmega-∑", strings.Repeat("P", 128), strings.Repeat("P", 128) + "x", strings.Repeat("P", 200)}
	qActors   = []string{"dr-1", "dr-1\x01", "dr-10", "nurse 3 — ü", strings.Repeat("a", 129), strings.Repeat("a", 129) + "b"}
	qTypes    = []string{"patient-record.read", "patient-record", "user.login"}
	qActions  = []string{"C", "R", "U", "D", "E"}
	qOutcomes = []string{"", OutcomeSuccess, OutcomeMinorFailure, OutcomeSeriousFailure, OutcomeMajorFailure}
)

// Filter values of queries: the pools, values no event has, and "" (no
// filter) more often than any one value.
var (
	qStreamFilters  = append([]string{"", "", "", "", "patient", "nobody/x"}, qStreams...)
	qPatientFilters = append([]string{"", "", "", "p", strings.Repeat("P", 129)}, qPatients[1:]...)
	qActorFilters   = append([]string{"", "", "", "dr-", strings.Repeat("a", 128)}, qActors...)
	qTypeFilters    = append([]string{"", "", "", "", "patient-record.rea"}, qTypes...)
	qActionFilters  = append([]string{"", "", "", "", "", "r", "X"}, qActions...)
	qOutcomeFilters = append([]string{"", "", "", "", "failure"}, qOutcomes[1:]...)
)

// qDraw is a source of choices: rapid's draws in the property test, a seeded
// generator elsewhere, so that both build events and queries the same way.
type qDraw interface {
	intn(n int, label string) int
}

type qRapid struct{ t *rapid.T }

func (r qRapid) intn(n int, label string) int { return rapid.IntRange(0, n-1).Draw(r.t, label) }

type qRng struct{ r *rand.Rand }

func (r qRng) intn(n int, _ string) int { return r.r.IntN(n) }

func qPick[T any](d qDraw, xs []T, label string) T { return xs[d.intn(len(xs), label)] }

func qEvent(d qDraw, id string) Event {
	return Event{
		ID:      id,
		Stream:  qPick(d, qStreams, "stream"),
		Type:    qPick(d, qTypes, "type"),
		Action:  qPick(d, qActions, "action"),
		Outcome: qPick(d, qOutcomes, "outcome"),
		Actor:   Actor{ID: qPick(d, qActors, "actor")},
		Patient: qPick(d, qPatients, "patient"),
	}
}

// ---------------------------------------------------------------------------
// The model.

// qEv is one stored event as the model knows it.
type qEv struct {
	index                                        uint64
	stream, patient, actor, typ, action, outcome string // outcome "success" when sent without one
	recorded                                     time.Time
	rec                                          []byte // the stored bytes
	ev                                           Event  // as sent (for resends); zero when read from the log
}

type qModel struct {
	evs []*qEv
}

func (e *qEv) matches(q Query) bool {
	return (q.Stream == "" || q.Stream == e.stream) &&
		(q.Patient == "" || q.Patient == e.patient) &&
		(q.Actor == "" || q.Actor == e.actor) &&
		(q.Type == "" || q.Type == e.typ) &&
		(q.Action == "" || q.Action == e.action) &&
		(q.Outcome == "" || q.Outcome == e.outcome) &&
		(q.Since.IsZero() || !e.recorded.Before(q.Since)) &&
		(q.Until.IsZero() || e.recorded.Before(q.Until)) &&
		(q.Readable == nil || q.Readable(e.stream))
}

// answer is every event matching q after its cursor, in q's order.
func (m *qModel) answer(q Query) []*qEv {
	var out []*qEv
	for k := range m.evs {
		e := m.evs[k]
		if q.Desc {
			e = m.evs[len(m.evs)-1-k]
		}
		if q.After != nil && (!q.Desc && e.index <= *q.After || q.Desc && e.index >= *q.After) {
			continue
		}
		if e.matches(q) {
			out = append(out, e)
		}
	}
	return out
}

// head is the model's StreamHead.
func (m *qModel) head(stream string) (StreamHead, bool) {
	h := StreamHead{Stream: stream}
	for _, e := range m.evs {
		if e.stream == stream {
			h.Length++
			h.HeadIndex = e.index
			h.HeadLeafHash = LeafHash(e.rec)
		}
	}
	return h, h.Length > 0
}

// qEvOf reads the model's view of a stored event from its bytes.
func qEvOf(rec []byte) (*qEv, error) {
	st, err := ParseStored(rec)
	if err != nil {
		return nil, err
	}
	t, err := time.Parse(RecordedLayout, st.Recorded)
	if err != nil {
		return nil, fmt.Errorf("recorded %q: %w", st.Recorded, err)
	}
	outcome := st.Outcome
	if outcome == "" {
		outcome = OutcomeSuccess
	}
	return &qEv{index: st.Index, stream: st.Stream, patient: st.Patient, actor: st.Actor.ID, typ: st.Type,
		action: st.Action, outcome: outcome, recorded: t, rec: bytes.Clone(rec)}, nil
}

// qModelFromLog builds the model from every record in the log, checking on
// the way that indexes are in place, recorded never decreases and no client
// id is stored twice.
func qModelFromLog(t testing.TB, l *Log, what string) *qModel {
	t.Helper()
	m := &qModel{}
	ids := map[string]uint64{}
	size := l.Size()
	for i := uint64(0); i < size; i++ {
		rec, err := l.Read(i)
		if err != nil {
			t.Fatalf("%s: Read(%d) of %d: %v", what, i, size, err)
		}
		e, err := qEvOf(rec)
		if err != nil {
			t.Fatalf("%s: record %d: %v", what, i, err)
		}
		if e.index != i {
			t.Fatalf("%s: record %d says index %d", what, i, e.index)
		}
		if n := len(m.evs); n > 0 && e.recorded.Before(m.evs[n-1].recorded) {
			t.Fatalf("%s: recorded decreases along the log: %d at %s, %d at %s", what,
				i-1, m.evs[n-1].recorded.Format(RecordedLayout), i, e.recorded.Format(RecordedLayout))
		}
		st, _ := ParseStored(rec)
		if gen, ok := store.DecodeGeneratedID(st.ID); !ok || gen != i {
			if j, dup := ids[st.ID]; dup {
				t.Fatalf("%s: id %q stored twice, at %d and %d", what, st.ID, j, i)
			}
			ids[st.ID] = i
		}
		m.evs = append(m.evs, e)
	}
	return m
}

// ---------------------------------------------------------------------------
// Queries and their check.

// qQuery is a query and a description of its Readable function.
type qQuery struct {
	Query
	refused []string // the streams Readable refuses, when Readable is set
}

func (q qQuery) String() string {
	var b strings.Builder
	b.WriteString("{")
	for _, f := range []struct{ name, v string }{
		{"stream", q.Stream}, {"patient", q.Patient}, {"actor", q.Actor},
		{"type", q.Type}, {"action", q.Action}, {"outcome", q.Outcome},
	} {
		if f.v != "" {
			fmt.Fprintf(&b, "%s=%q ", f.name, qShort(f.v))
		}
	}
	if !q.Since.IsZero() {
		fmt.Fprintf(&b, "since=%s ", q.Since.UTC().Format(RecordedLayout))
	}
	if !q.Until.IsZero() {
		fmt.Fprintf(&b, "until=%s ", q.Until.UTC().Format(RecordedLayout))
	}
	if q.After != nil {
		fmt.Fprintf(&b, "after=%d ", *q.After)
	}
	if q.Readable != nil {
		fmt.Fprintf(&b, "refused=%q ", q.refused)
	}
	fmt.Fprintf(&b, "limit=%d desc=%v}", q.Limit, q.Desc)
	return b.String()
}

func qShort(v string) string {
	if len(v) > 24 {
		return fmt.Sprintf("%s…(%d bytes)", v[:24], len(v))
	}
	return v
}

// qDrawQuery draws any combination of filters, time bounds, cursor, limit,
// order and readable streams.
func qDrawQuery(d qDraw, m *qModel, size uint64) qQuery {
	q := qQuery{Query: Query{
		Stream:  qPick(d, qStreamFilters, "q.stream"),
		Patient: qPick(d, qPatientFilters, "q.patient"),
		Actor:   qPick(d, qActorFilters, "q.actor"),
		Type:    qPick(d, qTypeFilters, "q.type"),
		Action:  qPick(d, qActionFilters, "q.action"),
		Outcome: qPick(d, qOutcomeFilters, "q.outcome"),
		Since:   qDrawBound(d, m, "q.since"),
		Until:   qDrawBound(d, m, "q.until"),
		Limit:   qPick(d, []int{0, -1, 1, 1, 2, 3, 7, 1000}, "q.limit"),
		Desc:    d.intn(2, "q.desc") == 1,
	}}
	switch d.intn(6, "q.after") {
	case 0:
		a := uint64(d.intn(int(size)+3, "q.after at"))
		q.After = &a
	case 1:
		a := ^uint64(0)
		q.After = &a
	}
	if d.intn(3, "q.readable") == 0 {
		refused := map[string]bool{}
		for _, s := range qStreams {
			if d.intn(3, "q.refuse "+s) == 0 {
				refused[s] = true
				q.refused = append(q.refused, s)
			}
		}
		q.Readable = func(s string) bool { return !refused[s] }
	}
	return q
}

// qDrawBound draws a time bound: none, an event's recorded time, a
// nanosecond either side, halfway between two events, or outside them all;
// sometimes in another time zone.
func qDrawBound(d qDraw, m *qModel, label string) time.Time {
	n := len(m.evs)
	var t time.Time
	switch k := d.intn(8, label); {
	case k < 3 || n == 0:
		return time.Time{}
	case k == 3:
		t = m.evs[d.intn(n, label+" at")].recorded
	case k == 4:
		t = m.evs[d.intn(n, label+" at")].recorded.Add(1)
	case k == 5:
		t = m.evs[d.intn(n, label+" at")].recorded.Add(-1)
	case k == 6:
		i := d.intn(n, label+" at")
		j := min(i+1+d.intn(3, label+" to"), n-1)
		a, b := m.evs[i].recorded, m.evs[j].recorded
		t = a.Add(b.Sub(a) / 2)
	default:
		if d.intn(2, label+" side") == 0 {
			t = m.evs[0].recorded.Add(-time.Hour)
		} else {
			t = m.evs[n-1].recorded.Add(time.Hour)
		}
	}
	if d.intn(3, label+" zone") == 0 {
		t = t.In(time.FixedZone("UTC+5:30", 5*3600+1800))
	}
	return t
}

// qCheckQuery pages through q with After=Next while More and checks each
// page against the model: its events (stored bytes, in order), More, and
// Next. After 40 pages it goes on with limit 1000, so that a small limit on
// a large answer still reads all of it.
func qCheckQuery(t rapid.TB, l *Log, m *qModel, q qQuery, what string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	orig := q.String()
	for page := 0; ; page++ {
		limit := q.Limit
		if limit <= 0 {
			limit = 100
		}
		want := m.answer(q.Query)
		res, err := l.Query(ctx, q.Query)
		if err != nil {
			t.Fatalf("%s: query %s, page %d %s: %v", what, orig, page, q, err)
		}
		n := min(limit, len(want))
		if !qSamePage(res.Events, want[:n]) {
			t.Fatalf("%s: query %s, page %d %s (log of %d events):\n got indexes %v\nwant indexes %v%s",
				what, orig, page, q, len(m.evs), qIndexes(res.Events), qWantIndexes(want[:n]), qFirstDiff(res.Events, want[:n]))
		}
		if more := len(want) > limit; res.More != more {
			t.Fatalf("%s: query %s, page %d %s: More = %v, want %v (%d events match after the cursor, limit %d)",
				what, orig, page, q, res.More, more, len(want), limit)
		}
		if !res.More {
			return
		}
		if res.Next != want[n-1].index {
			t.Fatalf("%s: query %s, page %d %s: Next = %d, want %d (the last index of the page)", what, orig, page, q, res.Next, want[n-1].index)
		}
		next := res.Next
		q.After = &next
		if page == 40 {
			q.Limit = 1000
		}
	}
}

func qSamePage(got [][]byte, want []*qEv) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i].rec) {
			return false
		}
	}
	return true
}

func qIndexes(recs [][]byte) []int64 {
	out := make([]int64, 0, len(recs))
	for _, r := range recs {
		h, err := event.ParseHeader(r)
		if err != nil {
			out = append(out, -1)
			continue
		}
		out = append(out, int64(h.Index))
	}
	return qCut(out)
}

func qWantIndexes(evs []*qEv) []int64 {
	out := make([]int64, 0, len(evs))
	for _, e := range evs {
		out = append(out, int64(e.index))
	}
	return qCut(out)
}

func qCut(xs []int64) []int64 {
	if len(xs) > 40 {
		return append(xs[:40:40], -999) // -999: more left out
	}
	return xs
}

func qFirstDiff(got [][]byte, want []*qEv) string {
	for i := range min(len(got), len(want)) {
		if !bytes.Equal(got[i], want[i].rec) {
			return fmt.Sprintf("\nfirst difference at position %d:\n got %s\nwant %s", i, got[i], want[i].rec)
		}
	}
	return ""
}

// qCheckHeads compares StreamHead of every stream (and one with no events)
// with the model.
func qCheckHeads(t rapid.TB, l *Log, m *qModel, what string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, s := range append([]string{"nobody/x", "patient"}, qStreams...) {
		want, ok := m.head(s)
		got, err := l.StreamHead(ctx, s)
		switch {
		case !ok && !errors.Is(err, ErrNotFound):
			t.Fatalf("%s: StreamHead(%q) = %+v, %v; want ErrNotFound", what, s, got, err)
		case ok && (err != nil || got != want):
			t.Fatalf("%s: StreamHead(%q) = %+v, %v; want %+v", what, s, got, err, want)
		}
	}
}

// ---------------------------------------------------------------------------
// The state machine.

// qClock is the engine's clock in these tests: recorded times repeat while it
// stands still and it can be set back.
type qClock struct{ ns atomic.Int64 }

func newQClock() *qClock {
	c := &qClock{}
	c.ns.Store(time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *qClock) now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func (c *qClock) add(d time.Duration) { c.ns.Add(int64(d)) }

type qMachine struct {
	dir     string
	cfg     Config
	clock   *qClock
	l       *Log
	m       qModel
	withID  []*qEv    // stored events sent with a client id
	maxSeen time.Time // the latest clock reading the sequencer may have taken since the engine opened
	ids     int
	big     bool // the batch over one posting chunk has been appended
	opens   int
}

func newQMachine(t *rapid.T, base string) *qMachine {
	dir, err := os.MkdirTemp(base, "q")
	if err != nil {
		t.Fatal(err)
	}
	m := &qMachine{dir: dir, clock: newQClock()}
	m.cfg = Config{Sync: SyncNone, SegmentSize: 4 << 10, CheckpointInterval: 20 * time.Millisecond, Now: m.clock.now}
	m.open(t)
	t.Cleanup(func() {
		if m.l != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			m.l.Close(ctx)
		}
		os.RemoveAll(dir)
	})
	return m
}

func (m *qMachine) open(t *rapid.T) {
	l, err := Open(m.dir, m.cfg)
	if err != nil {
		t.Fatalf("Open (open #%d): %v", m.opens+1, err)
	}
	m.l, m.maxSeen = l, time.Time{}
	m.opens++
	if l.Size() != uint64(len(m.m.evs)) {
		t.Fatalf("reopened log has %d events, want %d", l.Size(), len(m.m.evs))
	}
}

func (m *qMachine) close(t *rapid.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.l.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	m.l = nil
}

func (m *qMachine) newID(t *rapid.T) string {
	if !rapid.Bool().Draw(t, "client id") {
		return ""
	}
	m.ids++
	return fmt.Sprintf("q-%d", m.ids)
}

// tick moves the clock: not at all (recorded repeats), a little, a lot, or
// back (the engine must not let recorded decrease).
func (m *qMachine) tick(t *rapid.T) {
	d := rapid.SampledFrom([]time.Duration{0, 1, time.Microsecond, time.Millisecond, time.Second, time.Hour,
		-1, -time.Second, -time.Hour}).Draw(t, "tick")
	m.clock.add(d)
}

// sees notes the clock reading the sequencer takes for what is appended now.
func (m *qMachine) sees() {
	if now := m.clock.now(); now.After(m.maxSeen) {
		m.maxSeen = now
	}
}

// stored checks the receipts of events appended one after another (by one
// caller, so in order) and adds them to the model. With the clock standing
// still during the append, recorded is the clock, or the last recorded time
// when the clock is behind it: never less than either, never more than the
// latest clock reading the engine may have taken.
func (m *qMachine) stored(t *rapid.T, what string, evs []Event, rs []Receipt) {
	var last time.Time
	if n := len(m.m.evs); n > 0 {
		last = m.m.evs[n-1].recorded
	}
	lower := qLatest(last, m.clock.now())
	upper := qLatest(last, m.maxSeen)
	for i, r := range rs {
		if want := uint64(len(m.m.evs)); r.Index != want {
			t.Fatalf("%s: event %d got index %d, want %d", what, i, r.Index, want)
		}
		rec, err := m.l.Read(r.Index)
		if err != nil {
			t.Fatalf("%s: Read(%d): %v", what, r.Index, err)
		}
		if LeafHash(rec) != r.LeafHash {
			t.Fatalf("%s: leaf hash of stored event %d differs from its receipt", what, r.Index)
		}
		e, err := qEvOf(rec)
		if err != nil {
			t.Fatalf("%s: stored event %d: %v", what, r.Index, err)
		}
		if e.recorded.Before(lower) || e.recorded.After(upper) || r.Recorded != e.recorded.Format(RecordedLayout) {
			t.Fatalf("%s: event %d recorded %s (receipt %s); want between %s (last recorded %s, clock %s) and %s",
				what, r.Index, e.recorded.Format(RecordedLayout), r.Recorded, lower.Format(RecordedLayout),
				last.Format(RecordedLayout), m.clock.now().Format(RecordedLayout), upper.Format(RecordedLayout))
		}
		want := evs[i]
		if want.Outcome == "" {
			want.Outcome = OutcomeSuccess
		}
		if e.stream != want.Stream || e.patient != want.Patient || e.actor != want.Actor.ID || e.typ != want.Type ||
			e.action != want.Action || e.outcome != want.Outcome {
			t.Fatalf("%s: stored event %d is %s; sent %+v", what, r.Index, rec, evs[i])
		}
		e.ev = evs[i]
		m.m.evs = append(m.m.evs, e)
		if evs[i].ID != "" {
			m.withID = append(m.withID, e)
		}
	}
}

func qLatest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (m *qMachine) appendOne(t *rapid.T) {
	ev := qEvent(qRapid{t}, m.newID(t))
	m.sees()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := m.l.Append(ctx, ev)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	m.stored(t, "Append", []Event{ev}, []Receipt{r})
}

func (m *qMachine) batch(t *rapid.T) {
	n := rapid.IntRange(1, 6).Draw(t, "batch n")
	evs := make([]Event, n)
	for i := range evs {
		evs[i] = qEvent(qRapid{t}, m.newID(t))
	}
	m.sees()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rs, err := m.l.AppendBatch(ctx, evs)
	if err != nil {
		t.Fatalf("AppendBatch of %d: %v", n, err)
	}
	m.stored(t, "AppendBatch", evs, rs)
}

// burst logs several events without waiting, then waits for each: the
// sequencer may take them in one batch or several.
func (m *qMachine) burst(t *rapid.T) {
	n := rapid.IntRange(2, 12).Draw(t, "burst n")
	evs := make([]Event, n)
	ps := make([]*Pending, n)
	m.sees()
	for i := range evs {
		evs[i] = qEvent(qRapid{t}, m.newID(t))
		ps[i] = m.l.Log(evs[i])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rs := make([]Receipt, n)
	for i, p := range ps {
		r, err := p.Wait(ctx)
		if err != nil {
			t.Fatalf("burst event %d: %v", i, err)
		}
		rs[i] = r
	}
	m.stored(t, "burst", evs, rs)
}

// big appends one batch of more events than a posting chunk holds (once a
// run): the indexer applies it in one call, which splits its postings.
func (m *qMachine) bigBatch(t *rapid.T) {
	if m.big {
		t.Skip("one big batch a run, in a third of the runs")
	}
	m.big = true
	if rapid.IntRange(0, 2).Draw(t, "big this run") != 0 {
		t.Skip("no big batch this run")
	}
	n := rapid.IntRange(4095, 4400).Draw(t, "big n")
	d := qRng{rand.New(rand.NewPCG(rapid.Uint64().Draw(t, "big seed"), 7))}
	evs := make([]Event, n)
	for i := range evs {
		evs[i] = qEvent(d, "")
	}
	m.sees()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rs, err := m.l.AppendBatch(ctx, evs)
	if err != nil {
		t.Fatalf("AppendBatch of %d: %v", n, err)
	}
	m.storedFast(t, "big AppendBatch", evs, rs)
}

// storedFast adds a big batch to the model from the events sent and the
// stored headers, without decoding thousands of events (stored checks the
// decoded fields of the small appends).
func (m *qMachine) storedFast(t *rapid.T, what string, evs []Event, rs []Receipt) {
	for i, r := range rs {
		rec, err := m.l.Read(r.Index)
		if err != nil || r.Index != uint64(len(m.m.evs)) || LeafHash(rec) != r.LeafHash {
			t.Fatalf("%s: event %d: receipt %+v, stored %q, %v; want index %d", what, i, r, rec, err, len(m.m.evs))
		}
		h, err := event.ParseHeader(rec)
		if err != nil {
			t.Fatalf("%s: stored event %d: %v", what, r.Index, err)
		}
		rt, err := time.Parse(RecordedLayout, h.Recorded)
		if n := len(m.m.evs); err != nil || n > 0 && rt.Before(m.m.evs[n-1].recorded) {
			t.Fatalf("%s: stored event %d: recorded %s, before the last one or not a time (%v)", what, r.Index, h.Recorded, err)
		}
		ev := evs[i]
		outcome := ev.Outcome
		if outcome == "" {
			outcome = OutcomeSuccess
		}
		m.m.evs = append(m.m.evs, &qEv{index: r.Index, stream: ev.Stream, patient: ev.Patient, actor: ev.Actor.ID,
			typ: ev.Type, action: ev.Action, outcome: outcome, recorded: rt, rec: rec, ev: ev})
	}
}

// resend sends a stored event with a client id again: its first receipt,
// nothing stored, and no query returns it twice.
func (m *qMachine) resend(t *rapid.T) {
	if len(m.withID) == 0 {
		t.Skip("no event with a client id yet")
	}
	e := rapid.SampledFrom(m.withID).Draw(t, "resend")
	m.sees()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	size := m.l.Size()
	r, err := m.l.Append(ctx, e.ev)
	if err != nil || r.Index != e.index || r.LeafHash != LeafHash(e.rec) {
		t.Fatalf("resend of event %d (id %s): receipt %+v, %v; want the first receipt", e.index, e.ev.ID, r, err)
	}
	if m.l.Size() != size {
		t.Fatalf("resend of event %d stored %d events", e.index, m.l.Size()-size)
	}
}

// reopen closes and reopens the engine, sometimes with the clock set back.
func (m *qMachine) reopen(t *rapid.T) {
	m.close(t)
	back := rapid.SampledFrom([]time.Duration{0, 0, 1, time.Second, time.Hour, 400 * 24 * time.Hour}).Draw(t, "clock back")
	m.clock.add(-back)
	m.open(t)
}

// rebuild reopens the engine without its index store (removed, emptied or
// damaged): it is rebuilt from the log.
func (m *qMachine) rebuild(t *rapid.T) {
	m.close(t)
	qDamageIndex(t, m.dir, rapid.IntRange(0, 2).Draw(t, "index damage"))
	m.open(t)
}

// qDamageIndex removes the index store (how 0), empties its directory (1),
// or overwrites Pebble's CURRENT file with garbage (2).
func qDamageIndex(t rapid.TB, dir string, how int) {
	t.Helper()
	idx := filepath.Join(dir, datadir.IndexDir)
	var err error
	switch how {
	case 0:
		err = os.RemoveAll(idx)
	case 1:
		var names []os.DirEntry
		names, err = os.ReadDir(idx)
		for _, n := range names {
			if err == nil {
				err = os.RemoveAll(filepath.Join(idx, n.Name()))
			}
		}
	default:
		err = os.WriteFile(filepath.Join(idx, "CURRENT"), []byte("garbage\n"), 0o644)
	}
	if err != nil {
		t.Fatalf("damage the index store (%d): %v", how, err)
	}
}

func (m *qMachine) query(t *rapid.T) {
	q := qDrawQuery(qRapid{t}, &m.m, m.l.Size())
	qCheckQuery(t, m.l, &m.m, q, fmt.Sprintf("open #%d", m.opens))
}

func (m *qMachine) heads(t *rapid.T) {
	qCheckHeads(t, m.l, &m.m, fmt.Sprintf("open #%d", m.opens))
}

func (m *qMachine) check(t *rapid.T) {
	if got := m.l.Size(); got != uint64(len(m.m.evs)) {
		t.Fatalf("Size() = %d, model has %d events", got, len(m.m.evs))
	}
}

func TestQueryModel(t *testing.T) {
	base := t.TempDir()
	rapid.Check(t, func(t *rapid.T) {
		m := newQMachine(t, base)
		t.Repeat(map[string]func(*rapid.T){
			"append":  m.appendOne,
			"batch":   m.batch,
			"burst":   m.burst,
			"big":     m.bigBatch,
			"resend":  m.resend,
			"tick":    m.tick,
			"reopen":  m.reopen,
			"rebuild": m.rebuild,
			"query":   m.query,
			"query2":  m.query,
			"query3":  m.query,
			"heads":   m.heads,
			"":        m.check,
		})
	})
}

// ---------------------------------------------------------------------------
// Producers for the tests that append from several goroutines.

// qProducers append random events from n goroutines (single events, bursts
// of Log calls and batches) until stop, and keep every receipt.
type qProducers struct {
	l       *Log
	stopped atomic.Bool
	wg      sync.WaitGroup
	mu      sync.Mutex
	acks    []Receipt
	errs    []error
}

func startQProducers(l *Log, n int, seed uint64) *qProducers {
	p := &qProducers{l: l}
	for g := 0; g < n; g++ {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.produce(qRng{rand.New(rand.NewPCG(seed, uint64(g)))})
		}()
	}
	return p
}

func (p *qProducers) produce(d qRng) {
	ctx := context.Background()
	for !p.stopped.Load() {
		var rs []Receipt
		var err error
		switch d.intn(3, "") {
		case 0:
			var r Receipt
			r, err = p.l.Append(ctx, qEvent(d, ""))
			rs = []Receipt{r}
		case 1:
			ps := make([]*Pending, 1+d.intn(20, ""))
			for i := range ps {
				ps[i] = p.l.Log(qEvent(d, ""))
			}
			for _, pd := range ps {
				r, werr := pd.Wait(ctx)
				if werr != nil {
					err = werr
					break
				}
				rs = append(rs, r)
			}
		default:
			evs := make([]Event, 1+d.intn(50, ""))
			for i := range evs {
				evs[i] = qEvent(d, "")
			}
			rs, err = p.l.AppendBatch(ctx, evs)
		}
		p.mu.Lock()
		p.acks = append(p.acks, rs...)
		if err != nil && !(p.stopped.Load() && errors.Is(err, ErrClosed)) {
			p.errs = append(p.errs, err)
		}
		p.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// stop stops the producers and waits for them.
func (p *qProducers) stop() {
	p.stopped.Store(true)
	p.wg.Wait()
}

func (p *qProducers) receipts() []Receipt {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.acks)
}

func (p *qProducers) check(t *testing.T) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, err := range p.errs {
		t.Errorf("producer: %v", err)
	}
}

// ---------------------------------------------------------------------------
// Paging while events are appended.

// qPaged is one query paged while producers ran: the indexes it returned and
// the log size before its first page.
type qPaged struct {
	q       qQuery
	got     []uint64
	recs    [][]byte
	durable uint64
}

// TestQueryPagingWhileAppending pages through random queries while four
// producers append. Every matching event stored before the first page must
// come back exactly once and in order; forwards, the pages are a prefix of
// the answer over the final log (new events may follow; paging stops once
// past the events stored before the first page); backwards, they are the
// whole answer below the first one returned.
func TestQueryPagingWhileAppending(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	l := openTest(t, t.TempDir(), Config{Sync: SyncNone, SegmentSize: 256 << 10})
	defer closeQ(t, l)
	p := startQProducers(l, 4, seed)
	d := qRng{rand.New(rand.NewPCG(seed, 99))}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var runs []qPaged
	empty := &qModel{}
	deadline := time.Now().Add(2 * time.Second)
	for len(runs) < 20 || time.Now().Before(deadline) && len(runs) < 400 {
		q := qDrawQuery(d, empty, 0)
		q.After = nil
		q.Limit = 1 + d.intn(40, "")
		run := qPaged{q: q, durable: l.Size()}
		for page := 0; ; page++ {
			res, err := l.Query(ctx, q.Query)
			if err != nil {
				t.Fatalf("query %s page %d: %v", q, page, err)
			}
			for _, rec := range res.Events {
				h, err := event.ParseHeader(rec)
				if err != nil {
					t.Fatalf("query %s page %d: %v", q, page, err)
				}
				run.got = append(run.got, h.Index)
				run.recs = append(run.recs, rec)
			}
			// Forwards, new events may keep the pages coming as fast as
			// they are read: stop once past every event stored before the
			// first page (what is read so far is still a prefix).
			if !res.More || !q.Desc && res.Next >= run.durable {
				break
			}
			next := res.Next
			q.After = &next
		}
		runs = append(runs, run)
	}
	p.stop()
	p.check(t)
	m := qModelFromLog(t, l, "after the producers stopped")
	t.Logf("%d queries paged while %d events were appended", len(runs), len(m.evs))
	for _, run := range runs {
		qCheckPaged(t, m, run)
	}
}

func qCheckPaged(t *testing.T, m *qModel, run qPaged) {
	t.Helper()
	q := run.q.Query
	q.After = nil
	all := m.answer(q)
	var must int // matching events stored before the first page
	for _, e := range all {
		if e.index < run.durable {
			must++
		}
	}
	want := all
	if q.Desc {
		// Events newer than the first page's view are not in a backwards
		// answer: start at the first one returned (none if none was).
		for len(want) > 0 && (len(run.got) == 0 || want[0].index > run.got[0]) {
			want = want[1:]
		}
	}
	if !q.Desc && len(want) > len(run.got) {
		want = want[:len(run.got)] // events stored after the last page may be missing
	}
	if !qSamePage(run.recs, want) || qCount(run.got, run.durable) != must {
		t.Errorf("query %s paged while appending (log of %d before the first page, %d at the end):\n got indexes %v\nwant indexes %v (%d stored before the first page)%s",
			run.q, run.durable, len(m.evs), qCut(qInts(run.got)), qWantIndexes(want), must, qFirstDiff(run.recs, want))
	}
}

func qCount(xs []uint64, below uint64) int {
	n := 0
	for _, x := range xs {
		if x < below {
			n++
		}
	}
	return n
}

func qInts(xs []uint64) []int64 {
	out := make([]int64, len(xs))
	for i, x := range xs {
		out[i] = int64(x)
	}
	return out
}

func closeQ(t testing.TB, l *Log) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := l.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// ---------------------------------------------------------------------------
// Read-your-writes.

// TestQueryReadYourWrites: each of several goroutines appends to its own
// stream and patient (by Append, by Log and Wait, and by batch) while others
// add load, and right after each receipt checks that StreamHead is that
// event and that queries by patient, by stream after the previous event and
// by recorded time return it.
func TestQueryReadYourWrites(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	l := openTest(t, t.TempDir(), Config{Sync: SyncNone})
	defer closeQ(t, l)
	noise := startQProducers(l, 2, seed)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			readYourWrites(t, l, g, 150)
		}()
	}
	wg.Wait()
	noise.stop()
	noise.check(t)
}

func readYourWrites(t *testing.T, l *Log, g, n int) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stream, patient := fmt.Sprintf("ryw/g%d", g), fmt.Sprintf("ryw-%d", g)
	var prev *uint64
	for k := 0; k < n; k++ {
		ev := Event{Stream: stream, Type: "patient-record.read", Action: "R", Actor: Actor{ID: "dr-1"}, Patient: patient}
		var rs []Receipt
		var err error
		switch k % 3 {
		case 0:
			var r Receipt
			r, err = l.Append(ctx, ev)
			rs = []Receipt{r}
		case 1:
			var r Receipt
			r, err = l.Log(ev).Wait(ctx)
			rs = []Receipt{r}
		default:
			rs, err = l.AppendBatch(ctx, []Event{ev, ev, ev})
		}
		if err != nil {
			t.Errorf("g%d: append %d: %v", g, k, err)
			return
		}
		checks := []func() error{
			func() error { return rywHead(ctx, l, stream, rs) },
			func() error {
				return rywQuery(ctx, l, "newest of the patient", Query{Patient: patient, Desc: true, Limit: 1}, rs[len(rs)-1:], false)
			},
			func() error {
				return rywQuery(ctx, l, "stream after the previous", Query{Stream: stream, After: prev, Limit: 10}, rs, true)
			},
			func() error {
				since, _ := time.Parse(RecordedLayout, rs[0].Recorded)
				return rywQuery(ctx, l, "stream since recorded", Query{Stream: stream, Since: since, Desc: true, Limit: 1}, rs[len(rs)-1:], false)
			},
		}
		// Each check in turn comes first, right after the receipt.
		for i := range checks {
			if err := checks[(i+k)%len(checks)](); err != nil {
				t.Errorf("g%d: right after receipts %+v: %v", g, rs, err)
				return
			}
		}
		prev = &rs[len(rs)-1].Index
	}
}

func rywHead(ctx context.Context, l *Log, stream string, rs []Receipt) error {
	r := rs[len(rs)-1]
	h, err := l.StreamHead(ctx, stream)
	if err != nil || h.HeadIndex != r.Index || h.Length != r.StreamSeq || h.HeadLeafHash != r.LeafHash {
		return fmt.Errorf("StreamHead(%s) = %+v, %v", stream, h, err)
	}
	return nil
}

// rywQuery checks that q's first page is the events of rs, and nothing more
// when whole.
func rywQuery(ctx context.Context, l *Log, what string, q Query, rs []Receipt, whole bool) error {
	res, err := l.Query(ctx, q)
	if err != nil {
		return fmt.Errorf("%s: %v", what, err)
	}
	ok := len(res.Events) == len(rs) && !(whole && res.More)
	for i := 0; ok && i < len(rs); i++ {
		ok = LeafHash(res.Events[i]) == rs[i].LeafHash
	}
	if !ok {
		return fmt.Errorf("%s: %d events (more %v), want the %d just appended: %v", what, len(res.Events), res.More, len(rs), qIndexes(res.Events))
	}
	return nil
}

// ---------------------------------------------------------------------------
// The index store rebuilt from the log.

// TestQueryIndexRebuilt stores more events than one replay batch (files.ReplayMax)
// and answers a set of queries; then, with the engine closed, removes the
// index store, empties it, or damages its CURRENT file. The reopened engine
// must give the same answers (and the model's).
func TestQueryIndexRebuilt(t *testing.T) {
	dir := t.TempDir()
	clock := newQClock()
	cfg := Config{Sync: SyncNone, Now: clock.now}
	l := openFilesTest(t, dir, cfg)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	d := qRng{rand.New(rand.NewPCG(seed, 5))}
	ctx := context.Background()
	for l.Size() < files.ReplayMax+5000 {
		evs := make([]Event, 1+d.intn(3000, ""))
		for i := range evs {
			evs[i] = qEvent(d, "")
		}
		if _, err := l.AppendBatch(ctx, evs); err != nil {
			t.Fatal(err)
		}
		clock.add(time.Duration(d.intn(3, "")) * time.Millisecond)
	}
	m := qModelFromLog(t, l, "before")
	queries := make([]qQuery, 60)
	for i := range queries {
		queries[i] = qDrawQuery(d, m, l.Size())
		if queries[i].Limit < 100 {
			queries[i].Limit = 1000 // whole answers in a few pages
		}
	}
	before := qAnswers(t, l, queries)
	for i, q := range queries {
		qCheckQuery(t, l, m, q, "before the index store is rebuilt #"+fmt.Sprint(i))
	}
	qCheckHeads(t, l, m, "before")
	closeQ(t, l)
	for how, name := range []string{"removed", "emptied", "CURRENT damaged"} {
		qDamageIndex(t, dir, how)
		clock.add(-time.Hour)
		l = openFilesTest(t, dir, cfg)
		if l.Size() != uint64(len(m.evs)) {
			t.Fatalf("index store %s: log has %d events after reopening, want %d", name, l.Size(), len(m.evs))
		}
		after := qAnswers(t, l, queries)
		for i, q := range queries {
			if !slices.EqualFunc(before[i], after[i], bytes.Equal) {
				t.Errorf("index store %s: query %s gives %d events, before %d:\n got %v\nwant %v",
					name, q, len(after[i]), len(before[i]), qIndexes(after[i]), qIndexes(before[i]))
			}
		}
		qCheckHeads(t, l, m, "index store "+name)
		// New events after the rebuild are found with the old ones.
		ev := qEvent(d, "")
		r, err := l.Append(ctx, ev)
		if err != nil {
			t.Fatal(err)
		}
		rec, _ := l.Read(r.Index)
		e, err := qEvOf(rec)
		if err != nil {
			t.Fatal(err)
		}
		m.evs = append(m.evs, e)
		for i := range 10 {
			qCheckQuery(t, l, m, queries[i], "index store "+name+", one more event")
		}
		before = qAnswers(t, l, queries)
		closeQ(t, l)
	}
}

// qAnswers pages through each query and returns the concatenated pages.
func qAnswers(t *testing.T, l *Log, queries []qQuery) [][][]byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out := make([][][]byte, len(queries))
	for i, q := range queries {
		for {
			res, err := l.Query(ctx, q.Query)
			if err != nil {
				t.Fatalf("query %s: %v", q, err)
			}
			out[i] = append(out[i], res.Events...)
			if !res.More {
				break
			}
			next := res.Next
			q.After = &next
		}
	}
	return out
}

// ---------------------------------------------------------------------------
// Power loss.

// TestQueryPowerLoss runs producers on a crashable file system and takes,
// at random moments, the state a power loss would leave (with part of the
// unsynced writes, at random). On each such state, in rounds, the reopened
// engine must hold every receipt given before the power loss, and answer
// every query as the model built from the records actually in its log does:
// no event lost from an answer, none twice. The clock is set back before
// each reopen; recorded must still never decrease along the log.
func TestQueryPowerLoss(t *testing.T) {
	first := uint64(time.Now().UnixNano()) & (1<<40 - 1)
	t.Logf("first seed %d", first)
	for i := 0; i < *querySeeds; i++ {
		seed := first + uint64(i)
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { queryPowerLossRun(t, seed) })
	}
}

func queryPowerLossRun(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0x9e))
	mem := vfs.NewCrashableMem()
	const dir = "/srv/trail"
	durableDir(t, mem, dir)
	clock := newQClock()
	// Every reading of the clock moves it on a microsecond, every third one
	// not at all: recorded repeats within and across batches.
	var reads atomic.Int64
	now := func() time.Time {
		if reads.Add(1)%3 != 0 {
			clock.add(time.Microsecond)
		}
		return clock.now()
	}
	cfg := Config{SegmentSize: []int64{4 << 10, 64 << 10}[rng.IntN(2)],
		CheckpointInterval: time.Duration(2+rng.IntN(10)) * time.Millisecond, Now: now}
	d := qRng{rng}
	var before []Receipt // acknowledged before a power loss, in every round so far
	for round := 0; round < 4; round++ {
		what := fmt.Sprintf("round %d", round)
		if round > 0 && rng.IntN(3) == 0 {
			// The index store is lost too: recovery rebuilds it from the log.
			if err := mem.RemoveAll(mem.PathJoin(dir, datadir.IndexDir)); err != nil {
				t.Fatal(err)
			}
			what += " (index store removed)"
		}
		// In some rounds the power fails again at the k-th write of the
		// reopened engine: during recovery and the index rebuild, or soon
		// after.
		var during atomic.Pointer[vfs.MemFS]
		cfg.FS = mem
		if round > 0 && rng.IntN(2) == 0 {
			at := int64(1 + rng.IntN(60))
			var writes atomic.Int64
			var once sync.Once
			src, crng := mem, rand.New(rand.NewPCG(seed, uint64(100+round)))
			cfg.FS = errorfs.Wrap(mem, errorfs.InjectorFunc(func(op errorfs.Op) error {
				if op.Kind.ReadOrWrite() == errorfs.OpIsWrite && writes.Add(1) == at {
					once.Do(func() { during.Store(src.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 50, RNG: crng})) })
				}
				return nil
			}))
			what += fmt.Sprintf(" (power fails again at write %d)", at)
		}
		l := openTest(t, dir, cfg)
		m := qCheckRecovered(t, l, d, before, what)
		if c := during.Load(); c != nil {
			closeQ(t, l)
			t.Logf("%s: %d events; the power failed during or soon after recovery", what, len(m.evs))
			mem = c
			continue
		}
		p := startQProducers(l, 3, rng.Uint64())
		time.Sleep(time.Duration(2+rng.IntN(30)) * time.Millisecond) // when the power fails; not an assertion
		n := len(p.receipts())
		pct := []int{0, 10, 50, 90}[rng.IntN(4)]
		clone := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: pct, RNG: rand.New(rand.NewPCG(seed, uint64(round)))})
		before = append(before, p.receipts()[:n]...)
		p.stopped.Store(true)
		closeQ(t, l)
		p.stop()
		p.check(t)
		t.Logf("%s: %d events before, %d acknowledged before the power loss (keeping %d%% of unsynced writes)", what, len(m.evs), n, pct)
		mem = clone
		clock.add(-time.Duration(rng.IntN(3)) * time.Hour)
	}
	cfg.FS = mem
	l := openTest(t, dir, cfg)
	defer closeQ(t, l)
	qCheckRecovered(t, l, d, before, "last round")
}

// qCheckRecovered checks a reopened engine: every receipt in before is in
// its log, and queries and stream heads answer as the model built from the
// log does. It returns the model.
func qCheckRecovered(t *testing.T, l *Log, d qDraw, before []Receipt, what string) *qModel {
	t.Helper()
	for _, r := range before {
		rec, err := l.Read(r.Index)
		if err != nil || LeafHash(rec) != r.LeafHash {
			t.Fatalf("%s: acknowledged event %d lost after a power loss (log of %d): %v", what, r.Index, l.Size(), err)
		}
	}
	m := qModelFromLog(t, l, what)
	for range 40 {
		qCheckQuery(t, l, m, qDrawQuery(d, m, l.Size()), what)
	}
	qCheckHeads(t, l, m, what)
	return m
}

// ---------------------------------------------------------------------------
// Edges.

// TestQueryAfterClose: queries and stream heads after Close fail with
// ErrClosed; they must not panic on the closed index store.
func TestQueryAfterClose(t *testing.T) {
	l := openTest(t, t.TempDir(), Config{})
	ctx := context.Background()
	if _, err := l.Append(ctx, Event{Stream: "patient/1", Type: "t", Action: "R", Actor: Actor{ID: "a"}}); err != nil {
		t.Fatal(err)
	}
	closeQ(t, l)
	func() {
		defer func() {
			if v := recover(); v != nil {
				t.Errorf("Query after Close panicked: %v", v)
			}
		}()
		if _, err := l.Query(ctx, Query{}); !errors.Is(err, ErrClosed) {
			t.Errorf("Query after Close: %v; want ErrClosed", err)
		}
	}()
	func() {
		defer func() {
			if v := recover(); v != nil {
				t.Errorf("StreamHead after Close panicked: %v", v)
			}
		}()
		if _, err := l.StreamHead(ctx, "patient/1"); !errors.Is(err, ErrClosed) {
			t.Errorf("StreamHead after Close: %v; want ErrClosed", err)
		}
	}()
}

// TestQueryDuringClose: queries, stream heads and reads running while Close
// runs either answer or fail with ErrClosed; Close waits for them and
// succeeds.
func TestQueryDuringClose(t *testing.T) {
	for round := 0; round < 10; round++ {
		l := openTest(t, t.TempDir(), Config{Sync: SyncNone})
		d := qRng{rand.New(rand.NewPCG(uint64(round), 3))}
		evs := make([]Event, 500)
		for i := range evs {
			evs[i] = qEvent(d, "")
		}
		if _, err := l.AppendBatch(context.Background(), evs); err != nil {
			t.Fatal(err)
		}
		p := startQProducers(l, 1, uint64(round))
		var wg sync.WaitGroup
		errs := make(chan error, 100)
		for g := 0; g < 3; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx := context.Background()
				for k := 0; ; k++ {
					var err error
					switch k % 3 {
					case 0:
						_, err = l.Query(ctx, Query{Patient: "p1", Limit: 50})
					case 1:
						_, err = l.StreamHead(ctx, "patient/1")
					default:
						_, err = l.Read(uint64(k) % 500)
					}
					if errors.Is(err, ErrClosed) {
						return
					}
					if err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		time.Sleep(time.Duration(round) * time.Millisecond)
		p.stopped.Store(true)
		closeQ(t, l)
		wg.Wait()
		p.stop()
		p.check(t)
		close(errs)
		for err := range errs {
			t.Errorf("round %d: a read while Close ran: %v; want a result or ErrClosed", round, err)
		}
	}
}

// TestQueryTimeBoundsFarAway: bounds outside the years recorded times are in
// (before year 0, after year 9999) still bound by time. Recorded is compared
// as text, which orders times only within four-digit years.
func TestQueryTimeBoundsFarAway(t *testing.T) {
	l := openTest(t, t.TempDir(), Config{})
	defer closeQ(t, l)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if _, err := l.Append(ctx, Event{Stream: "patient/1", Type: "t", Action: "R", Actor: Actor{ID: "a"}}); err != nil {
			t.Fatal(err)
		}
	}
	past := time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)
	future := time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		q    Query
		want int
	}{
		{"since year -1", Query{Since: past}, 3},
		{"until year -1", Query{Until: past}, 0},
		{"since year 10000", Query{Since: future}, 0},
		{"until year 10000", Query{Until: future}, 3},
		{"since year 10000, desc", Query{Since: future, Desc: true}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := l.Query(ctx, tc.q)
			if err != nil || len(res.Events) != tc.want {
				t.Errorf("Query %s: %d events, %v; want %d", tc.name, len(res.Events), err, tc.want)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// Benchmark.

// BenchmarkQueryPatient measures one query for one patient's 1,000 events
// (limit 1000, all returned) among -query.events stored events (default
// 1,000,000). The goal is measured with 10,000,000:
//
//	go test -run '^$' -bench QueryPatient -count 5 -timeout 1h -query.events=10000000 .
//
// The events are stored once per process (SyncNone) in a temporary
// directory; the target patient's events are spread evenly over the log,
// among others of 100,000 patients.
func BenchmarkQueryPatient(b *testing.B) {
	n := *queryEvents
	if n < 1000 {
		b.Fatalf("-query.events=%d: want at least 1000", n)
	}
	l := openTest(b, b.TempDir(), Config{Sync: SyncNone})
	defer closeQ(b, l)
	start := time.Now()
	qBuildPatients(b, l, n)
	// The bulk build leaves the index store a flush backlog, possibly with
	// Apply batches over half a memtable that Pebble keeps as flushable
	// batches; a query right after it measures that (see
	// BenchmarkPostingsAfterLargeApply in internal/index), not the steady
	// state this benchmark is about.
	if err := l.st.(*files.Store).FlushIndex(); err != nil {
		b.Fatal(err)
	}
	b.Logf("stored %d events in %v", n, time.Since(start).Round(time.Millisecond))
	ctx := context.Background()
	q := Query{Patient: "bench-target", Limit: 1000}
	res, err := l.Query(ctx, q)
	if err != nil || len(res.Events) != 1000 || res.More {
		b.Fatalf("query: %d events, more %v, %v; want all 1000", len(res.Events), res.More, err)
	}
	b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
		for b.Loop() {
			res, err := l.Query(ctx, q)
			if err != nil || len(res.Events) != 1000 {
				b.Fatalf("query: %d events, %v", len(res.Events), err)
			}
		}
	})
}

// qBuildPatients stores n events; every n/1000-th is of patient bench-target.
func qBuildPatients(b *testing.B, l *Log, n int) {
	ctx := context.Background()
	every := n / 1000
	rng := rand.New(rand.NewPCG(1, 2))
	const batch = 10_000
	evs := make([]Event, 0, batch)
	flush := func() {
		if _, err := l.AppendBatch(ctx, evs); err != nil {
			b.Fatal(err)
		}
		evs = evs[:0]
	}
	for i := 0; i < n; i++ {
		patient := fmt.Sprintf("p%d", rng.IntN(100_000))
		if i%every == every/2 && i/every < 1000 {
			patient = "bench-target"
		}
		evs = append(evs, Event{
			Stream:  "patient/" + patient,
			Type:    qTypes[rng.IntN(len(qTypes))],
			Action:  qActions[rng.IntN(len(qActions))],
			Actor:   Actor{ID: fmt.Sprintf("dr-%d", rng.IntN(1000)), Role: "physician"},
			Patient: patient,
		})
		if len(evs) == batch {
			flush()
		}
	}
	if len(evs) > 0 {
		flush()
	}
}

// BenchmarkQueryOneStreamReader measures a reader that may read one stream
// (patient/reader, 1,000 events spread evenly over the log) querying among
// -query.events other events (default 1,000,000): with no filter, with
// type= (half of the reader's events, and no other's), with action= (all of
// them, and a fifth of the others) and backwards, each a page of 1000 (the
// whole answer); and, for comparison, readers of nearly everything:
//
//	go test -run '^$' -bench QueryOneStreamReader -benchtime 20x -count 5 .
//
// The events are stored once per process (SyncNone) in a temporary
// directory; the other events are of 100,000 patients' streams.
func BenchmarkQueryOneStreamReader(b *testing.B) {
	n := *queryEvents
	if n < 1000 {
		b.Fatalf("-query.events=%d: want at least 1000", n)
	}
	l := qOneReaderLog(b, n)
	const reader = "patient/reader"
	// What the server passes for a principal with the one read grant.
	one := func(q Query) Query {
		q.Readable, q.Scope = func(s string) bool { return s == reader }, &Scope{Patterns: []string{reader}}
		return q
	}
	// Readers of nearly everything, for comparison: every patient's stream
	// (one posting list of the prefix patient/), a break-glass read (one
	// list per first segment but trail), and the admin (no scope: a scan).
	every := func(q Query) Query {
		q.Scope = &Scope{Patterns: []string{"patient/*"}}
		return q
	}
	glass := func(q Query) Query {
		q.Scope = &Scope{Unreserved: true}
		return q
	}
	for _, tc := range []struct {
		name string
		q    Query
		want int
	}{
		{"filter=none", one(Query{Limit: 1000}), 1000},
		{"filter=type", one(Query{Type: "reader.even", Limit: 1000}), 500},
		{"filter=action", one(Query{Action: "R", Limit: 1000}), 1000}, // R: a fifth of the others too
		{"order=desc", one(Query{Limit: 1000, Desc: true}), 1000},
		{"scope=every-patient", every(Query{Limit: 1000}), 1000},
		{"scope=break-glass", glass(Query{Limit: 1000}), 1000},
		{"scope=admin", Query{Limit: 1000}, 1000},
	} {
		b.Run(fmt.Sprintf("events=%d/%s", n, tc.name), func(b *testing.B) {
			ctx := context.Background()
			for b.Loop() {
				res, err := l.Query(ctx, tc.q)
				if err != nil || len(res.Events) != tc.want {
					b.Fatalf("query: %d events, %v; want %d", len(res.Events), err, tc.want)
				}
			}
		})
	}
}

// qOneReader is the log of BenchmarkQueryOneStreamReader, opened once per
// process.
var qOneReader struct {
	once sync.Once
	l    *Log
	err  error
}

// qOneReaderLog opens the log of n other events and 1000 of patient/reader,
// one every n/1000, whose type is reader.even or reader.odd in turn. It is
// kept in $TMPDIR/trail-bench-reader-N, so that later runs (before and after
// a change) measure the same log without storing it again; remove that
// directory when done.
func qOneReaderLog(b *testing.B, n int) *Log {
	qOneReader.once.Do(func() {
		dir := filepath.Join(os.TempDir(), fmt.Sprintf("trail-bench-reader-%d", n))
		l, err := Open(dir, Config{Sync: SyncNone})
		if err != nil {
			qOneReader.err = err
			return
		}
		qOneReader.l = l
		if want := uint64(n + 1000); l.Size() != want {
			if l.Size() != 0 {
				qOneReader.err = fmt.Errorf("%s holds %d events, want %d: remove it", dir, l.Size(), want)
				return
			}
			start := time.Now()
			if qOneReader.err = qBuildOneReader(l, n); qOneReader.err != nil {
				return
			}
			b.Logf("stored %d events in %s in %v", l.Size(), dir, time.Since(start).Round(time.Millisecond))
		}
		qOneReader.err = l.st.(*files.Store).FlushIndex() // as in BenchmarkQueryPatient
	})
	if qOneReader.err != nil {
		b.Fatal(qOneReader.err)
	}
	return qOneReader.l
}

func qBuildOneReader(l *Log, n int) error {
	ctx := context.Background()
	every := n / 1000
	rng := rand.New(rand.NewPCG(3, 4))
	const batch = 10_000
	evs := make([]Event, 0, batch)
	mine := 0
	for i := 0; i < n || len(evs) > 0; i++ {
		if i < n {
			patient := fmt.Sprintf("p%d", rng.IntN(100_000))
			evs = append(evs, Event{
				Stream: "patient/" + patient, Type: qTypes[rng.IntN(len(qTypes))], Action: qActions[rng.IntN(len(qActions))],
				Actor: Actor{ID: fmt.Sprintf("dr-%d", rng.IntN(1000)), Role: "physician"}, Patient: patient,
			})
			if i%every == every/2 && mine < 1000 {
				typ := []string{"reader.even", "reader.odd"}[mine%2]
				evs = append(evs, Event{Stream: "patient/reader", Type: typ, Action: "R", Actor: Actor{ID: "dr-r"}, Patient: "reader"})
				mine++
			}
		}
		if len(evs) >= batch || i >= n {
			if _, err := l.AppendBatch(ctx, evs); err != nil {
				return err
			}
			evs = evs[:0]
		}
	}
	return nil
}
