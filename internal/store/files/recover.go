package files

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"github.com/trailhq/trail/event"
	"github.com/trailhq/trail/internal/checkpoint"
	"github.com/trailhq/trail/internal/datadir"
	"github.com/trailhq/trail/internal/durable"
	"github.com/trailhq/trail/internal/index"
	"github.com/trailhq/trail/internal/segment"
	"github.com/trailhq/trail/internal/store"
	"github.com/trailhq/trail/internal/tree"
)

// ReplayMax is how many entries recovery applies to the indexes at once.
const ReplayMax = 1 << 16

func (s *Store) openFiles() error {
	fs := s.opts.FS
	if err := durable.MkdirAll(fs, s.opts.Dir); err != nil {
		return fmt.Errorf("trail: create data directory: %w", err)
	}
	lock, err := fs.Lock(fs.PathJoin(s.opts.Dir, datadir.LockFile))
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrLocked, s.opts.Dir, err)
	}
	s.lock = lock
	if err := datadir.CheckFormat(fs, s.opts.Dir); err != nil {
		return err
	}
	origin := s.opts.Origin
	if origin == "" {
		var b [6]byte
		rand.Read(b[:])
		origin = "trail/" + hex.EncodeToString(b[:])
	}
	if s.cps, err = checkpoint.Open(fs, s.opts.Dir, origin); err != nil {
		return fmt.Errorf("trail: %w", err)
	}
	// Stamped after the verifier key, which marks a data directory, and
	// before the log, whose presence without a stamp means format 1.
	if err := datadir.StampFormat(fs, s.opts.Dir); err != nil {
		return err
	}
	latest, _ := s.cps.Latest()
	segDir := fs.PathJoin(s.opts.Dir, datadir.LogDir)
	for _, d := range []string{segDir, fs.PathJoin(s.opts.Dir, datadir.TreeDir), fs.PathJoin(s.opts.Dir, datadir.IndexDir)} {
		if err := durable.MkdirAll(fs, d); err != nil {
			return fmt.Errorf("trail: %w", err)
		}
	}
	s.segs, err = segment.Open(segment.Options{FS: fs, Dir: segDir, SegmentSize: s.opts.SegmentSize, Durable: latest.Size})
	if err != nil {
		return fmt.Errorf("trail: open log (run trail verify): %w", err)
	}
	if s.tree, err = s.openTree(latest); err != nil {
		return err
	}
	if s.idx, err = s.openIndex(); err != nil {
		return fmt.Errorf("trail: %w", err)
	}
	return nil
}

// openIndex opens the index store. The store is derived from the log, so one
// that cannot be opened (a power loss can leave Pebble's files inconsistent
// when its directory entries were not all synced) is removed and rebuilt by
// recover from the whole log.
func (s *Store) openIndex() (*index.Store, error) {
	fs, dir := s.opts.FS, s.opts.FS.PathJoin(s.opts.Dir, datadir.IndexDir)
	idx, err := index.Open(fs, dir, s.opts.Logger)
	if err == nil {
		return idx, nil
	}
	s.opts.Logger.Warn("rebuilding the index store from the log", "reason", err)
	return s.newIndex()
}

// newIndex removes the index store's directory and opens an empty store.
func (s *Store) newIndex() (*index.Store, error) {
	fs, dir := s.opts.FS, s.opts.FS.PathJoin(s.opts.Dir, datadir.IndexDir)
	if err := fs.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("remove index store %s: %w", dir, err)
	}
	if err := durable.MkdirAll(fs, dir); err != nil {
		return nil, err
	}
	return index.Open(fs, dir, s.opts.Logger)
}

// openTree opens the Merkle tree at the latest checkpoint and checks its root
// against the signed one. Tree files that do not match are rebuilt from the
// log; a log that does not match is an error.
func (s *Store) openTree(latest checkpoint.Checkpoint) (*tree.Tree, error) {
	fs, dir := s.opts.FS, s.opts.FS.PathJoin(s.opts.Dir, datadir.TreeDir)
	t, err := tree.Open(fs, dir, latest.Size)
	if err == nil && latest.Size > 0 {
		root, rerr := t.Root(latest.Size)
		if rerr != nil || !bytes.Equal(root, latest.Root) {
			err = fmt.Errorf("root of size %d does not match the checkpoint", latest.Size)
			t.Close()
		}
	}
	if err == nil {
		return t, nil
	}
	s.opts.Logger.Warn("rebuilding the Merkle tree from the log", "reason", err)
	if t, err = tree.Open(fs, dir, 0); err != nil {
		return nil, fmt.Errorf("trail: %w", err)
	}
	err = s.segs.Scan(0, latest.Size, func(i uint64, rec []byte) error {
		h := event.LeafHash(rec)
		t.Append(h[:])
		return nil
	})
	if err == nil {
		err = t.Flush()
	}
	if err == nil {
		// The old files' hashes past the checkpoint are not to be trusted
		// either: recovery cannot check the records after it.
		err = t.Trim()
	}
	if err == nil {
		var root []byte
		root, err = t.Root(latest.Size)
		if err == nil && !bytes.Equal(root, latest.Root) {
			err = fmt.Errorf("log records below the signed checkpoint of size %d do not match its root: the log was altered (run trail verify)", latest.Size)
		}
	}
	if err != nil {
		t.Close()
		return nil, fmt.Errorf("trail: %w", err)
	}
	return t, nil
}

// recover brings the tree and the index store up to the end of the log and
// makes sure a checkpoint exists. It returns how many records it read.
func (s *Store) recover() (uint64, error) {
	n := s.segs.Len()
	applied, err := s.idx.Applied()
	if err != nil {
		return 0, fmt.Errorf("trail: %w", err)
	}
	if applied > n {
		if applied, err = s.indexAhead(applied, n); err != nil {
			return 0, err
		}
	}
	signed := s.tree.Size() // the latest checkpoint's size
	from := min(signed, applied)
	var entries []index.Entry
	err = s.segs.Scan(from, n, func(i uint64, rec []byte) error {
		leaf := event.LeafHash(rec)
		if i >= signed {
			if err := s.checkUnsigned(i, leaf); err != nil {
				return err
			}
			s.tree.Append(leaf[:])
		}
		if i < applied {
			return nil
		}
		ev, err := event.ParseStored(rec)
		if err != nil || ev.Index != i {
			return fmt.Errorf("trail: record %d is not a valid event (run trail verify): %v", i, err)
		}
		gen, ok := store.DecodeGeneratedID(ev.ID)
		given := !ok || gen != i
		e := index.Entry{Index: i, ID: ev.ID, Given: given, Stream: ev.Stream, Seq: ev.StreamSeq, Leaf: leaf}
		entries = append(entries, store.EntryOf(&ev.Event, e))
		if len(entries) == ReplayMax {
			err = s.idx.Apply(entries, i+1)
			entries = entries[:0]
		}
		return err
	})
	if err == nil && len(entries) > 0 {
		err = s.idx.Apply(entries, n)
	}
	if err == nil {
		err = s.tree.Flush()
	}
	if err == nil {
		err = s.tree.Trim()
	}
	if err != nil {
		return 0, err
	}
	if _, has := s.cps.Latest(); !has || n > 0 {
		if err := s.Checkpoint(n, n); err != nil {
			return 0, fmt.Errorf("trail: first checkpoint: %w", err)
		}
	}
	s.flushedIndex = n
	return n - from, nil
}

// checkUnsigned checks record i, past the latest signed checkpoint, against
// the leaf the tree's files hold for it. The sequencer hashed each record
// into the tree from the bytes it wrote, and recovery trims the files past
// the log's end (Tree.Trim), so a leaf there is the hash of the record
// written at i: a record that differs was altered after it was written, and
// Open refuses rather than sign a checkpoint over it. A leaf the crash left
// unwritten cannot be checked.
func (s *Store) checkUnsigned(i uint64, leaf event.Hash) error {
	stored, ok, err := s.tree.StoredLeaf(i)
	if err != nil {
		return fmt.Errorf("trail: %w", err)
	}
	if ok && !bytes.Equal(stored, leaf[:]) {
		return &store.IntegrityError{Index: i, Err: fmt.Errorf(
			"record %d, written after the latest signed checkpoint, hashes to %s but the tree recorded %x when it was written; "+
				"Trail will not sign a checkpoint over it", i, leaf, stored)}
	}
	return nil
}

// indexAhead handles an index store that has applied more events than the
// log holds. With NoSync a power loss can take records the store was
// flushed over (it is derived data: rebuild it); with SyncAlways the store
// only holds fsynced records, so the log lost acknowledged ones and a person
// must look.
func (s *Store) indexAhead(applied, n uint64) (uint64, error) {
	dir := s.opts.FS.PathJoin(s.opts.Dir, datadir.IndexDir)
	if !s.opts.NoSync {
		return 0, fmt.Errorf("trail: index store has %d events but the log only %d: acknowledged events are missing "+
			"from the log (run trail verify), or it ran with --sync none; remove %s to rebuild it", applied, n, dir)
	}
	s.opts.Logger.Warn("rebuilding the index store: it is ahead of the log, whose records past the disk's last sync were lost (sync none)",
		"index_events", applied, "log_events", n)
	if err := s.idx.Close(); err != nil {
		return 0, fmt.Errorf("trail: %w", err)
	}
	idx, err := s.newIndex()
	if err != nil {
		s.idx = nil
		return 0, fmt.Errorf("trail: %w", err)
	}
	s.idx = idx
	return 0, nil
}
