package bench

import (
	"context"

	"github.com/trailhq/trail"
)

// Engine adapts the embedded engine or the remote client to Appender. Log
// waits for room (Enqueue), so that an async run larger than the buffer
// applies backpressure instead of failing.
type Engine struct{ L Enqueuer }

// Enqueuer is what the engine (*trail.Log) and the client (*client.Client)
// both offer.
type Enqueuer interface {
	Enqueue(ctx context.Context, ev trail.Event) (*trail.Pending, error)
	Append(ctx context.Context, ev trail.Event) (trail.Receipt, error)
}

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
