package benchmarks

import (
	"context"
	"errors"
	"fmt"
	"github.com/trailhq/trail/internal/pgtest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/trailhq/trail/internal/bench"
)

// One cluster for the whole test binary, started on first use.
var shared struct {
	once sync.Once
	c    *Cluster
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.c != nil {
		if err := shared.c.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop PostgreSQL:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// cluster returns the shared cluster, skipping only when no PostgreSQL
// binaries are installed.
func cluster(tb testing.TB) *Cluster {
	tb.Helper()
	if err := pgtest.Installed(); err != nil {
		tb.Skipf("PostgreSQL is not installed: %v", err)
	}
	shared.once.Do(func() { shared.c, shared.err = StartCluster(context.Background(), ClusterConfig{}) })
	if shared.err != nil {
		tb.Fatal(shared.err)
	}
	return shared.c
}

func TestInsertStoresEveryField(t *testing.T) {
	c := cluster(t)
	ctx := context.Background()
	tbl, err := resetTable(ctx, c.ConnString())
	if err != nil {
		t.Fatal(err)
	}
	ins, err := bench.OpenPGInsert(ctx, tbl, 8)
	if err != nil {
		t.Fatal(err)
	}
	w := bench.Workload{Events: 400, Size: 300, Producers: 8, Streams: 10}
	if _, err := bench.Run(ctx, ins, w); err != nil {
		t.Fatal(err)
	}
	ins.Close()
	assertStored(t, c, w.Events)

	conn, err := pgx.Connect(ctx, c.ConnString())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var id, stream, typ, action, outcome, actor, patient, note string
	err = conn.QueryRow(ctx, `SELECT id, stream, type, action, outcome, actor_id, patient, details->>'note'
		FROM events WHERE stream = 'patient/3' AND actor_id = 'dr-3'`). // event 3 alone: producers commit in any order
		Scan(&id, &stream, &typ, &action, &outcome, &actor, &patient, &note)
	if err != nil {
		t.Fatal(err)
	}
	ev := bench.Events(4, 300, 10)[3]
	if len(id) != 36 || id[14] != '7' || stream != ev.Stream || typ != ev.Type || action != ev.Action ||
		outcome != "success" || actor != ev.Actor.ID || patient != ev.Patient || !strings.HasPrefix(note, "xxx") {
		t.Errorf("stored row (%s, %s, %s, %s, %s, %s, %s, %d-byte note) does not match %+v",
			id, stream, typ, action, outcome, actor, patient, len(note), ev)
	}
}

func TestCopyStoresEveryBatchAndTheTail(t *testing.T) {
	c := cluster(t)
	ctx := context.Background()
	tbl, err := resetTable(ctx, c.ConnString())
	if err != nil {
		t.Fatal(err)
	}
	cp, err := bench.OpenPGCopy(ctx, tbl, 2, 100, 5*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	// 1050 events: ten full batches, and a tail of 50 sent by its linger.
	w := bench.Workload{Events: 1050, Size: 300, Async: true}
	if _, err := bench.Run(ctx, cp, w); err != nil {
		t.Fatal(err)
	}
	// Producers waiting each for its event are served by the linger alone.
	w = bench.Workload{Events: 30, Size: 300, Producers: 3}
	if _, err := bench.Run(ctx, cp, w); err != nil {
		t.Fatal(err)
	}
	cp.Close()
	assertStored(t, c, 1080)
	if err := cp.Log(bench.Events(1, 300, 1)[0]).Wait(ctx); !errors.Is(err, bench.ErrPGCopyClosed) {
		t.Errorf("Log after Close: %v, want %v", err, bench.ErrPGCopyClosed)
	}
}

func assertStored(t *testing.T, c *Cluster, want int) {
	t.Helper()
	n, err := bench.OpenPGTable(c.ConnString(), eventsTable).Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(want) {
		t.Errorf("%d rows stored, want %d", n, want)
	}
}

// Go benchmarks of each mode, b.N events a run, for benchstat:
//
//	go test -run '^$' -bench . -benchtime 20000x -count 6 | tee new.txt
func BenchmarkPostgresInsert64(b *testing.B) {
	benchPostgres(b, bench.Workload{Producers: 64}, func(ctx context.Context, t *bench.PGTable) (bench.Appender, func(), error) {
		a, err := bench.OpenPGInsert(ctx, t, 64)
		if err != nil {
			return nil, nil, err
		}
		return a, a.Close, nil
	})
}

func BenchmarkPostgresCopyBatched(b *testing.B) {
	benchPostgres(b, bench.Workload{Async: true}, func(ctx context.Context, t *bench.PGTable) (bench.Appender, func(), error) {
		a, err := bench.OpenPGCopy(ctx, t, 4, 1000, 5*time.Millisecond)
		if err != nil {
			return nil, nil, err
		}
		return a, a.Close, nil
	})
}

func BenchmarkTrailHTTP64(b *testing.B) {
	benchTrail(b, bench.Workload{Producers: 64}, true)
}

func BenchmarkTrailHTTPBatched(b *testing.B) {
	benchTrail(b, bench.Workload{Async: true}, true)
}

func BenchmarkTrailEmbedded64(b *testing.B) {
	benchTrail(b, bench.Workload{Producers: 64}, false)
}

func BenchmarkTrailEmbeddedBatched(b *testing.B) {
	benchTrail(b, bench.Workload{Async: true}, false)
}

func benchPostgres(b *testing.B, w bench.Workload, open func(context.Context, *bench.PGTable) (bench.Appender, func(), error)) {
	c := cluster(b)
	ctx := context.Background()
	t, err := resetTable(ctx, c.ConnString())
	if err != nil {
		b.Fatal(err)
	}
	a, close, err := open(ctx, t)
	if err != nil {
		b.Fatal(err)
	}
	defer close()
	runBench(b, a, w)
}

func benchTrail(b *testing.B, w bench.Workload, overHTTP bool) {
	ctx := context.Background()
	var s trailSide
	var err error
	if overHTTP {
		lanes := 1
		if w.Async {
			lanes = 4
		}
		s, err = openHTTP(ctx, "", lanes)
	} else {
		s, err = openEmbedded("")
	}
	if err != nil {
		b.Fatal(err)
	}
	defer s.stop(ctx)
	runBench(b, s.a, w)
}

func runBench(b *testing.B, a bench.Appender, w bench.Workload) {
	w.Events, w.Size = b.N, 300
	b.ResetTimer()
	r, err := bench.Run(context.Background(), a, w)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(r.EventsPerSec, "events/s")
	b.ReportMetric(r.AckP50ms, "p50-ms")
	b.ReportMetric(r.AckP99ms, "p99-ms")
}

// TestCompare runs every system of the comparison, Trail on PostgreSQL
// included, with small counts: each row is measured, each ratio paired.
func TestCompare(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of its own")
	}
	if err := pgtest.Installed(); err != nil {
		t.Fatalf("PostgreSQL is not installed: %v", err)
	}
	cfg := Config{Events: 2000, InsertEvents: 500, Producers: 8, CopyBatch: 200, Runs: 2, Embedded: true, OnPostgres: true, SkipHTTP: !httpAvailable}
	rep, err := Compare(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	systems := 3 // postgresql, trail embedded, trail on pg embedded
	if httpAvailable {
		systems = 5
	}
	if len(rep.Rows) != 2*systems || len(rep.Ratios) != 2*(systems-1) {
		t.Fatalf("%d rows and %d ratios, want %d and %d", len(rep.Rows), len(rep.Ratios), 2*systems, 2*(systems-1))
	}
	for _, r := range rep.Rows {
		if r.Runs != 2 || r.EventsPerSec <= 0 || r.AckP99ms < r.AckP50ms {
			t.Errorf("row %+v", r)
		}
	}
	var b strings.Builder
	if err := WriteTable(&b, rep); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"trail / postgresql, batched", "trail on pg / postgresql, batched", "trail on pg embedded / postgresql, p=8"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table has no %q ratio:\n%s", want, b.String())
		}
	}
}
