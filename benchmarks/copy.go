package benchmarks

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/internal/bench"
)

// Copy appends events in batches, one COPY per batch in its own transaction,
// over a few connections at once: PostgreSQL's fastest durable bulk path, as
// an application would batch audit events itself. Log returns at once while
// a batch fills; it waits (backpressure) while every connection is busy and
// as many full batches as connections already wait for one. A batch is sent when it holds
// BatchSize events, or Linger after its first event.
type Copy struct {
	pool      *pgxpool.Pool
	batchSize int
	linger    time.Duration

	mu     sync.Mutex
	cur    *copyBatch
	closed bool
	full   chan *copyBatch
	wg     sync.WaitGroup
}

var _ bench.Appender = (*Copy)(nil)

// copyBatch is one COPY; every event in it has the same outcome.
type copyBatch struct {
	rows [][]any
	done chan struct{}
	err  error
}

// Wait implements bench.Waiter.
func (b *copyBatch) Wait(ctx context.Context) error {
	select {
	case <-b.done:
		return b.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// errCopyClosed is what Log answers after Close.
var errCopyClosed = errors.New("copy: closed")

// OpenCopy connects conns connections, each running one COPY at a time of
// batchSize events.
func OpenCopy(ctx context.Context, connString string, conns, batchSize int, linger time.Duration) (*Copy, error) {
	pool, err := openPool(ctx, connString, conns)
	if err != nil {
		return nil, err
	}
	c := &Copy{pool: pool, batchSize: batchSize, linger: linger, full: make(chan *copyBatch, conns)}
	for range conns {
		c.wg.Add(1)
		go c.worker()
	}
	return c, nil
}

func (c *Copy) worker() {
	defer c.wg.Done()
	for b := range c.full {
		_, err := c.pool.CopyFrom(context.Background(), pgx.Identifier{"events"}, columns, pgx.CopyFromRows(b.rows))
		if err != nil {
			b.err = fmt.Errorf("copy %d events: %w", len(b.rows), err)
		}
		close(b.done)
	}
}

// Log implements bench.Appender.
func (c *Copy) Log(ev trail.Event) bench.Waiter {
	r := row(ev, time.Now())
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return decided{errCopyClosed}
	}
	b := c.cur
	if b == nil {
		b = &copyBatch{rows: make([][]any, 0, c.batchSize), done: make(chan struct{})}
		c.cur = b
		time.AfterFunc(c.linger, func() { c.sendIfCurrent(b) })
	}
	b.rows = append(b.rows, r)
	if len(b.rows) < c.batchSize {
		c.mu.Unlock()
		return b
	}
	c.cur = nil
	// Send while holding mu: Close then cannot close full under a sender,
	// and callers queue behind a busy pool (backpressure).
	c.full <- b
	c.mu.Unlock()
	return b
}

// sendIfCurrent sends b when it is still filling after its linger time.
func (c *Copy) sendIfCurrent(b *copyBatch) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == b && !c.closed {
		c.cur = nil
		c.full <- b
	}
}

// Append implements bench.Appender.
func (c *Copy) Append(ctx context.Context, ev trail.Event) error {
	return c.Log(ev).Wait(ctx)
}

// Close sends the batch still filling, waits for every COPY and closes the
// connections.
func (c *Copy) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	if c.cur != nil {
		c.full <- c.cur
		c.cur = nil
	}
	close(c.full)
	c.mu.Unlock()
	c.wg.Wait()
	c.pool.Close()
}
