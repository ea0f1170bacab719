package trail

import (
	"context"
	"fmt"
	"github.com/trailhq/trail/internal/store/files"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"
)

// BenchmarkRead measures reads by index, at random, among -query.events
// stored events (as the query benchmark builds them), and one page of a
// query without filters (1,000 events, as an admin's or a backup's read),
// in time and in CPU time (cpu-ns/op, steadier on a shared machine):
//
//	go test -run '^$' -bench 'Read$|ReadPage' -count 6 -query.events=200000 .
func BenchmarkRead(b *testing.B) {
	l, n := benchReadLog(b)
	rng := rand.New(rand.NewPCG(1, 2))
	b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
		cpu := cpuTime()
		for b.Loop() {
			if _, err := l.Read(rng.Uint64N(uint64(n))); err != nil {
				b.Fatal(err)
			}
		}
		reportCPU(b, cpu)
	})
}

// BenchmarkReadPage: see BenchmarkRead.
func BenchmarkReadPage(b *testing.B) {
	l, n := benchReadLog(b)
	rng := rand.New(rand.NewPCG(1, 2))
	ctx := context.Background()
	b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
		cpu := cpuTime()
		for b.Loop() {
			after := rng.Uint64N(uint64(n - 1001))
			res, err := l.Query(ctx, Query{After: &after, Limit: 1000})
			if err != nil || len(res.Events) != 1000 {
				b.Fatalf("query: %d events, %v", len(res.Events), err)
			}
		}
		reportCPU(b, cpu)
	})
}

// cpuTime is the process's user and system CPU time. On a shared machine
// it tells the cost of an operation better than the time it took.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU time per operation since start as cpu-ns/op.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}

func benchReadLog(b *testing.B) (*Log, int) {
	n := *queryEvents
	if n < 2000 {
		b.Fatalf("-query.events=%d: want at least 2000", n)
	}
	l := openTest(b, b.TempDir(), Config{Sync: SyncNone})
	b.Cleanup(func() { closeQ(b, l) })
	qBuildPatients(b, l, n)
	if err := l.st.(*files.Store).FlushIndex(); err != nil {
		b.Fatal(err)
	}
	return l, n
}

// BenchmarkLeafHash measures the hash of a typical stored event, which
// every read now computes to compare with the tree's leaf.
func BenchmarkLeafHash(b *testing.B) {
	rec := []byte(`{"id":"0193b6a2-7c1e-7000-8000-000000000001","index":123456,"stream":"patient/p12345","stream_seq":17,` +
		`"recorded":"2026-12-07T08:00:00.123456789Z","time":"2026-12-07T08:00:00.123456789Z","type":"patient-record.read",` +
		`"action":"R","outcome":"success","actor":{"id":"dr-417","role":"physician"},"patient":"p12345",` +
		`"prev":"6a705cf68f5aaff320ed288f394d65d23f02c0b16a7c00be4eb760fc2a2db8f9"}`)
	b.SetBytes(int64(len(rec)))
	for b.Loop() {
		LeafHash(rec)
	}
}
