package trail

import (
	"time"

	"github.com/trailhq/trail/internal/store"

	"github.com/trailhq/trail/internal/index"
)

// syncer is the goroutine that makes written batches durable. It takes every
// batch the sequencer has handed over, fdatasyncs the files they were written
// to once, and only then gives their receipts: one fsync for many batches
// when the disk is slower than the producers.
//
// After an fsync error it never retries (a failed fsync may have dropped the
// dirty pages; a retry could falsely succeed): the engine fails closed and
// every batch not yet acknowledged is resolved with the error.
func (l *Log) syncer() {
	defer close(l.syncDone)
	defer l.applies.close()
	var batch []*commit
	var written []store.Commit
	for c := range l.commits {
		batch = l.gather(append(batch[:0], c))
		written = written[:0]
		for _, c := range batch {
			if c.written != nil {
				written = append(written, c.written)
			}
		}
		start := time.Now()
		err := l.sync(written)
		if err == nil && len(written) > 0 {
			l.syncHist.observe(time.Since(start).Seconds())
			events := 0
			for _, c := range batch {
				events += len(c.entries)
			}
			l.batchHist.observe(float64(events))
		}
		l.resolve(batch, err)
	}
}

// gather adds to batch every batch already written and, if the sequencer is
// writing one now, that one too: waiting the microseconds it needs costs less
// than the fsync it would otherwise wait for. It waits for one batch at most,
// so that a sequencer that is never idle does not hold the fsync back.
func (l *Log) gather(batch []*commit) []*commit {
	waited := false
	for {
		if !waited && l.seqBusy.Load() {
			// seqBusy is cleared just before the send, so a send follows.
			waited = true
			c, ok := <-l.commits
			if !ok {
				return batch
			}
			batch = append(batch, c)
			continue
		}
		select {
		case c, ok := <-l.commits:
			if !ok {
				return batch
			}
			batch = append(batch, c)
		default:
			return batch
		}
	}
}

// sync makes the written batches durable, unless the engine has failed.
// The store sees every written batch even then (it knows of the failure
// through Fail, and syncs nothing): a database's transaction must end, or
// its lock would hold the other processes back.
func (l *Log) sync(written []store.Commit) error {
	var err error
	if len(written) > 0 {
		err = l.st.Sync(written)
	}
	if f := l.failure.Load(); f != nil {
		return f
	}
	if err != nil {
		return l.storeFailed(err)
	}
	return nil
}

// resolve acknowledges (or fails) the batches and wakes their waiters.
func (l *Log) resolve(batch []*commit, err error) {
	var entries []index.Entry
	for _, c := range batch {
		if err != nil {
			failAll(c.items, err)
		} else {
			l.durable.advance(c.end)
			entries = append(entries, c.entries...)
		}
		// Room first: a caller woken by its receipt may log again at once
		// and must find the queue as empty as it is.
		l.q.release(c.events)
		for _, g := range c.groups {
			close(g.done)
		}
	}
	if len(entries) > 0 {
		l.applies.push(entries)
	}
}
