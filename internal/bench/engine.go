package bench

import (
	"context"

	"github.com/trailhq/trail"
)

// Engine adapts the embedded engine to Appender. Log waits for room in the
// queue (Enqueue), so that an async run larger than the queue applies
// backpressure instead of failing.
type Engine struct{ L *trail.Log }

type pendingWaiter struct {
	p   *trail.Pending
	err error
}

func (w pendingWaiter) Wait(ctx context.Context) error {
	if w.err != nil {
		return w.err
	}
	_, err := w.p.Wait(ctx)
	return err
}

// Log implements Appender.
func (e Engine) Log(ev trail.Event) Waiter {
	p, err := e.L.Enqueue(context.Background(), ev)
	return pendingWaiter{p, err}
}

// Append implements Appender.
func (e Engine) Append(ctx context.Context, ev trail.Event) error {
	_, err := e.L.Append(ctx, ev)
	return err
}
