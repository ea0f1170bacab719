package trail

import (
	"sync"
	"time"

	"github.com/trailhq/trail/internal/index"
)

// maxIndexLag bounds the acknowledged events the index store may lag behind.
// The lag costs memory (the entries and the recent-id set), so past it the
// syncer waits for the indexer: backpressure instead of unbounded growth.
const maxIndexLag = 4 << 20

// indexQueue hands acknowledged entries from the syncer to the indexer
// without making acknowledgements wait for the index store.
type indexQueue struct {
	mu      sync.Mutex
	cond    *sync.Cond // signalled when entries are taken (room) or added
	entries []index.Entry
	closed  bool
	more    chan struct{} // capacity 1: entries were added
}

func newIndexQueue() *indexQueue {
	q := &indexQueue{more: make(chan struct{}, 1)}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// push adds entries, waiting while the lag is over maxIndexLag.
func (q *indexQueue) push(e []index.Entry) {
	q.mu.Lock()
	for len(q.entries) >= maxIndexLag && !q.closed {
		q.cond.Wait()
	}
	q.entries = append(q.entries, e...)
	q.mu.Unlock()
	q.cond.Broadcast()
	select {
	case q.more <- struct{}{}:
	default:
	}
}

// popMore appends whatever is queued, without waiting.
func (q *indexQueue) popMore(into []index.Entry) []index.Entry {
	q.mu.Lock()
	into = append(into, q.entries...)
	clear(q.entries)
	q.entries = q.entries[:0]
	q.mu.Unlock()
	q.cond.Broadcast()
	return into
}

// pop takes everything queued, waiting for some; it returns nil once the
// queue is closed and empty.
func (q *indexQueue) pop(into []index.Entry) []index.Entry {
	q.mu.Lock()
	for len(q.entries) == 0 && !q.closed {
		q.cond.Wait()
	}
	into = append(into[:0], q.entries...)
	clear(q.entries)
	q.entries = q.entries[:0]
	q.mu.Unlock()
	q.cond.Broadcast()
	return into
}

func (q *indexQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.cond.Broadcast()
}

// indexer applies acknowledged events to the index store, off the
// acknowledgement path. A failure here fails the engine: without the id
// index, exactly-once could not be kept.
func (l *Log) indexer() {
	defer close(l.idxDone)
	var entries []index.Entry
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	for {
		entries = l.applies.pop(entries)
		if len(entries) == 0 {
			return
		}
		entries = l.coalesce(entries, linger)
		if l.failure.Load() != nil {
			continue
		}
		// Apply at most applyMax at a time: Pebble keeps a batch larger
		// than half its memtable as a separate "flushable batch" that
		// iterators then step through on every seek, which made queries
		// after a burst take seconds.
		for rest := entries; len(rest) > 0; {
			part := rest[:min(len(rest), applyMax)]
			rest = rest[len(part):]
			end := part[len(part)-1].Index + 1
			if testHookApply != nil {
				testHookApply()
			}
			if err := l.st.Apply(part, end); err != nil {
				l.fail(err)
				break
			}
			l.applied.advance(end)
		}
	}
}

// testHookApply, when set by a test, runs before each Apply: a test holds the
// index store back with it.
var testHookApply func()

// Indexing many events at once costs far fewer index-store keys than
// indexing a few at a time (a posting list per value per batch), so under a
// steady trickle the indexer waits up to indexLinger for indexBatch events.
// A reader waiting for the index (waitApplied) cuts the wait short, so
// queries never wait for it. At 64 waiting producers (about 65k events/s)
// 20 ms gathered some 1,300 events a batch; 100 ms gathers 6,500, a third of
// the keys per event, and the engine appended about 9 % more (trail bench
// --embedded, alternating runs).
const (
	applyMax    = 1 << 16
	indexBatch  = 16384
	indexLinger = 100 * time.Millisecond
)

// coalesce adds to entries what arrives within indexLinger, until there are
// indexBatch, a reader waits, or the engine closes.
func (l *Log) coalesce(entries []index.Entry, linger *time.Timer) []index.Entry {
	if len(entries) >= indexBatch || l.readers.Load() > 0 {
		return entries
	}
	linger.Reset(indexLinger)
	defer linger.Stop()
	for len(entries) < indexBatch {
		select {
		case <-linger.C:
			return l.applies.popMore(entries)
		case <-l.indexKick:
			return l.applies.popMore(entries)
		case <-l.closing:
			return l.applies.popMore(entries)
		case <-l.applies.more:
			entries = l.applies.popMore(entries)
		}
	}
	return entries
}
