package trail

import (
	"sync"

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
}

func newIndexQueue() *indexQueue {
	q := &indexQueue{}
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
	for {
		entries = l.applies.pop(entries)
		if len(entries) == 0 {
			return
		}
		if l.failure.Load() != nil {
			continue
		}
		end := entries[len(entries)-1].Index + 1
		if err := l.idx.Apply(entries, end); err != nil {
			l.fail(err)
			continue
		}
		l.applied.Store(end)
		l.appliedNote.notify()
	}
}
