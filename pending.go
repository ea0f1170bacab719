package trail

import (
	"context"

	"github.com/trailhq/trail/event"
)

// Pending is an event handed to Log: a receipt to come. Wait for it, or
// ignore it; the event is stored either way unless the engine says why not.
type Pending struct {
	ev    Event
	batch *batchReq // set for an atomic batch; ev is then unused
	g     *group

	prep *prepared // set by Append, which prepares in the caller; else nil

	// Set by the engine before g.done is closed.
	r   Receipt
	dup bool
	err error
}

// batchReq is an atomic batch: all of its events are stored or none.
type batchReq struct {
	evs      []Event
	preps    []prepared
	receipts []Receipt
	dups     []bool
}

// group is the unit of notification: the events taken from the queue in one
// go share one channel, closed when all of them are resolved.
type group struct {
	done chan struct{}
}

// Wait blocks until the event is durable and returns its receipt, or returns
// why it was not stored. It returns ctx.Err() if ctx ends first (the event may
// still be stored).
func (p *Pending) Wait(ctx context.Context) (Receipt, error) {
	select {
	case <-p.g.done:
		return p.r, p.err
	default:
	}
	select {
	case <-p.g.done:
		return p.r, p.err
	case <-ctx.Done():
		return Receipt{}, ctx.Err()
	}
}

// Done returns a channel closed when the outcome is known.
func (p *Pending) Done() <-chan struct{} { return p.g.done }

// Duplicate reports, once resolved, whether the receipt is that of an earlier
// event with the same id (the event was not stored again).
func (p *Pending) Duplicate() bool {
	<-p.g.done
	return p.dup
}

// storedBytes estimates the bytes p's records take in a group-commit write.
func (p *Pending) storedBytes() int {
	if p.batch != nil {
		n := 0
		for i := range p.batch.evs {
			n += event.StoredSizeHint(&p.batch.evs[i])
		}
		return n
	}
	if p.prep != nil {
		return p.prep.StoredSizeHint()
	}
	return event.StoredSizeHint(&p.ev)
}

func (p *Pending) size() int {
	if p.batch != nil {
		return len(p.batch.evs)
	}
	return 1
}

// BatchPending is an atomic batch handed to the engine.
type BatchPending struct{ p *Pending }

// Wait returns the batch's receipts in order once all are durable, or the
// reason none of it was stored.
func (b BatchPending) Wait(ctx context.Context) ([]Receipt, error) {
	if _, err := b.p.Wait(ctx); err != nil {
		return nil, err
	}
	return b.p.batch.receipts, nil
}

// Duplicates reports, once resolved, which receipts belong to events stored
// earlier with the same id.
func (b BatchPending) Duplicates() []bool {
	<-b.p.g.done
	return b.p.batch.dups
}

// NewPending returns a Pending whose outcome is decided outside the engine,
// and the function that decides it; call settle exactly once. The remote
// client (package client) uses it so that it and the engine hand out the same
// receipts and satisfy one Appender interface.
func NewPending() (p *Pending, settle func(r Receipt, duplicate bool, err error)) {
	p = &Pending{g: &group{done: make(chan struct{})}}
	return p, func(r Receipt, duplicate bool, err error) {
		p.r, p.dup, p.err = r, duplicate, err
		close(p.g.done)
	}
}
