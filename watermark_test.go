package trail

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// TestWatermark: waiters on a condition and on a channel are woken by an
// advance that reaches them, not by one that does not; a wake lets them see
// a failure; a closed done channel and a context end a channel wait.
func TestWatermark(t *testing.T) {
	w := newWatermark(3)
	var failed atomic.Pointer[error]
	stop := func() error {
		if e := failed.Load(); e != nil {
			return *e
		}
		return nil
	}
	if err := w.await(3, stop); err != nil {
		t.Fatalf("await of a reached mark: %v", err)
	}
	if v, err := w.waitPast(context.Background(), 3, false, stop, nil, nil); v != 3 || err != nil {
		t.Fatalf("waitPast(3, at least) at 3: %d %v", v, err)
	}

	awaited := make(chan error, 1)
	go func() { awaited <- w.await(10, stop) }()
	past := make(chan uint64, 1)
	go func() {
		v, _ := w.waitPast(context.Background(), 9, true, stop, nil, nil)
		past <- v
	}()
	w.advance(9)
	select {
	case err := <-awaited:
		t.Fatalf("await(10) returned at 9: %v", err)
	case v := <-past:
		t.Fatalf("waitPast(above 9) returned at %d", v)
	case <-time.After(50 * time.Millisecond):
	}
	w.advance(10)
	if err := <-awaited; err != nil {
		t.Fatalf("await(10) at 10: %v", err)
	}
	if v := <-past; v != 10 {
		t.Fatalf("waitPast(above 9) returned %d, want 10", v)
	}

	// A failure, made known by a wake, ends both kinds of wait.
	boom := errors.New("disk gone")
	go func() { awaited <- w.await(11, stop) }()
	errs := make(chan error, 1)
	go func() {
		_, err := w.waitPast(context.Background(), 11, false, stop, nil, nil)
		errs <- err
	}()
	time.Sleep(20 * time.Millisecond)
	failed.Store(&boom)
	w.wake()
	if err := <-awaited; err != boom {
		t.Fatalf("await after a failure: %v", err)
	}
	if err := <-errs; err != boom {
		t.Fatalf("waitPast after a failure: %v", err)
	}
	failed.Store(nil)

	// done and the context.
	done := make(chan struct{})
	closed := errors.New("closed")
	go func() {
		_, err := w.waitPast(context.Background(), 20, false, stop, done, closed)
		errs <- err
	}()
	close(done)
	if err := <-errs; err != closed {
		t.Fatalf("waitPast after done: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := w.waitPast(ctx, 20, false, stop, nil, nil); err != context.DeadlineExceeded {
		t.Fatalf("waitPast past its context: %v", err)
	}
}

// TestWatermarkNeverLowers: an advance below the mark (a process's own
// batch applied after a followed commit of another process raised the mark)
// leaves it where it is, so that a reader waiting for it to reach another
// mark is not left waiting for the next append.
func TestWatermarkNeverLowers(t *testing.T) {
	durable, applied := newWatermark(0), newWatermark(0)
	durable.advance(10) // this process's batch [0, 10) is durable
	durable.advance(12) // another process's commit is followed
	applied.advance(12)
	applied.advance(10) // the indexer applies this process's batch
	if v := applied.load(); v != 12 {
		t.Fatalf("applied lowered to %d, want 12", v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if v, err := applied.waitPast(ctx, durable.load(), false, func() error { return nil }, nil, nil); v != 12 || err != nil {
		t.Fatalf("a reader waiting for applied to reach durable: %d %v", v, err)
	}
}
