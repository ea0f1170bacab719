package files

import (
	"bytes"
	"fmt"
	"time"
)

// indexFlushEvery is how many applied events make Checkpoint flush the
// indexes (whose write-ahead log is off), bounding what recovery replays.
const indexFlushEvery = 1 << 16

// Checkpoint signs and stores a checkpoint of the first durable records, if
// the log has grown since the last one, and flushes the indexes when they
// have applied indexFlushEvery events since the last flush.
//
// Order: with NoSync, fdatasync the active segment (acknowledged records
// were not synced; the sealed segments were, at rotation); fdatasync the
// tree's level files (they are written without fsync), take the size both
// the tree and the acknowledged log cover, compute its root from the files,
// then append the signed checkpoint and fsync it. So a checkpoint never
// covers a record or a tree hash that is not on disk, and recovery may trust
// both below its size: a power loss never leaves a checkpoint over records
// that did not reach the disk.
func (s *Store) Checkpoint(durable, applied uint64) error {
	if err := s.checkpoint(durable); err != nil {
		return err
	}
	if applied-s.flushedIndex >= indexFlushEvery {
		if err := s.idx.Flush(); err != nil {
			return s.fail(err)
		}
		s.flushedIndex = applied
	}
	return nil
}

func (s *Store) checkpoint(durable uint64) error {
	if err := s.failed(); err != nil {
		return err
	}
	s.cpsMu.Lock()
	defer s.cpsMu.Unlock()
	latest, has := s.cps.Latest()
	if durable <= latest.Size && has {
		return nil
	}
	if s.opts.NoSync {
		// Beside the sequencer's writes, not under writeMu: an fsync of a
		// second's writes would stall them.
		if err := s.segs.SyncActive(); err != nil {
			return s.fail(err)
		}
	}
	if err := s.flushTree(); err != nil {
		return err
	}
	flushed, err := s.tree.Sync()
	if err != nil {
		return s.fail(err)
	}
	size := min(flushed, durable)
	if size <= latest.Size && has {
		return nil
	}
	root, err := s.tree.Root(size)
	if err != nil {
		return fmt.Errorf("checkpoint root of size %d: %w", size, err)
	}
	if latest.Size == size && has && !bytes.Equal(latest.Root, root) {
		return fmt.Errorf("checkpoint: root of size %d changed", size)
	}
	if _, err := s.cps.Add(size, root); err != nil {
		return s.fail(err)
	}
	s.checkpointAt = time.Now()
	return nil
}
