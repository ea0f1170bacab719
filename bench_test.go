package trail_test

import (
	"context"
	"sync"
	"testing"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/internal/bench"
)

// Benchmarks of the write path. Compare runs with benchstat, e.g.
//
//	go test -run '^$' -bench 'Append|Bare|Async|LogCall' -count 6 . | tee new.txt
//	benchstat old.txt new.txt
//
// BenchmarkBareWriter* is the baseline: one goroutine that writes and
// fdatasyncs what is queued and acknowledges it, with nothing else.

const benchSize = 300

func openBench(b *testing.B, cfg trail.Config) *trail.Log {
	b.Helper()
	l, err := trail.Open(b.TempDir(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close(context.Background()) })
	return l
}

// runProducers runs b.N appends from p goroutines, each waiting for its
// acknowledgement, and reports events/s.
func runProducers(b *testing.B, a bench.Appender, p int) {
	evs := bench.Events(4096, benchSize, 1000)
	ctx := context.Background()
	var wg sync.WaitGroup
	var next sync.Mutex
	i := 0
	b.ResetTimer()
	for w := 0; w < p; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				next.Lock()
				n := i
				i++
				next.Unlock()
				if n >= b.N {
					return
				}
				if err := a.Append(ctx, evs[n%len(evs)]); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkAppend64(b *testing.B) {
	runProducers(b, bench.Engine{L: openBench(b, trail.Config{})}, 64)
}

func BenchmarkBareWriter64(b *testing.B) {
	bw, err := bench.OpenBare(b.TempDir(), true)
	if err != nil {
		b.Fatal(err)
	}
	defer bw.Close()
	runProducers(b, bw, 64)
}

// runAsync logs b.N events from one goroutine without waiting, then waits
// for every receipt.
func runAsync(b *testing.B, a bench.Appender) {
	evs := bench.Events(4096, benchSize, 1000)
	ctx := context.Background()
	ws := make([]bench.Waiter, b.N)
	b.ResetTimer()
	for i := range ws {
		ws[i] = a.Log(evs[i%len(evs)])
	}
	for _, w := range ws {
		if err := w.Wait(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkAsync(b *testing.B) {
	runAsync(b, bench.Engine{L: openBench(b, trail.Config{QueueSize: 1 << 24})})
}

func BenchmarkBareWriterAsync(b *testing.B) {
	bw, err := bench.OpenBare(b.TempDir(), true)
	if err != nil {
		b.Fatal(err)
	}
	defer bw.Close()
	runAsync(b, bw)
}

// BenchmarkLogCall measures what Log costs its caller (it never waits for
// the disk). The queue is large enough that no call is refused.
func BenchmarkLogCall(b *testing.B) {
	l := openBench(b, trail.Config{QueueSize: 1 << 26})
	evs := bench.Events(1024, benchSize, 1000)
	var mu sync.Mutex
	var all []*trail.Pending
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ps := make([]*trail.Pending, 0, 1<<16)
		i := 0
		for pb.Next() {
			ps = append(ps, l.Log(evs[i&1023]))
			i++
		}
		mu.Lock()
		all = append(all, ps...)
		mu.Unlock()
	})
	b.StopTimer()
	for _, p := range all {
		if _, err := p.Wait(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}
