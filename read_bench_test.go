package trail

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkRead measures reads by index, at random, among -query.events
// stored events (as the query benchmark builds them), and one page of a
// query without filters (1,000 events, as an admin's or a backup's read):
//
//	go test -run '^$' -bench 'Read$|ReadPage' -count 6 -query.events=200000 .
func BenchmarkRead(b *testing.B) {
	l, n := benchReadLog(b)
	rng := rand.New(rand.NewPCG(1, 2))
	b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
		for b.Loop() {
			if _, err := l.Read(rng.Uint64N(uint64(n))); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkReadPage: see BenchmarkRead.
func BenchmarkReadPage(b *testing.B) {
	l, n := benchReadLog(b)
	rng := rand.New(rand.NewPCG(1, 2))
	ctx := context.Background()
	b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
		for b.Loop() {
			after := rng.Uint64N(uint64(n - 1001))
			res, err := l.Query(ctx, Query{After: &after, Limit: 1000})
			if err != nil || len(res.Events) != 1000 {
				b.Fatalf("query: %d events, %v", len(res.Events), err)
			}
		}
	})
}

func benchReadLog(b *testing.B) (*Log, int) {
	n := *queryEvents
	if n < 2000 {
		b.Fatalf("-query.events=%d: want at least 2000", n)
	}
	l := openTest(b, b.TempDir(), Config{Sync: SyncNone})
	b.Cleanup(func() { closeQ(b, l) })
	qBuildPatients(b, l, n)
	if err := l.idx.Flush(); err != nil {
		b.Fatal(err)
	}
	return l, n
}
