package client_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/client"
)

// BenchmarkLog measures the cost of one Log call: validation, room and the
// hand-off to a lane. Batch requests wait at a gate while the clock runs, so
// that sending does not compete for the CPU; BenchmarkLogWhileSending lets
// them through.
func BenchmarkLog(b *testing.B) {
	benchLog(b, true)
}

// BenchmarkLogWhileSending measures Log while the lanes send to a real
// server in the same process.
func BenchmarkLogWhileSending(b *testing.B) {
	benchLog(b, false)
}

func benchLog(b *testing.B, gated bool) {
	s := newTestServer(b)
	c := s.client(client.WithMaxBuffered(1 << 20))
	evs := make([]trail.Event, 1024)
	for i := range evs {
		evs[i] = event(fmt.Sprintf("patient/%d", i%100), i%7, i)
	}
	g := newGate()
	if gated {
		s.setHook(g.hook)
	}
	flush := func() {
		g.release()
		if err := c.Flush(context.Background()); err != nil {
			b.Fatal(err)
		}
		if gated {
			g = newGate()
			s.setHook(g.hook)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.Log(evs[i%len(evs)])
		if i%4096 == 4095 {
			b.StopTimer()
			flush()
			b.StartTimer()
		}
	}
	b.StopTimer()
	flush()
}

// BenchmarkProducers measures events/s end to end (fsync on every batch):
// closed-loop producers, each waiting for its receipt, for several linger
// settings, and one producer logging without waiting.
func BenchmarkProducers(b *testing.B) {
	for _, linger := range []time.Duration{0, time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond} {
		for _, producers := range []int{1, 64} {
			b.Run(fmt.Sprintf("linger=%v/producers=%d", linger, producers), func(b *testing.B) {
				benchProducers(b, producers, client.WithLinger(linger))
			})
		}
		b.Run(fmt.Sprintf("linger=%v/async", linger), func(b *testing.B) {
			s := newTestServer(b)
			c := s.client(client.WithLinger(linger))
			ev := event("patient/1", 0, 0)
			start := time.Now()
			ps := make([]*trail.Pending, b.N)
			for i := range ps {
				ev.Stream = fmt.Sprintf("patient/%d", i%1000)
				if ps[i], _ = c.Enqueue(context.Background(), ev); ps[i] == nil {
					b.Fatal("enqueue failed")
				}
			}
			waitAll(b, ps)
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
		})
	}
}

func benchProducers(b *testing.B, producers int, opts ...client.Option) {
	s := newTestServer(b)
	c := s.client(opts...)
	var wg sync.WaitGroup
	start := time.Now()
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ev := event(fmt.Sprintf("patient/%d", p), p, 0)
			for i := p; i < b.N; i += producers {
				if _, err := c.Append(context.Background(), ev); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}

// BenchmarkSpool compares end to end (fsync on every batch on the server,
// and on every spool batch) a client holding events in memory with one
// spooling them: one caller logging without waiting, then 64 producers
// each waiting for its receipt.
func BenchmarkSpool(b *testing.B) {
	for _, mode := range []string{"memory", "spool", "spool-ack"} {
		opts := func(b *testing.B) []client.Option {
			switch mode {
			case "spool":
				return []client.Option{client.WithSpool(b.TempDir(), 1<<30)}
			case "spool-ack":
				return []client.Option{client.WithSpool(b.TempDir(), 1<<30), client.WithSpoolAck()}
			}
			return []client.Option{client.WithMaxBuffered(1 << 22)}
		}
		b.Run("async/"+mode, func(b *testing.B) {
			s := newTestServer(b)
			c := s.client(opts(b)...)
			ev := event("patient/1", 0, 0)
			start := time.Now()
			ps := make([]*trail.Pending, b.N)
			for i := range ps {
				ev.Stream = fmt.Sprintf("patient/%d", i%1000)
				ps[i] = c.Log(ev)
			}
			if err := c.Flush(context.Background()); err != nil {
				b.Fatal(err)
			}
			waitAll(b, ps)
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
		})
		if mode != "spool-ack" {
			b.Run("producers=64/"+mode, func(b *testing.B) {
				benchProducers(b, 64, opts(b)...)
			})
		}
	}
}
