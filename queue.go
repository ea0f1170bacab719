package trail

import (
	"context"
	"sync"
)

// queue is the bounded hand-off between callers and the sequencer. Callers
// append under a mutex; the sequencer takes what is queued at once, so a batch
// is whatever arrived while the previous one was being written: group commit
// without timers or polling.
//
// Items are grouped as they arrive; a group (one channel) is resolved by
// exactly one batch, and a batch takes whole groups. The sequencer bounds a
// batch by the bytes its records will take (estimated as items are put), so
// a group is bounded in bytes too.
type queue struct {
	mu            sync.Mutex
	items         []*Pending
	groups        []queuedGroup // groups of items, in order; the last is open
	groupMax      int           // events per group
	groupMaxBytes int           // estimated record bytes per group
	used          int           // events queued or in flight, not yet resolved
	limit         int           // bound on used
	room          chan struct{} // closed when room is freed, then replaced
	closed        bool
	stopErr       error         // why the queue is closed
	kick          chan struct{} // capacity 1: "the queue became non-empty"
	failed        *group        // an already-closed group for refusals
}

type queuedGroup struct {
	g      *group
	end    int // items[..end] belong to this or an earlier group
	events int
	bytes  int // estimated bytes of its records (Pending.storedBytes)
}

func newQueue(limit, groupMax, groupMaxBytes int) *queue {
	q := &queue{
		limit:         limit,
		groupMax:      groupMax,
		groupMaxBytes: groupMaxBytes,
		room:          make(chan struct{}),
		kick:          make(chan struct{}, 1),
		failed:        &group{done: make(chan struct{})},
	}
	close(q.failed.done)
	return q
}

// put enqueues p. With wait, it waits under ctx for room when the queue is
// full; otherwise it returns ErrBufferFull.
func (q *queue) put(ctx context.Context, p *Pending, wait bool) error {
	n, bytes := p.size(), p.storedBytes()
	q.mu.Lock()
	for {
		if q.closed {
			err := q.stopErr
			q.mu.Unlock()
			return err
		}
		if q.used+n <= q.limit || q.used == 0 {
			break
		}
		if !wait {
			q.mu.Unlock()
			return ErrBufferFull
		}
		room := q.room
		q.mu.Unlock()
		select {
		case <-room:
		case <-ctx.Done():
			return ctx.Err()
		}
		q.mu.Lock()
	}
	q.used += n
	last := len(q.groups) - 1
	if last < 0 || q.groups[last].events >= q.groupMax || q.groups[last].bytes >= q.groupMaxBytes {
		q.groups = append(q.groups, queuedGroup{g: &group{done: make(chan struct{})}})
		last++
	}
	qg := &q.groups[last]
	p.g = qg.g
	q.items = append(q.items, p)
	qg.end = len(q.items)
	qg.events += n
	qg.bytes += bytes
	first := len(q.items) == 1
	q.mu.Unlock()
	if first {
		select {
		case q.kick <- struct{}{}:
		default:
		}
	}
	return nil
}

// refuse resolves p at once with err.
func (q *queue) refuse(p *Pending, err error) {
	p.err = err
	p.g = q.failed
}

// take appends to dst the items of the oldest groups, at least one group and
// at most maxBytes (estimated record bytes) beyond the first, and appends
// their groups to gs; n is the bytes taken.
func (q *queue) take(dst []*Pending, gs []*group, maxBytes int) (_ []*Pending, _ []*group, n int) {
	return q.takeGroups(dst, gs, maxBytes, true)
}

// topUp is take without the first group beyond maxBytes: it may take
// nothing.
func (q *queue) topUp(dst []*Pending, gs []*group, maxBytes int) ([]*Pending, []*group, int) {
	return q.takeGroups(dst, gs, maxBytes, false)
}

func (q *queue) takeGroups(dst []*Pending, gs []*group, maxBytes int, first bool) ([]*Pending, []*group, int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	bytes, k := 0, 0
	for k < len(q.groups) && (first && k == 0 || bytes+q.groups[k].bytes <= maxBytes) {
		bytes += q.groups[k].bytes
		gs = append(gs, q.groups[k].g)
		k++
	}
	if k == 0 {
		return dst, gs, 0
	}
	end := q.groups[k-1].end
	dst = append(dst, q.items[:end]...)
	n := copy(q.items, q.items[end:])
	clear(q.items[n:])
	q.items = q.items[:n]
	m := copy(q.groups, q.groups[k:])
	q.groups = q.groups[:m]
	for i := range q.groups {
		q.groups[i].end -= end
	}
	if len(q.items) > 0 {
		select {
		case q.kick <- struct{}{}:
		default:
		}
	}
	return dst, gs, bytes
}

// release frees room for n events.
func (q *queue) release(n int) {
	q.mu.Lock()
	q.used -= n
	close(q.room)
	q.room = make(chan struct{})
	q.mu.Unlock()
}

// close stops accepting items; later puts fail with err.
func (q *queue) close(err error) {
	q.mu.Lock()
	if !q.closed {
		q.closed, q.stopErr = true, err
	}
	q.mu.Unlock()
}
