package trail

import (
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

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
	var files []vfs.File
	for c := range l.commits {
		batch = l.gather(append(batch[:0], c))
		files = files[:0]
		for _, c := range batch {
			if c.file != nil && (len(files) == 0 || files[len(files)-1] != c.file) {
				files = append(files, c.file)
			}
		}
		start := time.Now()
		err := l.syncFiles(files)
		if err == nil && len(files) > 0 {
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

func (l *Log) syncFiles(files []vfs.File) error {
	if f := l.failure.Load(); f != nil {
		return f
	}
	if l.cfg.Sync == SyncNone {
		return nil
	}
	for _, f := range files {
		if err := f.SyncData(); err != nil {
			return l.fail(err)
		}
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
