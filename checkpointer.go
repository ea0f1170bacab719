package trail

import (
	"bytes"
	"fmt"
	"time"
)

// checkpointer signs a checkpoint every CheckpointInterval when the log has
// grown, until Close.
func (l *Log) checkpointer() {
	defer close(l.cpDone)
	t := time.NewTicker(l.cfg.CheckpointInterval)
	defer t.Stop()
	flushed := l.applied.load()
	for {
		select {
		case <-l.closing:
			return
		case <-t.C:
			if l.Err() != nil {
				continue
			}
			if err := l.checkpoint(); err != nil {
				l.fail(err)
				continue
			}
			// Bound what recovery replays into the index store.
			if a := l.applied.load(); a-flushed >= indexFlushEvery {
				if err := l.idx.Flush(); err != nil {
					l.fail(err)
					continue
				}
				flushed = a
			}
		}
	}
}

// indexFlushEvery is how many applied events make the checkpointer flush the
// index store (whose write-ahead log is off).
const indexFlushEvery = 1 << 16

// checkpoint signs and stores a checkpoint of everything durable, if the log
// has grown since the last one.
//
// Order: with SyncNone, fdatasync the active segment (acknowledged records
// were not synced; the sealed segments were, at rotation); fdatasync the
// tree's level files (they are written without fsync), take the size both
// the tree and the acknowledged log cover, compute its root from the files,
// then append the signed checkpoint and fsync it. So a checkpoint never
// covers a record or a tree hash that is not on disk, and recovery may trust
// both below its size: a power loss never leaves a checkpoint over records
// that did not reach the disk.
func (l *Log) checkpoint() error {
	l.cpsMu.Lock()
	defer l.cpsMu.Unlock()
	latest, _ := l.cps.Latest()
	durable := l.durable.load()
	if durable <= latest.Size && len(l.cps.All()) > 0 {
		return nil
	}
	if l.cfg.Sync == SyncNone {
		if err := l.syncSegments(); err != nil {
			return err
		}
	}
	if err := l.flushTree(); err != nil {
		return err
	}
	flushed, err := l.tree.Sync()
	if err != nil {
		return err
	}
	size := min(flushed, durable)
	if size <= latest.Size && len(l.cps.All()) > 0 {
		return nil
	}
	root, err := l.tree.Root(size)
	if err != nil {
		return fmt.Errorf("checkpoint root of size %d: %w", size, err)
	}
	if latest.Size == size && len(l.cps.All()) > 0 && !bytes.Equal(latest.Root, root) {
		return fmt.Errorf("checkpoint: root of size %d changed", size)
	}
	if _, err := l.cps.Add(size, root); err != nil {
		return err
	}
	l.checkpointAt = time.Now()
	return nil
}

// syncSegments makes every record written so far durable, for SyncNone, where
// the syncer acknowledges without fsync. It runs beside the sequencer's
// writes (not under writeMu: an fsync of a second's writes would stall
// them); a sync error fails the engine, and a failed engine syncs nothing.
func (l *Log) syncSegments() error {
	if err := l.Err(); err != nil {
		return err
	}
	if err := l.segs.SyncActive(); err != nil {
		return l.fail(err)
	}
	return nil
}
