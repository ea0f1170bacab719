package files

import (
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/trailhq/trail/internal/store"
)

// NeedsDurable reports whether b must wait for every record written before
// it to be durable: b starts a new segment, and a segment is sealed (its
// index written) only once all of its records are synced. With NoSync the
// store syncs the segment itself when it seals it.
func (s *Store) NeedsDurable(b *store.Batch) bool {
	return !s.opts.NoSync && s.segs.NeedsRotation(len(b.Buf))
}

// Write appends b's leaves to the tree (writing its buffered hashes when
// many are) and b's frames to the active segment with one write, sealing
// the segment first when b does not fit. The Commit is the file written to.
//
// It holds writeMu, as flushTree does: a write error anywhere fails the
// store before the next write starts, so that after ENOSPC nothing more is
// written.
func (s *Store) Write(b *store.Batch) (store.Commit, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := s.failed(); err != nil {
		return nil, err
	}
	if s.segs.NeedsRotation(len(b.Buf)) {
		// The writer never syncs a file whose sync has failed: Rotate
		// syncs only with NoSync, where the syncer never does.
		if err := s.segs.Rotate(s.opts.NoSync); err != nil {
			return nil, s.fail(err)
		}
	}
	for _, leaf := range b.Leaves {
		s.tree.Append(leaf)
	}
	if err := s.tree.FlushIfLarge(); err != nil {
		return nil, s.fail(err)
	}
	f, err := s.segs.Append(b.Buf, b.Starts)
	if err != nil {
		return nil, s.fail(err)
	}
	return f, nil
}

// Sync fdatasyncs each file the commits were written to, once. With NoSync
// it does nothing (the checkpointer syncs). After an error it never syncs
// again: a failed fsync may have dropped the dirty pages, and a retry could
// falsely succeed.
func (s *Store) Sync(cs []store.Commit) error {
	if err := s.failed(); err != nil {
		return err
	}
	if s.opts.NoSync {
		return nil
	}
	var last vfs.File
	for _, c := range cs {
		f, _ := c.(vfs.File)
		if f == nil || f == last {
			continue
		}
		last = f
		if err := f.SyncData(); err != nil {
			return s.fail(err)
		}
	}
	return nil
}
