// Package files keeps a Trail log in a data directory on a local file system:
// the records in segment files (internal/segment), the Merkle tree's hashes
// in level files (internal/tree), the id, stream and query indexes in Pebble
// (internal/index), and the signed checkpoints with their key
// (internal/checkpoint). It is the embedded, default store.store.Store.
//
// Durability. Records are written by the sequencer with one write per batch
// and made durable by one fdatasync per gathered batch (Sync); with NoSync,
// by the checkpointer, before it signs a checkpoint over them. A failed
// fsync is never retried: the store fails and writes nothing more. The tree's
// and the indexes' files are derived from the records and written without
// fsync; the tree is synced before each checkpoint, so a checkpoint never
// covers a record or a hash that is not on disk.
//
// Recovery (Open) cuts a torn tail of the log, reopens the tree at the latest
// signed checkpoint (rebuilding it from the records if its files disagree),
// hashes the few records past it again, checking each against the leaf
// written for it, and replays into the indexes what they had not applied.
// A directory holding only its records, checkpoints and keys (a restored
// backup, internal/backup) so has its tree, its sealed segments' offset
// indexes and its index store rebuilt from the records on open.
package files

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/trailhq/trail/internal/checkpoint"
	"github.com/trailhq/trail/internal/index"
	"github.com/trailhq/trail/internal/segment"
	"github.com/trailhq/trail/internal/store"
	"github.com/trailhq/trail/internal/tree"
)

// ErrLocked: another process has the data directory open.
var ErrLocked = errors.New("trail: data directory is in use by another process")

// Options configure Open.
type Options struct {
	FS          vfs.FS
	Dir         string
	SegmentSize int64
	// NoSync leaves records unsynced until the next checkpoint (sync none):
	// Sync returns at once.
	NoSync bool
	// Origin names a new log in its checkpoints; an existing log keeps its own.
	Origin string
	Logger *slog.Logger
}

// Store is a log in a data directory. See the package comment.
type Store struct {
	opts Options
	lock io.Closer

	segs *segment.Log
	tree *tree.Tree
	idx  *index.Store

	cpsMu        sync.Mutex // guards cps and checkpointAt
	cps          *checkpoint.Store
	checkpointAt time.Time // when this process signed the latest checkpoint
	flushedIndex uint64    // applied events when the indexes were last flushed

	// writeMu is held around every write to the log and the tree, so that
	// after a write error (err is set under it) nothing more is written.
	writeMu sync.Mutex
	errMu   sync.Mutex
	err     error // the first failure; then nothing is written or synced
}

var _ store.Store = (*Store)(nil)

// Open opens the log in opts.Dir, creating it when new, and recovers after a
// crash. It returns the store and the number of records it read again.
func Open(opts Options) (*Store, uint64, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.FS == nil {
		opts.FS = vfs.Default
	}
	s := &Store{opts: opts}
	if err := s.openFiles(); err != nil {
		s.closeFiles()
		return nil, 0, err
	}
	replayed, err := s.recover()
	if err != nil {
		s.closeFiles()
		return nil, 0, err
	}
	return s, replayed, nil
}

// Begin starts a batch: only this process writes the directory, so nothing
// changes under the sequencer.
func (s *Store) Begin(context.Context) (store.Begun, error) { return store.Begun{}, nil }

// Abort ends a batch begun and not written.
func (s *Store) Abort() {}

// Follow never calls fn: only this process writes the directory.
func (s *Store) Follow(func(size uint64)) {}

// Describe names the data directory.
func (s *Store) Describe(context.Context) store.Info {
	return store.Info{Kind: "files", Where: s.opts.Dir}
}

// Fail makes the store refuse every later write and sync.
func (s *Store) Fail(cause error) {
	s.errMu.Lock()
	if s.err == nil {
		s.err = cause
	}
	s.errMu.Unlock()
}

// Err is the store's failure, or nil.
func (s *Store) Err() error { return s.failed() }

// failed returns the first failure, or nil.
func (s *Store) failed() error {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.err
}

// fail records err as the store's failure (the first one wins) and returns it.
func (s *Store) fail(err error) error {
	s.Fail(err)
	return err
}

// Len is the number of records written, durable or not.
func (s *Store) Len() uint64 { return s.segs.Len() }

// Read returns a copy of record i; a damaged frame is an *IntegrityError.
func (s *Store) Read(i uint64) ([]byte, error) {
	rec, err := s.segs.Read(i)
	if err != nil {
		var ce *segment.CorruptError
		if errors.As(err, &ce) {
			return nil, &store.IntegrityError{Index: i, Err: err}
		}
		return nil, err
	}
	return rec, nil
}

// Head returns the last event of a stream among the applied entries.
func (s *Store) Head(stream string) (store.Head, bool, error) { return s.idx.Head(stream) }

// ID returns the index of the event with a client-chosen id.
func (s *Store) ID(id string) (uint64, bool, error) { return s.idx.ID(id) }

// Apply records index entries of durable records.
func (s *Store) Apply(entries []store.Entry, end uint64) error {
	if err := s.idx.Apply(entries, end); err != nil {
		return s.fail(err)
	}
	return nil
}

// FlushIndex writes the indexes' memory tables to their files (benchmarks
// use it to measure queries in a steady state).
func (s *Store) FlushIndex() error { return s.idx.Flush() }

// VerifierKey is the checkpoints' verifier key.
func (s *Store) VerifierKey() string { return s.cps.VerifierKey() }

// Latest returns the latest signed checkpoint and when this process signed it.
func (s *Store) Latest() (checkpoint.Checkpoint, time.Time, bool) {
	s.cpsMu.Lock()
	defer s.cpsMu.Unlock()
	c, ok := s.cps.Latest()
	return c, s.checkpointAt, ok
}

// Close closes every file. The caller has stopped writing and reading.
func (s *Store) Close() error {
	return errors.Join(s.idx.Close(), s.tree.Close(), s.segs.Close(), s.cps.Close(), s.lock.Close())
}

func (s *Store) closeFiles() {
	if s.idx != nil {
		s.idx.Close()
	}
	if s.tree != nil {
		s.tree.Close()
	}
	if s.segs != nil {
		s.segs.Close()
	}
	if s.cps != nil {
		s.cps.Close()
	}
	if s.lock != nil {
		s.lock.Close()
	}
}

func (s *Store) path(name string) string { return s.opts.FS.PathJoin(s.opts.Dir, name) }
