package trail

import (
	"context"
	"sync"
	"sync/atomic"
)

// A watermark is a count of events that only grows, published by one stage
// of the pipeline for the others: durable (fsynced and acknowledged, set by
// the syncer) and applied (reflected in the index store, set by the
// indexer). Readers load it without a lock; waiters block on a condition
// (a goroutine of the pipeline) or a channel (a caller with a context).
type watermark struct {
	n    atomic.Uint64
	mu   sync.Mutex
	cond sync.Cond // on mu: broadcast at every advance and wake
	note notifier  // notified at every advance and wake
}

func newWatermark(n uint64) *watermark {
	w := &watermark{}
	w.cond.L = &w.mu
	w.n.Store(n)
	return w
}

// load is the watermark now.
func (w *watermark) load() uint64 { return w.n.Load() }

// advance publishes n, unless the watermark is past it already, and wakes
// every waiter. A store that follows other processes' commits raises both
// watermarks to the log's length while this process's own earlier batch
// may still be on its way through the syncer and the indexer: their later
// advance to that batch's end must not lower the mark, or a reader waiting
// for applied to reach durable would wait until the next append.
func (w *watermark) advance(n uint64) {
	w.mu.Lock()
	if n > w.n.Load() {
		w.n.Store(n)
	}
	w.mu.Unlock()
	w.cond.Broadcast()
	w.note.notify()
}

// wake wakes every waiter without a change, so that they look again at
// what else ends their wait (a failure, a close).
func (w *watermark) wake() {
	w.mu.Lock()
	w.mu.Unlock() // a waiter between its check and its Wait is inside mu
	w.cond.Broadcast()
	w.note.notify()
}

// await blocks until the watermark reaches n, or stop returns an error
// (checked at every wake), for goroutines of the pipeline.
func (w *watermark) await(n uint64, stop func() error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.n.Load() < n {
		if err := stop(); err != nil {
			return err
		}
		w.cond.Wait()
	}
	return nil
}

// waitPast waits until the watermark is past n (above it when above is
// set, else at least n) and returns it; or returns stop's error (checked at
// every wake), errDone once done is closed, or ctx's error.
func (w *watermark) waitPast(ctx context.Context, n uint64, above bool, stop func() error, done <-chan struct{}, errDone error) (uint64, error) {
	reached := func(v uint64) bool { return v > n || !above && v == n }
	for {
		ch := w.note.wait()
		if v := w.n.Load(); reached(v) {
			return v, nil
		}
		if err := stop(); err != nil {
			return 0, err
		}
		select {
		case <-ch:
		case <-done:
			if v := w.n.Load(); reached(v) {
				return v, nil
			}
			return 0, errDone
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}
