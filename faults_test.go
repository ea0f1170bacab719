package trail

// Power-loss and fault-injection tests.
//
// The engine does all its file I/O through Config.FS, so these tests run it on
// a crashable in-memory file system (vfs.NewCrashableMem). CrashClone takes a
// copy of what a power loss at that moment could leave behind: everything
// fsynced, plus (UnsyncedDataPercent > 0) a random selection of the 4 KiB
// blocks and directory entries that were written but not synced, i.e. torn
// writes. errorfs wraps the same file system to inject fsync and ENOSPC errors.
//
// What they hold the engine to (DESIGN.md, Guarantees 1, 6 and 7 and "Batch"):
//   - every receipt given before the power loss is in the log reopened on the
//     clone, with the same index, leaf hash, id, stream and stream_seq;
//   - an atomic batch is wholly present or wholly absent after recovery;
//   - the recovered directory passes Verify, before and after reopening;
//   - after a write or fsync failure the engine fails closed: every pending
//     event not yet acknowledged fails with ErrFailed, nothing is acknowledged
//     later, the failed file is never fsynced again, and a restart recovers
//     every acknowledged event (also if the power fails right after it).
//
// Flags for longer runs:
//
//	-faults.seeds=N   power-loss runs (TestPowerLoss); fault runs per kind are N/10
//	-atomic.seeds=N   torn-batch runs (TestAtomicBatchTornWrites)
//	-faults.seed=S    first seed (default: from the clock; printed on failure)

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

var (
	faultsSeeds = flag.Int("faults.seeds", 20, "number of power-loss runs in TestPowerLoss (fault-injection runs per kind: N/10, at least 2)")
	atomicSeeds = flag.Int("atomic.seeds", 6, "number of runs in TestAtomicBatchTornWrites")
	faultsSeed  = flag.Uint64("faults.seed", 0, "first seed of the fault tests (0: from the clock)")
)

// firstSeed returns the first seed of a seeded test and logs it so that a
// failure can be replayed with -faults.seed.
func firstSeed(t *testing.T) uint64 {
	t.Helper()
	s := *faultsSeed
	if s == 0 {
		s = uint64(time.Now().UnixNano()) & (1<<40 - 1)
	}
	t.Logf("first seed %d (replay one run with -faults.seed=S and a -run filter naming its subtest)", s)
	return s
}

// ---------------------------------------------------------------------------
// The workload: generated events that can be rebuilt from a small spec.

// evSpec describes a generated event; genEvent rebuilds the same event from
// it, so a test can resend an acknowledged event (same id, same content).
type evSpec struct {
	ID     string `json:"id,omitempty"` // client id; empty: assigned by the engine
	Stream string `json:"stream"`
	N      int    `json:"n"`               // unique within a run
	Batch  string `json:"batch,omitempty"` // atomic batch id, empty for a single event
	BLen   int    `json:"blen,omitempty"`  // events in the batch
	BI     int    `json:"bi,omitempty"`    // position in the batch
	Pad    int    `json:"pad,omitempty"`   // bytes of padding in details
}

// evDetails is the details object of a generated event. Batch and BLen let a
// scan of the log count each batch's events without knowing the receipts.
type evDetails struct {
	N     int    `json:"n"`
	Batch string `json:"batch,omitempty"`
	BLen  int    `json:"blen,omitempty"`
	BI    int    `json:"bi"`
	Pad   string `json:"pad,omitempty"`
}

var testStreams = []string{
	"patient/1", "patient/2", "patient/3", "patient/4", "patient/5",
	"auth/login", "ward/icu", "patient/6/imaging",
}

func genEvent(s evSpec) Event {
	d := evDetails{N: s.N, Batch: s.Batch, BLen: s.BLen, BI: s.BI}
	if s.Pad > 0 {
		// Varied content, so that equal blocks of different events differ.
		unit := fmt.Sprintf("%08x-", uint32(s.N)*2654435761)
		d.Pad = strings.Repeat(unit, s.Pad/len(unit)+1)[:s.Pad]
	}
	details, err := json.Marshal(d)
	if err != nil {
		panic(err)
	}
	return Event{
		ID:      s.ID,
		Stream:  s.Stream,
		Type:    "patient-record.read",
		Action:  string("CRUDE"[s.N%5]),
		Actor:   Actor{ID: fmt.Sprintf("dr-%d", s.N%7), Role: "physician", Address: "10.0.0.7"},
		Patient: fmt.Sprintf("p%d", s.N%11),
		Details: details,
	}
}

// acked is an acknowledged event: what was sent and the receipt it got.
type acked struct {
	Spec evSpec  `json:"spec"`
	R    Receipt `json:"r"`
}

// workload drives an engine with several producers: single events waited on
// one by one (Log+Wait and Append), bursts of Log calls waited on together,
// and atomic batches, on mixed streams, some with client ids. It records
// every acknowledged event.
type workload struct {
	l          *Log
	tag        string // unique per run: makes ids and batch ids unique in the log
	pad        int    // details padding of each event
	maxBatch   int    // batches have 2..maxBatch events
	onlyBatch  int    // if > 0: every operation is a batch of exactly this many events
	expectFail bool   // storage failures (ErrFailed) are expected
	waitFor    time.Duration
	report     func(format string, args ...any) // a broken guarantee
	onAck      func([]acked)                    // called with each acknowledged event or batch

	stopped atomic.Bool
	wg      sync.WaitGroup
	mu      sync.Mutex
	acks    []acked
	nBatch  atomic.Int64 // batches logged
	nFailed atomic.Int64 // events that failed with ErrFailed
}

func newWorkload(l *Log, tag string, report func(string, ...any)) *workload {
	return &workload{l: l, tag: tag, maxBatch: 20, waitFor: 20 * time.Second, report: report}
}

// testWorkload is a workload that reports to t and goes quiet when the test
// ends (a producer still waiting after a t.Fatal must not log to a finished test).
func testWorkload(t *testing.T, l *Log, tag string) *workload {
	var muted atomic.Bool
	w := newWorkload(l, tag, func(format string, args ...any) {
		if !muted.Load() {
			t.Errorf(format, args...)
		}
	})
	t.Cleanup(func() { w.stop(); muted.Store(true) })
	return w
}

// start runs n producers until stop (or, when failures are expected, until
// each has seen the engine fail and checked that it refuses new events).
func (w *workload) start(n int, seed uint64) {
	for g := 0; g < n; g++ {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			w.produce(g, rand.New(rand.NewPCG(seed, uint64(g)+1)))
		}()
	}
}

func (w *workload) stop() { w.stopped.Store(true) }
func (w *workload) wait() { w.wg.Wait() }
func (w *workload) ackCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acks)
}

// acksUpTo returns the first n acknowledged events.
func (w *workload) acksUpTo(n int) []acked {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]acked(nil), w.acks[:n]...)
}

func (w *workload) allAcks() []acked {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]acked(nil), w.acks...)
}

func (w *workload) produce(g int, rng *rand.Rand) {
	n := g * 10_000_000
	spec := func(batch string, blen, bi int) evSpec {
		n++
		s := evSpec{Stream: testStreams[rng.IntN(len(testStreams))], N: n, Batch: batch, BLen: blen, BI: bi, Pad: w.pad}
		if rng.IntN(2) == 0 {
			s.ID = fmt.Sprintf("%s.g%d.%d", w.tag, g, n)
		}
		return s
	}
	for k := 0; ; k++ {
		if w.stopped.Load() {
			return
		}
		// A pending created after the engine reported a failure must fail.
		failedBefore := w.l.Err() != nil
		if failedBefore && w.expectFail {
			w.afterFailure(spec)
			return
		}
		op := rng.IntN(10)
		if w.onlyBatch > 0 {
			op = 9
		}
		switch {
		case op < 3: // Log, then Wait
			s := spec("", 0, 0)
			p := w.l.Log(genEvent(s))
			r, err := w.waitPending(p)
			w.result([]evSpec{s}, []Receipt{r}, err, failedBefore)
		case op < 5: // Append
			s := spec("", 0, 0)
			ctx, cancel := context.WithTimeout(context.Background(), w.waitFor)
			r, err := w.l.Append(ctx, genEvent(s))
			cancel()
			w.result([]evSpec{s}, []Receipt{r}, err, failedBefore)
		case op < 6: // a burst of Log calls, then wait for each
			m := 2 + rng.IntN(30)
			specs := make([]evSpec, m)
			ps := make([]*Pending, m)
			for i := range specs {
				specs[i] = spec("", 0, 0)
				ps[i] = w.l.Log(genEvent(specs[i]))
			}
			for i, p := range ps {
				r, err := w.waitPending(p)
				w.result(specs[i:i+1], []Receipt{r}, err, failedBefore)
			}
		default: // an atomic batch
			m := 2 + rng.IntN(w.maxBatch-1)
			if w.onlyBatch > 0 {
				m = w.onlyBatch
			}
			id := fmt.Sprintf("%s.g%d.b%d", w.tag, g, k)
			specs := make([]evSpec, m)
			evs := make([]Event, m)
			for i := range specs {
				specs[i] = spec(id, m, i)
				evs[i] = genEvent(specs[i])
			}
			w.nBatch.Add(1)
			ctx, cancel := context.WithTimeout(context.Background(), w.waitFor)
			rs, err := w.l.AppendBatch(ctx, evs)
			cancel()
			if err == nil && len(rs) != m {
				w.report("batch %s: %d receipts for %d events", id, len(rs), m)
				continue
			}
			w.result(specs, rs, err, failedBefore)
		}
	}
}

func (w *workload) waitPending(p *Pending) (Receipt, error) {
	ctx, cancel := context.WithTimeout(context.Background(), w.waitFor)
	defer cancel()
	r, err := p.Wait(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		w.report("a pending event did not resolve within %v", w.waitFor)
	}
	return r, err
}

// result records the outcome of one event or one batch.
func (w *workload) result(specs []evSpec, rs []Receipt, err error, failedBefore bool) {
	if err != nil {
		switch {
		case w.expectFail && errors.Is(err, ErrFailed):
			w.nFailed.Add(int64(len(specs)))
		case w.stopped.Load() && errors.Is(err, ErrClosed):
		default:
			w.report("event %+v: unexpected error %v", specs[0], err)
		}
		return
	}
	if failedBefore {
		w.report("event %+v was acknowledged (index %d) although it was logged after the engine failed (%v)", specs[0], rs[0].Index, w.l.Err())
	}
	as := make([]acked, len(specs))
	for i, s := range specs {
		r := rs[i]
		if r.Stream != s.Stream || (s.ID != "" && r.ID != s.ID) || r.ID == "" || r.StreamSeq == 0 {
			w.report("receipt %+v does not match event %+v", r, s)
		}
		as[i] = acked{Spec: s, R: r}
	}
	w.mu.Lock()
	w.acks = append(w.acks, as...)
	w.mu.Unlock()
	if w.onAck != nil {
		w.onAck(as)
	}
}

// afterFailure checks that a failed engine refuses every way of logging.
func (w *workload) afterFailure(spec func(string, int, int) evSpec) {
	ctx, cancel := context.WithTimeout(context.Background(), w.waitFor)
	defer cancel()
	s := spec("", 0, 0)
	if r, err := w.l.Log(genEvent(s)).Wait(ctx); !errors.Is(err, ErrFailed) {
		w.report("Log after the failure: receipt %+v, error %v; want ErrFailed", r, err)
	}
	s = spec("", 0, 0)
	if r, err := w.l.Append(ctx, genEvent(s)); !errors.Is(err, ErrFailed) {
		w.report("Append after the failure: receipt %+v, error %v; want ErrFailed", r, err)
	}
	batch := fmt.Sprintf("%s.after.%d", w.tag, spec("", 0, 0).N)
	evs := []Event{genEvent(spec(batch, 2, 0)), genEvent(spec(batch, 2, 1))}
	if rs, err := w.l.AppendBatch(ctx, evs); !errors.Is(err, ErrFailed) {
		w.report("AppendBatch after the failure: receipts %+v, error %v; want ErrFailed", rs, err)
	}
}

// ---------------------------------------------------------------------------
// Checks on a reopened log.

// errCap stops a check after a few errors, so one broken guarantee does not
// print thousands of lines.
type errCap struct {
	t *testing.T
	n int
}

func (e *errCap) errorf(format string, args ...any) bool {
	e.t.Helper()
	e.n++
	if e.n <= 10 {
		e.t.Errorf(format, args...)
	}
	if e.n == 11 {
		e.t.Errorf("(more errors left out)")
	}
	return e.n <= 10
}

// checkAcked checks that every acknowledged event is stored as its receipt
// says: same index, leaf hash of the stored bytes, id, stream, stream_seq,
// recorded, and the details that were sent.
func checkAcked(t *testing.T, l *Log, acks []acked, what string) {
	t.Helper()
	ec := &errCap{t: t}
	size := l.Size()
	for _, a := range acks {
		r := a.R
		if r.Index >= size {
			ec.errorf("%s: acknowledged event lost: index %d (id %s, stream %s) but the log has %d events", what, r.Index, r.ID, r.Stream, size)
			continue
		}
		rec, err := l.Read(r.Index)
		if err != nil {
			ec.errorf("%s: acknowledged event %d unreadable: %v", what, r.Index, err)
			continue
		}
		if h := LeafHash(rec); h != r.LeafHash {
			ec.errorf("%s: event %d: leaf hash of the stored bytes %s, receipt says %s (stored: %s)", what, r.Index, h, r.LeafHash, rec)
			continue
		}
		st, err := ParseStored(rec)
		if err != nil {
			ec.errorf("%s: event %d: %v", what, r.Index, err)
			continue
		}
		if st.Index != r.Index || st.ID != r.ID || st.Stream != r.Stream || st.StreamSeq != r.StreamSeq || st.Recorded != r.Recorded {
			ec.errorf("%s: event %d stored as index %d id %s stream %s seq %d recorded %s; receipt %+v",
				what, r.Index, st.Index, st.ID, st.Stream, st.StreamSeq, st.Recorded, r)
			continue
		}
		var d evDetails
		if err := json.Unmarshal(st.Details, &d); err != nil || d.N != a.Spec.N || d.Batch != a.Spec.Batch || d.BI != a.Spec.BI {
			ec.errorf("%s: event %d: details %s do not match the event sent (%+v)", what, r.Index, st.Details, a.Spec)
		}
	}
}

// checkBatches scans the records [from, Size()) and checks that each atomic
// batch in them is whole: every one of its events present once. (An
// unacknowledged batch may be absent, but never partly present.) It returns
// how many batches it saw.
func checkBatches(t *testing.T, l *Log, from uint64, what string) int {
	t.Helper()
	ec := &errCap{t: t}
	type seen struct {
		blen  int
		count int
		bis   map[int]bool
		first uint64
	}
	batches := make(map[string]*seen)
	size := l.Size()
	for i := from; i < size; i++ {
		rec, err := l.Read(i)
		if err != nil {
			ec.errorf("%s: read %d of %d: %v", what, i, size, err)
			continue
		}
		st, err := ParseStored(rec)
		if err != nil {
			ec.errorf("%s: record %d: %v", what, i, err)
			continue
		}
		var d evDetails
		if err := json.Unmarshal(st.Details, &d); err != nil {
			ec.errorf("%s: record %d: details %s: %v", what, i, st.Details, err)
			continue
		}
		if d.Batch == "" {
			continue
		}
		b := batches[d.Batch]
		if b == nil {
			b = &seen{blen: d.BLen, bis: make(map[int]bool), first: i}
			batches[d.Batch] = b
		}
		if b.bis[d.BI] {
			ec.errorf("%s: batch %s: event %d stored twice (again at index %d)", what, d.Batch, d.BI, i)
		}
		b.bis[d.BI] = true
		b.count++
	}
	for id, b := range batches {
		if b.count != b.blen {
			ec.errorf("%s: atomic batch %s is partly stored: %d of its %d events (first at index %d, log size %d)", what, id, b.count, b.blen, b.first, size)
		}
	}
	return len(batches)
}

// checkResend resends up to n acknowledged events that carried a client id
// and checks that each gets its first receipt back (exactly once).
func checkResend(t *testing.T, l *Log, acks []acked, n int, rng *rand.Rand, what string) {
	t.Helper()
	ec := &errCap{t: t}
	var withID []acked
	for _, a := range acks {
		if a.Spec.ID != "" {
			withID = append(withID, a)
		}
	}
	size := l.Size()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for k := 0; k < n && len(withID) > 0; k++ {
		a := withID[rng.IntN(len(withID))]
		r, err := l.Append(ctx, genEvent(a.Spec))
		if err != nil || r != a.R {
			ec.errorf("%s: resending acknowledged event %s: receipt %+v, error %v; want the first receipt %+v", what, a.Spec.ID, r, err, a.R)
		}
	}
	if l.Size() != size {
		t.Errorf("%s: resending acknowledged events stored %d new events", what, l.Size()-size)
	}
}

// checkVerify runs Verify on dir and fails the test on any error.
func checkVerify(t *testing.T, fs vfs.FS, dir, what string) VerifyReport {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := Verify(ctx, dir, VerifyOptions{FS: fs})
	if err != nil {
		var ve *VerifyError
		if errors.As(err, &ve) {
			t.Errorf("%s: Verify found damage at index %d: %s", what, ve.Index, ve.Reason)
		} else {
			t.Errorf("%s: Verify: %v", what, err)
		}
	}
	return rep
}

// appendMore checks that a (re)opened engine accepts new events and a batch
// right after its last event.
func appendMore(t *testing.T, l *Log, tag string) []acked {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []acked
	for i := 0; i < 3; i++ {
		s := evSpec{ID: fmt.Sprintf("%s.more.%d", tag, i), Stream: testStreams[i], N: 900_000_000 + i}
		want := l.Size()
		r, err := l.Append(ctx, genEvent(s))
		if err != nil {
			t.Fatalf("append after recovery: %v", err)
		}
		if r.Index != want {
			t.Errorf("append after recovery: index %d, want %d (the end of the log)", r.Index, want)
		}
		out = append(out, acked{Spec: s, R: r})
	}
	var specs []evSpec
	var evs []Event
	for i := 0; i < 4; i++ {
		s := evSpec{Stream: testStreams[i+3], N: 900_000_100 + i, Batch: tag + ".more.b", BLen: 4, BI: i}
		specs = append(specs, s)
		evs = append(evs, genEvent(s))
	}
	rs, err := l.AppendBatch(ctx, evs)
	if err != nil {
		t.Fatalf("batch after recovery: %v", err)
	}
	for i := range rs {
		out = append(out, acked{Spec: specs[i], R: rs[i]})
	}
	return out
}

// durableDir creates dir on fs and fsyncs every parent, as an installer
// would. The power-loss tests start from it so that they test the engine's
// own files; TestPowerLossNewDataDir tests a data directory Open creates.
func durableDir(t *testing.T, fs vfs.FS, dir string) {
	t.Helper()
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for d := dir; ; {
		parent := fs.PathDir(d)
		f, err := fs.OpenDir(parent)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
		f.Close()
		if parent == d || parent == "/" || parent == "." {
			break
		}
		d = parent
	}
}

func closeLog(t *testing.T, l *Log, what string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := l.Close(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%s: Close did not return within 20s", what)
	}
	return err
}

func openLog(t *testing.T, dir string, cfg Config, what string) *Log {
	t.Helper()
	l, err := Open(dir, cfg)
	if err != nil {
		t.Fatalf("%s: Open: %v", what, err)
	}
	return l
}

// ---------------------------------------------------------------------------
// Test 2: power loss while producers run.

// TestPowerLoss runs producers against the engine on a crashable file system
// and, at a random moment while they run, takes the state a power loss would
// leave (only fsynced data, or fsynced data plus a random part of the
// unsynced blocks: torn writes). Every receipt given before that moment must
// be in the log reopened on that state, batches must be whole or absent, and
// Verify must pass on the raw state and after recovery.
func TestPowerLoss(t *testing.T) {
	first := firstSeed(t)
	for i := 0; i < *faultsSeeds; i++ {
		seed := first + uint64(i)
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { powerLossRun(t, seed) })
	}
}

func powerLossRun(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	mem := vfs.NewCrashableMem()
	const dir = "/srv/trail"
	durableDir(t, mem, dir)
	cfg := Config{
		FS:                 mem,
		SegmentSize:        []int64{4 << 10, 16 << 10, 64 << 10}[rng.IntN(3)],
		CheckpointInterval: time.Duration(5+rng.IntN(16)) * time.Millisecond,
	}
	pct := []int{0, 10, 50, 90}[rng.IntN(4)]
	delay := time.Duration(2+rng.IntN(40)) * time.Millisecond
	t.Logf("segment size %d, checkpoint interval %v, crash after %v keeping %d%% of unsynced blocks", cfg.SegmentSize, cfg.CheckpointInterval, delay, pct)

	l := openLog(t, dir, cfg, "first open")
	w := testWorkload(t, l, fmt.Sprintf("s%d", seed))
	w.start(4, seed)
	time.Sleep(delay) // when the power fails; not an assertion
	// Receipts recorded so far were acknowledged before the clone begins.
	n := w.ackCount()
	clone := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: pct, RNG: rand.New(rand.NewPCG(seed, 1))})
	before := w.acksUpTo(n)
	w.stop()
	if err := closeLog(t, l, "original engine"); err != nil {
		t.Errorf("Close of the original engine: %v", err)
	}
	w.wait()

	raw := checkVerify(t, clone, dir, "raw state after the power loss")
	// In half of the runs the power fails again during recovery (or soon
	// after): at the k-th write the reopened engine makes.
	var again atomic.Pointer[vfs.MemFS]
	var writes atomic.Int64
	cfg.FS = clone
	second := rng.IntN(2) == 0
	if second {
		at := int64(1 + rng.IntN(60))
		crng := rand.New(rand.NewPCG(seed, 3))
		var once sync.Once
		cfg.FS = errorfs.Wrap(clone, errorfs.InjectorFunc(func(op errorfs.Op) error {
			if op.Kind.ReadOrWrite() == errorfs.OpIsWrite && writes.Add(1) == at {
				once.Do(func() { again.Store(clone.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: pct, RNG: crng})) })
			}
			return nil
		}))
		defer func() { t.Logf("second power loss at write %d after reopening", at) }()
	}
	l2 := openLog(t, dir, cfg, "reopen after the power loss")
	if second {
		t.Logf("Open made %d writes", writes.Load())
	}
	size := l2.Size()
	checkAcked(t, l2, before, "after power loss")
	nb := checkBatches(t, l2, 0, "after power loss")
	checkResend(t, l2, before, 10, rng, "after power loss")
	more := appendMore(t, l2, fmt.Sprintf("s%d", seed))
	if err := closeLog(t, l2, "reopened engine"); err != nil {
		t.Errorf("Close after recovery: %v", err)
	}
	rep := checkVerify(t, clone, dir, "after recovery")
	if want := size + uint64(len(more)); rep.Events != want {
		t.Errorf("Verify after recovery saw %d events, want %d", rep.Events, want)
	}
	t.Logf("%d acknowledged before the power loss (%d in all), %d survived, %d batches seen; raw torn tail: %q",
		len(before), w.ackCount(), size, nb, raw.TornTail)

	// A power loss during recovery: nothing acknowledged before the first
	// one is lost either.
	if fs2 := again.Load(); fs2 != nil {
		checkVerify(t, fs2, dir, "raw state after a second power loss during recovery")
		cfg.FS = fs2
		l4 := openLog(t, dir, cfg, "reopen after a second power loss during recovery")
		checkAcked(t, l4, before, "after a second power loss during recovery")
		checkBatches(t, l4, 0, "after a second power loss during recovery")
		closeLog(t, l4, "engine after the second power loss")
		checkVerify(t, fs2, dir, "after recovery from a second power loss")
	}

	// A clean shutdown followed by a power loss keeps everything.
	clone2 := clone.CrashClone(vfs.CrashCloneCfg{})
	cfg.FS = clone2
	l3 := openLog(t, dir, cfg, "reopen after a clean close and a power loss")
	checkAcked(t, l3, append(before, more...), "after a clean close and a power loss")
	if l3.Size() != size+uint64(len(more)) {
		t.Errorf("after a clean close and a power loss: %d events, want %d", l3.Size(), size+uint64(len(more)))
	}
	closeLog(t, l3, "third engine")
}

// TestPowerLossNewDataDir: Open creates the data directory when it does not
// exist; events acknowledged in it must survive a power loss, which needs the
// new directory's entry in its parent to be durable.
func TestPowerLossNewDataDir(t *testing.T) {
	mem := vfs.NewCrashableMem()
	durableDir(t, mem, "/srv")
	const dir = "/srv/trail"
	l := openLog(t, dir, Config{FS: mem, CheckpointInterval: 5 * time.Millisecond}, "first open")
	acks := appendMore(t, l, "newdir")
	clone := mem.CrashClone(vfs.CrashCloneCfg{})
	closeLog(t, l, "first engine")
	names, _ := clone.List("/srv")
	l2 := openLog(t, dir, Config{FS: clone}, "reopen after the power loss")
	defer closeLog(t, l2, "second engine")
	if l2.Size() < uint64(len(acks)) {
		t.Errorf("after a power loss the log has %d events; %d were acknowledged. /srv held %q after the power loss: "+
			"the data directory Open created was not made durable in its parent", l2.Size(), len(acks), names)
	}
	checkAcked(t, l2, acks, "after power loss")
}

// TestPowerLossAfterRestart: a process dies after the engine wrote a batch
// but before its fsync (here: the fsync fails and the engine stops), the
// engine restarts and recovers, and then the power fails. The restarted
// engine must not have signed a checkpoint over records it read from the page
// cache without making them durable: the next start must succeed and find
// every acknowledged event.
func TestPowerLossAfterRestart(t *testing.T) {
	mem := vfs.NewCrashableMem()
	const dir = "/srv/trail"
	durableDir(t, mem, dir)
	var fail atomic.Bool
	fs := errorfs.Wrap(mem, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if fail.Load() && isSync(op.Kind) && isSegment(op.Path) {
			return syscall.EIO
		}
		return nil
	}))
	cfg := Config{FS: fs, SegmentSize: 1 << 20, CheckpointInterval: time.Hour}
	l := openLog(t, dir, cfg, "first open")
	acks := appendMore(t, l, "a")
	acks = append(acks, appendMore(t, l, "b")...)
	fail.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := l.Append(ctx, genEvent(evSpec{Stream: "patient/1", N: 1})); !errors.Is(err, ErrFailed) {
		t.Fatalf("append whose fsync fails: %v, want ErrFailed", err)
	}
	closeLog(t, l, "failed engine")

	cfg.FS = mem
	l2 := openLog(t, dir, cfg, "restart")
	restarted := l2.Size()
	checkAcked(t, l2, acks, "after restart")
	clone := mem.CrashClone(vfs.CrashCloneCfg{}) // the power fails right after the restart
	closeLog(t, l2, "restarted engine")

	cfg.FS = clone
	l3, err := Open(dir, cfg)
	if err != nil {
		t.Fatalf("Open after a restart (which recovered %d events, %d acknowledged) and a power loss: %v", restarted, len(acks), err)
	}
	checkAcked(t, l3, acks, "after restart and power loss")
	closeLog(t, l3, "third engine")
	checkVerify(t, clone, dir, "after restart and power loss")
}

// ---------------------------------------------------------------------------
// Test 3: fail closed on write and fsync errors.

func opName(k errorfs.OpKind) string {
	switch k {
	case errorfs.OpFileSync:
		return "Sync"
	case errorfs.OpFileSyncData:
		return "SyncData"
	case errorfs.OpFileSyncTo:
		return "SyncTo"
	case errorfs.OpFileWrite:
		return "Write"
	case errorfs.OpFileWriteAt:
		return "WriteAt"
	}
	return fmt.Sprintf("op#%d", int(k))
}

func isSync(k errorfs.OpKind) bool {
	return k == errorfs.OpFileSync || k == errorfs.OpFileSyncData || k == errorfs.OpFileSyncTo
}

func isWrite(k errorfs.OpKind) bool {
	return k == errorfs.OpFileWrite || k == errorfs.OpFileWriteAt
}

func isSegment(path string) bool {
	return strings.Contains(path, "/log/") && strings.HasSuffix(path, ".seg")
}

// faultKind is one kind of storage failure.
type faultKind struct {
	name  string
	err   error
	match func(op errorfs.Op) bool // the operations that count and fail
	max   int                      // matching operations that succeed before the failure: 0..max
	// sticky: after the failure, every matching operation fails (a full disk);
	// otherwise only operations on the file that failed do (a bad file).
	sticky bool
}

var faultKinds = []faultKind{
	{name: "segment-fsync-EIO", err: syscall.EIO, max: 40,
		match: func(op errorfs.Op) bool { return isSync(op.Kind) && isSegment(op.Path) }},
	{name: "segment-write-ENOSPC", err: syscall.ENOSPC, max: 80, sticky: true,
		match: func(op errorfs.Op) bool { return isWrite(op.Kind) && isSegment(op.Path) }},
	{name: "tree-write-ENOSPC", err: syscall.ENOSPC, max: 200, sticky: true,
		match: func(op errorfs.Op) bool { return isWrite(op.Kind) && strings.Contains(op.Path, "/tree/") }},
	{name: "tree-fsync-EIO", err: syscall.EIO, max: 30,
		match: func(op errorfs.Op) bool { return isSync(op.Kind) && strings.Contains(op.Path, "/tree/") }},
	{name: "checkpoint-log-fsync-EIO", err: syscall.EIO, max: 4,
		match: func(op errorfs.Op) bool { return isSync(op.Kind) && strings.HasSuffix(op.Path, "/checkpoints") }},
	{name: "checkpoint-latest-fsync-EIO", err: syscall.EIO, max: 4,
		match: func(op errorfs.Op) bool { return isSync(op.Kind) && strings.HasSuffix(op.Path, "/checkpoint.tmp") }},
}

// injector fails one operation of a kind after a number of successes and
// watches what the engine does to the failed file afterwards.
type injector struct {
	kind  faultKind
	after int
	armed atomic.Bool

	mu        sync.Mutex
	seen      int
	failed    string   // path of the operation that failed first
	failedOp  string   // a description of it
	syncFail  bool     // the operation that failed was an fsync
	syncAfter []string // syncs of a file after its fsync failed
	writeSegs []string // segment writes after a segment write failed
}

func (in *injector) String() string { return in.kind.name }

func (in *injector) MaybeError(op errorfs.Op) error {
	if !in.armed.Load() {
		return nil
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.failed != "" {
		// A write that failed does not forbid an fsync of what was written
		// before it (the syncer may hold an earlier batch of the same
		// segment); an fsync that failed must never be retried.
		if in.syncFail && op.Path == in.failed && isSync(op.Kind) {
			in.syncAfter = append(in.syncAfter, fmt.Sprintf("%s %s", opName(op.Kind), op.Path))
		}
		if in.kind.err == syscall.ENOSPC && isWrite(op.Kind) && isSegment(op.Path) {
			in.writeSegs = append(in.writeSegs, fmt.Sprintf("%s %s at %d", opName(op.Kind), op.Path, op.Offset))
		}
		if in.kind.match(op) && (in.kind.sticky || op.Path == in.failed) {
			return in.kind.err
		}
		return nil
	}
	if !in.kind.match(op) {
		return nil
	}
	if in.seen < in.after {
		in.seen++
		return nil
	}
	in.failed, in.failedOp = op.Path, fmt.Sprintf("%s %s", opName(op.Kind), op.Path)
	in.syncFail = isSync(op.Kind)
	return in.kind.err
}

// TestFaultFailClosed injects one storage failure (an fsync EIO on a log
// segment, ENOSPC on segment writes, an fsync EIO on a Merkle tree level file
// or on either checkpoint file) while producers run, and checks that the
// engine fails closed and recovers on restart.
func TestFaultFailClosed(t *testing.T) {
	first := firstSeed(t)
	runs := max(2, *faultsSeeds/10)
	for _, kind := range faultKinds {
		for i := 0; i < runs; i++ {
			seed := first + uint64(i)
			t.Run(fmt.Sprintf("%s/seed=%d", kind.name, seed), func(t *testing.T) { failClosedRun(t, kind, seed) })
		}
	}
}

func failClosedRun(t *testing.T, kind faultKind, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0xfa17))
	mem := vfs.NewCrashableMem()
	const dir = "/srv/trail"
	durableDir(t, mem, dir)
	in := &injector{kind: kind, after: rng.IntN(kind.max + 1)}
	cfg := Config{
		FS:                 errorfs.Wrap(mem, in),
		SegmentSize:        []int64{1 << 10, 4 << 10, 16 << 10}[rng.IntN(3)],
		CheckpointInterval: 5 * time.Millisecond,
	}
	t.Logf("%s after %d successful operations; segment size %d", kind.name, in.after, cfg.SegmentSize)
	l := openLog(t, dir, cfg, "open")
	in.armed.Store(true)
	w := testWorkload(t, l, fmt.Sprintf("f%d", seed))
	w.expectFail = true
	w.start(4, seed)

	// The engine must notice the failure.
	deadline := time.Now().Add(20 * time.Second)
	for l.Err() == nil {
		if time.Now().After(deadline) {
			in.mu.Lock()
			t.Fatalf("the engine did not fail within 20s (injected failure: %q)", in.failedOp)
		}
		time.Sleep(time.Millisecond)
	}
	done := make(chan struct{})
	go func() { w.wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("producers still blocked 30s after the failure: some pending never resolved")
	}

	err := l.Err()
	if !errors.Is(err, ErrFailed) || !errors.Is(err, kind.err) {
		t.Errorf("Err() = %v; want an error matching ErrFailed and %v", err, kind.err)
	}
	in.mu.Lock()
	failedOp := in.failedOp
	in.mu.Unlock()
	if failedOp == "" {
		t.Errorf("the engine failed (%v) but the injected failure never happened", err)
	}
	// Nothing acknowledged beyond what the engine reports as stored.
	acks := w.allAcks()
	size := l.Size()
	for _, a := range acks {
		if a.R.Index >= size {
			t.Errorf("event %d acknowledged, but Size() is %d after the failure", a.R.Index, size)
		}
	}
	// Every way to log fails now, and Size does not move.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := l.Log(genEvent(evSpec{Stream: "patient/1", N: 1})).Wait(ctx); !errors.Is(err, ErrFailed) {
		t.Errorf("Log after the failure: %v, want ErrFailed", err)
	}
	if _, err := l.Append(ctx, genEvent(evSpec{Stream: "patient/1", N: 2})); !errors.Is(err, ErrFailed) {
		t.Errorf("Append after the failure: %v, want ErrFailed", err)
	}
	if l.Size() != size {
		t.Errorf("Size() moved from %d to %d after the failure", size, l.Size())
	}
	if cerr := closeLog(t, l, "failed engine"); cerr != nil {
		t.Logf("Close of the failed engine: %v", cerr)
	}
	if l.Err() == nil {
		t.Errorf("Err() is nil after Close of a failed engine")
	}
	in.mu.Lock()
	if len(in.syncAfter) > 0 {
		t.Errorf("after the fsync of %s failed (%v), the engine synced it again %d times (%v): a failed fsync must never be retried",
			in.failed, kind.err, len(in.syncAfter), in.syncAfter[:min(3, len(in.syncAfter))])
	}
	if len(in.writeSegs) > 0 {
		t.Errorf("after a segment write failed with ENOSPC, the engine wrote segments %d more times (%v)", len(in.writeSegs), in.writeSegs[:min(3, len(in.writeSegs))])
	}
	in.mu.Unlock()
	t.Logf("failed at %q; %d events acknowledged, %d failed with ErrFailed, %d batches logged, size %d",
		failedOp, len(acks), w.nFailed.Load(), w.nBatch.Load(), size)

	// Restart on the same disk, without the fault.
	cfg.FS = mem
	l2 := openLog(t, dir, cfg, "restart after the failure")
	clone := mem.CrashClone(vfs.CrashCloneCfg{}) // for a power loss right after the restart
	checkAcked(t, l2, acks, "after restart")
	checkBatches(t, l2, 0, "after restart")
	checkResend(t, l2, acks, 5, rng, "after restart")
	more := appendMore(t, l2, fmt.Sprintf("f%d", seed))
	checkAcked(t, l2, more, "after restart")
	if err := closeLog(t, l2, "restarted engine"); err != nil {
		t.Errorf("Close after restart: %v", err)
	}
	checkVerify(t, mem, dir, "after restart")

	// The power fails right after the restart: a third start must still
	// succeed and hold every event acknowledged before the failure.
	cfg.FS = clone
	l3, err := Open(dir, cfg)
	if err != nil {
		t.Fatalf("Open after a restart and a power loss right after it: %v", err)
	}
	checkAcked(t, l3, acks, "after restart and power loss")
	checkBatches(t, l3, 0, "after restart and power loss")
	closeLog(t, l3, "third engine")
	checkVerify(t, clone, dir, "after restart and power loss")
}

// TestFaultNoFsyncRetry pins down one interleaving of the fsync-failure case
// that TestFaultFailClosed only hits now and then: the syncer's fsync of the
// active segment fails while the sequencer is already writing the next batch,
// which needs a new segment. Once the engine has recorded the failure it must
// not fsync that segment again (rotation syncs the segment it seals): after a
// failed fsync the page cache is in an unknown state, and a second fsync that
// "succeeds" would let the engine seal a segment that lost records.
func TestFaultNoFsyncRetry(t *testing.T) {
	mem := vfs.NewCrashableMem()
	const dir = "/srv/trail"
	durableDir(t, mem, dir)

	var (
		armed      atomic.Bool
		mu         sync.Mutex
		failedPath string // the segment whose fsync failed
		failedDone bool   // that fsync has returned its error
		retries    []string
		syncHeld   = make(chan struct{}) // the syncer's fsync is held
		release1   = make(chan struct{}) // let it fail
		nextHeld   = make(chan struct{}) // the sequencer is held in its next batch
		release2   = make(chan struct{}) // let the sequencer go on
		once1      sync.Once
		once2      sync.Once
	)
	wait := func(ch chan struct{}) {
		select {
		case <-ch:
		case <-time.After(20 * time.Second):
		}
	}
	inj := errorfs.InjectorFunc(func(op errorfs.Op) error {
		if !armed.Load() {
			return nil
		}
		mu.Lock()
		first := failedPath == "" && isSync(op.Kind) && isSegment(op.Path)
		if first {
			failedPath = op.Path
		}
		path := failedPath
		mu.Unlock()
		if first {
			once1.Do(func() { close(syncHeld) })
			wait(release1)
			mu.Lock()
			failedDone = true
			mu.Unlock()
			return syscall.EIO
		}
		if path != "" && (isWrite(op.Kind) && strings.Contains(op.Path, "/tree/") || isSync(op.Kind) && op.Path == path) {
			held := false
			once2.Do(func() { held = true; close(nextHeld) })
			if held {
				wait(release2)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if failedDone && op.Path == failedPath && isSync(op.Kind) {
			retries = append(retries, opName(op.Kind))
			return syscall.EIO
		}
		return nil
	})
	cfg := Config{FS: errorfs.Wrap(mem, inj), SegmentSize: 1 << 10, CheckpointInterval: time.Hour}
	eng := openLog(t, dir, cfg, "open")
	armed.Store(true)

	ev := func(n int) Event { return genEvent(evSpec{Stream: "patient/1", N: n, Pad: 600}) }
	p1 := eng.Log(ev(1))
	wait(syncHeld)
	p2 := eng.Log(ev(2)) // does not fit in the 1 KiB segment: the sequencer rotates
	select {
	case <-nextHeld:
	case <-time.After(2 * time.Second): // the engine did not touch the tree or the segment meanwhile
	}
	close(release1)
	deadline := time.Now().Add(20 * time.Second)
	for eng.Err() == nil && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if eng.Err() == nil {
		t.Fatal("the engine did not fail after the fsync error")
	}
	close(release2)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i, p := range []*Pending{p1, p2} {
		if r, err := p.Wait(ctx); !errors.Is(err, ErrFailed) {
			t.Errorf("event %d: receipt %+v, error %v; want ErrFailed", i+1, r, err)
		}
	}
	closeLog(t, eng, "failed engine")
	mu.Lock()
	defer mu.Unlock()
	if len(retries) > 0 {
		t.Errorf("the fsync of %s failed and the engine recorded the failure (%v), then fsynced the same file again (%v): "+
			"a failed fsync must never be retried", failedPath, eng.Err(), retries)
	}
}

// ---------------------------------------------------------------------------
// Test 4: atomic batches across torn writes.

// TestAtomicBatchTornWrites appends large atomic batches (500 events of about
// 1 KiB: each spans many 4 KiB blocks, and often more than a segment) and
// takes power-loss states that keep half of the unsynced blocks. After
// recovery every batch must be wholly present or wholly absent. In half of the
// runs the power fails while a segment fsync is held up, so that a written,
// unsynced batch is certainly torn, and four states of that moment are
// checked; some of them must hold part of a batch.
func TestAtomicBatchTornWrites(t *testing.T) {
	first := firstSeed(t)
	var gated, partial atomic.Int64
	t.Run("runs", func(t *testing.T) {
		for i := 0; i < *atomicSeeds; i++ {
			seed := first + uint64(i)
			gate := i%2 == 1
			name := fmt.Sprintf("seed=%d", seed)
			if gate {
				name += "/during-fsync"
			}
			t.Run(name, func(t *testing.T) {
				n := tornBatchRun(t, seed, gate)
				if gate {
					gated.Add(1)
					partial.Add(int64(n))
				}
			})
		}
	})
	// Each run during an fsync takes 4 states; about half of them hold part
	// of a batch. None at all means the test no longer exercises torn batches.
	if gated.Load() >= 2 && partial.Load() == 0 {
		t.Errorf("none of the power-loss states of %d runs during an fsync held part of a batch: the test no longer exercises torn batches", gated.Load())
	}
}

// tornBatchRun returns how many of its power-loss states held part of a
// batch (intact records of a batch whose end was lost) for recovery to cut.
func tornBatchRun(t *testing.T, seed uint64, gate bool) int {
	rng := rand.New(rand.NewPCG(seed, 0xba7c))
	mem := vfs.NewCrashableMem()
	const dir = "/srv/trail"
	durableDir(t, mem, dir)

	// The gate: once armed, every segment fsync is held until release, and
	// the first segment write after arming is noted, so that the power can
	// fail while a written batch is certainly not synced.
	var armed atomic.Bool
	var gmu sync.Mutex
	var wrotePath string
	var wroteAt int64
	release := make(chan struct{})
	fs := errorfs.Wrap(mem, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if armed.Load() && isSegment(op.Path) {
			if isWrite(op.Kind) {
				gmu.Lock()
				if wrotePath == "" {
					wrotePath, wroteAt = op.Path, op.Offset
				}
				gmu.Unlock()
			} else if isSync(op.Kind) {
				<-release
			}
		}
		return nil
	}))
	cfg := Config{
		FS:                 fs,
		SegmentSize:        []int64{64 << 10, 1 << 20, 8 << 20}[rng.IntN(3)],
		CheckpointInterval: 10 * time.Millisecond,
	}
	clones := 1
	if gate {
		cfg.SegmentSize = 8 << 20 // few rotations: the held fsync is the syncer's
		clones = 4                // several possible states of the same moment
	}
	l := openLog(t, dir, cfg, "open")
	w := testWorkload(t, l, fmt.Sprintf("t%d", seed))
	w.onlyBatch, w.pad = 500, 900
	w.start(2, seed)
	// Small events and batches in between; not while the fsync is held, so
	// that the held fsync is certainly one of a large batch.
	small := testWorkload(t, l, fmt.Sprintf("u%d", seed))
	if !gate {
		small.start(1, seed+1)
	}

	delay := time.Duration(5+rng.IntN(60)) * time.Millisecond
	time.Sleep(delay) // when the power fails; not an assertion
	if gate {
		armed.Store(true)
		// Wait until a segment write made after arming has landed: it
		// cannot be synced before release. (If the engine needs a new
		// segment first, it may wait for the held fsyncs instead of
		// writing; then this run crashes at an ordinary moment.)
		deadline := time.Now().Add(5 * time.Second)
		for {
			gmu.Lock()
			path, off := wrotePath, wroteAt
			gmu.Unlock()
			if path != "" {
				if st, err := mem.Stat(path); err == nil && st.Size() > off {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Logf("no segment write within 5s of holding the fsyncs")
				break
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
	n, ns := w.ackCount(), small.ackCount()
	states := make([]*vfs.MemFS, clones)
	for i := range states {
		states[i] = mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 50, RNG: rand.New(rand.NewPCG(seed, uint64(2+i)))})
	}
	before := append(w.acksUpTo(n), small.acksUpTo(ns)...)
	armed.Store(false)
	close(release)
	w.stop()
	small.stop()
	closeLog(t, l, "original engine")
	w.wait()
	small.wait()

	partial := 0
	for i, clone := range states {
		what := fmt.Sprintf("power-loss state %d", i)
		raw := checkVerify(t, clone, dir, what+": raw")
		cfg.FS = clone
		l2 := openLog(t, dir, cfg, what+": reopen")
		checkAcked(t, l2, before, what)
		nb := checkBatches(t, l2, 0, what)
		size := l2.Size()
		more := appendMore(t, l2, fmt.Sprintf("t%d", seed))
		closeLog(t, l2, what+": reopened engine")
		rep := checkVerify(t, clone, dir, what+": after recovery")
		if want := size + uint64(len(more)); rep.Events != want {
			t.Errorf("%s: Verify after recovery saw %d events, want %d", what, rep.Events, want)
		}
		if raw.Events > size {
			partial++
		}
		t.Logf("%s after %v: %d batches of 500 logged, %d events acknowledged before, %d whole batches survived; "+
			"the raw state had %d intact records, recovery kept %d; raw torn tail: %q",
			what, delay, w.nBatch.Load(), len(before), nb, raw.Events, size, raw.TornTail)
	}
	return partial
}
