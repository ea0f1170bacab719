package client

import (
	"context"
	"sync"
	"time"

	"github.com/trailhq/trail"
)

// settleFunc resolves one Pending (trail.NewPending).
type settleFunc = func(r trail.Receipt, duplicate bool, err error)

// item is one event held by a lane, with the Pending it resolves.
type item struct {
	ev     trail.Event
	settle settleFunc
	done   bool // resolved: not sent again
}

func (it *item) resolve(r trail.Receipt, err error) {
	it.settle(r, false, err)
	it.done = true
}

// lane carries the events of the streams that hash to it, one request at a
// time, so that a stream's events are stored in the order they were logged:
// a batch is retried until it is resolved before anything after it is sent.
//
// Producers append to queue under mu. The lane goroutine takes the whole
// queue at once (a slice swap) into pend, and sends each of its blocks as
// one batch or more. The queue is a list of blocks of batchSize events, not
// one slice: a growing slice of events (hundreds of bytes each) would be
// copied at every doubling, which cost an async producer as much CPU as
// encoding the events.
type lane struct {
	c    *Client
	id   int
	wake chan struct{} // capacity 1: queue reached want while waiting, or closing

	mu       sync.Mutex
	queue    [][]item // blocks of up to batchSize events; only the last is not full
	queued   int      // events in queue
	free     [][]item // empty blocks kept for reuse (at most maxFree)
	closed   bool
	waiting  bool // the lane goroutine waits until want events are queued
	want     int
	logged   uint64        // events pushed
	resolved uint64        // events whose batch is finished
	progress chan struct{} // made by a Flush waiting; closed when resolved grows

	// Owned by the lane goroutine.
	pend  [][]item // blocks taken from queue; pend[0][head:] is not sent yet
	head  int
	timer *time.Timer
	send  sender
}

func newLane(c *Client, id int) *lane {
	l := &lane{c: c, id: id, wake: make(chan struct{}, 1), timer: time.NewTimer(time.Hour)}
	l.timer.Stop()
	l.send = sender{c: c, lane: id}
	return l
}

// push queues an event; it reports false once the lane is closed.
func (l *lane) push(ev trail.Event, settle settleFunc) bool {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return false
	}
	n := len(l.queue)
	if n == 0 || len(l.queue[n-1]) == cap(l.queue[n-1]) {
		l.queue = append(l.queue, l.block())
		n++
	}
	l.queue[n-1] = append(l.queue[n-1], item{ev: ev, settle: settle})
	l.queued++
	l.logged++
	signal := l.waiting && l.queued >= l.want
	if signal {
		l.waiting = false
	}
	l.mu.Unlock()
	if signal {
		l.signal()
	}
	return true
}

// maxFree is how many empty blocks a lane keeps for reuse: enough for a
// steady flow, not a burst's memory.
const maxFree = 4

// block returns an empty block for the queue. l.mu is held.
func (l *lane) block() []item {
	if n := len(l.free); n > 0 {
		b := l.free[n-1]
		l.free[n-1] = nil
		l.free = l.free[:n-1]
		return b
	}
	return make([]item, 0, l.c.cfg.batchSize)
}

// recycle gives a sent block back for reuse, emptied so that it keeps no
// event or Pending alive.
func (l *lane) recycle(b []item) {
	clear(b[:cap(b)])
	l.mu.Lock()
	if len(l.free) < maxFree {
		l.free = append(l.free, b[:0])
	}
	l.mu.Unlock()
}

func (l *lane) signal() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// close stops taking events; the lane sends what it holds, then exits.
func (l *lane) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.signal()
}

func (l *lane) run() {
	defer l.c.lanesDone.Done()
	last := 0
	for l.fill(last) {
		last = l.sendNext()
	}
}

// fill makes sure pend holds events to send, waiting for the first one when
// the lane is idle. last is the size of the batch whose request just
// returned: while fewer events than that are queued, fill lingers (at most
// WithLinger) so that producers woken by those receipts can join the next
// batch. It reports false when the lane is closed and empty.
func (l *lane) fill(last int) bool {
	if len(l.pend) > 0 {
		return true
	}
	want := min(last, l.c.cfg.batchSize)
	var until time.Time
	if want > 1 && l.c.cfg.linger > 0 {
		until = time.Now().Add(l.c.cfg.linger)
	}
	l.mu.Lock()
	for {
		n := l.queued
		if n == 0 && l.closed {
			l.mu.Unlock()
			return false
		}
		if n > 0 && (n >= want || l.closed || l.c.runCtx.Err() != nil || !time.Now().Before(until)) {
			break
		}
		l.waiting, l.want = true, want
		if n == 0 {
			l.want = 1
		}
		l.mu.Unlock()
		if n == 0 {
			l.sleep(time.Time{})
		} else {
			l.sleep(until)
		}
		l.mu.Lock()
	}
	l.waiting = false
	l.pend, l.queue, l.queued = l.queue, l.pend[:0], 0
	l.mu.Unlock()
	return true
}

// sleep waits for a wake-up, until (when not zero) or the end of the client.
func (l *lane) sleep(until time.Time) {
	var expired <-chan time.Time
	if !until.IsZero() {
		l.timer.Reset(time.Until(until))
		defer l.timer.Stop()
		expired = l.timer.C
	}
	select {
	case <-l.wake:
	case <-expired:
	case <-l.c.runCtx.Done():
	}
}

// pause waits for d unless the client gives up first; it reports whether
// the whole d passed.
func (l *lane) pause(ctx context.Context, d time.Duration) bool {
	l.timer.Reset(d)
	defer l.timer.Stop()
	select {
	case <-l.timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// sendNext sends the next batch from pend until each of its events is
// resolved, and returns how many events it took.
func (l *lane) sendNext() int {
	block := l.pend[0]
	b := block[l.head:]
	body, k := l.send.encode(b)
	b = b[:k]
	l.head += k
	if live(b) > 0 {
		l.deliver(b, body, time.Now().Add(l.c.cfg.retryTimeout))
	}
	l.finish(b)
	if l.head == len(block) {
		l.pend[0] = nil
		l.pend, l.head = l.pend[1:], 0
		l.recycle(block)
	}
	return k
}

// finish counts a batch as resolved and frees its room.
func (l *lane) finish(b []item) {
	clear(b) // drop the events and Pendings for the collector
	l.c.release(len(b))
	l.mu.Lock()
	l.resolved += uint64(len(b))
	if l.progress != nil {
		close(l.progress)
		l.progress = nil
	}
	l.mu.Unlock()
}

func (l *lane) loggedCount() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.logged
}

// waitResolved waits until the first mark events pushed are resolved.
func (l *lane) waitResolved(ctx context.Context, mark uint64) error {
	for {
		l.mu.Lock()
		if l.resolved >= mark {
			l.mu.Unlock()
			return nil
		}
		if l.progress == nil {
			l.progress = make(chan struct{})
		}
		ch := l.progress
		l.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// live counts the events of b not yet resolved.
func live(b []item) int {
	n := 0
	for i := range b {
		if !b[i].done {
			n++
		}
	}
	return n
}

// failLive resolves every event of b not yet resolved with err.
func failLive(b []item, err error) {
	for i := range b {
		if !b[i].done {
			b[i].resolve(trail.Receipt{}, err)
		}
	}
}
