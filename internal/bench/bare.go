package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/internal/segment"
)

// Bare is the baseline: the least a durable group-commit log can do. One
// goroutine takes everything queued, writes it with one write, fdatasyncs
// once and acknowledges all of it. No validation, ids, hashing or index.
type Bare struct {
	f       *os.File
	mu      sync.Mutex
	queue   []bareItem
	kick    chan struct{}
	closed  bool
	done    chan struct{}
	durable bool
}

type bareItem struct {
	rec  []byte
	done chan error
}

// OpenBare starts a bare writer on a new file in dir.
func OpenBare(dir string, durable bool) (*Bare, error) {
	f, err := os.Create(filepath.Join(dir, "bare.log"))
	if err != nil {
		return nil, err
	}
	b := &Bare{f: f, kick: make(chan struct{}, 1), done: make(chan struct{}), durable: durable}
	go b.run()
	return b, nil
}

func (b *Bare) run() {
	defer close(b.done)
	var buf []byte
	var batch []bareItem
	for range b.kick {
		b.mu.Lock()
		batch, b.queue = b.queue, batch[:0]
		closed := b.closed
		b.mu.Unlock()
		if len(batch) > 0 {
			buf = buf[:0]
			for _, it := range batch {
				buf = segment.AppendFrame(buf, it.rec, false)
			}
			_, err := b.f.Write(buf)
			if err == nil && b.durable {
				err = b.f.Sync()
			}
			for _, it := range batch {
				it.done <- err
			}
		}
		if closed {
			return
		}
	}
}

// Close stops the writer and removes nothing (the file stays in its dir).
func (b *Bare) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	select {
	case b.kick <- struct{}{}:
	default:
	}
	<-b.done
	return b.f.Close()
}

var spaces = []byte(fmt.Sprintf("%*s", serverOverhead, ""))

type bareWaiter chan error

func (w bareWaiter) Wait(ctx context.Context) error {
	select {
	case err := <-w:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Log implements Appender: the event is encoded as JSON (as a minimal log
// would), queued, and acknowledged after the batch's fsync.
func (b *Bare) Log(ev trail.Event) Waiter {
	rec, err := json.Marshal(ev)
	// Pad to the size Trail stores (it adds index, stream_seq, recorded, prev).
	rec = append(rec, spaces[:serverOverhead]...)
	ch := make(chan error, 1)
	if err != nil {
		ch <- err
		return bareWaiter(ch)
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		ch <- errors.New("bare: closed")
		return bareWaiter(ch)
	}
	b.queue = append(b.queue, bareItem{rec: rec, done: ch})
	first := len(b.queue) == 1
	b.mu.Unlock()
	if first {
		select {
		case b.kick <- struct{}{}:
		default:
		}
	}
	return bareWaiter(ch)
}

// Append implements Appender.
func (b *Bare) Append(ctx context.Context, ev trail.Event) error {
	if err := b.Log(ev).Wait(ctx); err != nil {
		return fmt.Errorf("bare: %w", err)
	}
	return nil
}

// Naive is the other reference: what an application might write first. Each
// Log takes a mutex, encodes the event with encoding/json and writes it with
// one write call: no batching and no fsync, so nothing it acknowledges is
// durable.
type Naive struct {
	mu     sync.Mutex
	f      *os.File
	closed bool
}

// OpenNaive starts a naive writer on a new file in dir.
func OpenNaive(dir string) (*Naive, error) {
	f, err := os.Create(filepath.Join(dir, "naive.log"))
	if err != nil {
		return nil, err
	}
	return &Naive{f: f}, nil
}

// doneWaiter is an acknowledgement given at once.
type doneWaiter struct{ err error }

func (w doneWaiter) Wait(context.Context) error { return w.err }

// Log implements Appender: the event is written before Log returns.
func (n *Naive) Log(ev trail.Event) Waiter {
	rec, err := json.Marshal(ev)
	if err != nil {
		return doneWaiter{err}
	}
	rec = append(append(rec, spaces[:serverOverhead]...), '\n')
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return doneWaiter{errors.New("naive: closed")}
	}
	_, err = n.f.Write(rec)
	return doneWaiter{err}
}

// Append implements Appender.
func (n *Naive) Append(ctx context.Context, ev trail.Event) error {
	if err := n.Log(ev).Wait(ctx); err != nil {
		return fmt.Errorf("naive: %w", err)
	}
	return nil
}

// Close stops the writer (the file stays in its dir).
func (n *Naive) Close() error {
	n.mu.Lock()
	n.closed = true
	n.mu.Unlock()
	return n.f.Close()
}
