package trail

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/trailhq/trail/internal/checkpoint"
	"github.com/trailhq/trail/internal/datadir"
	"github.com/trailhq/trail/internal/durable"
	"github.com/trailhq/trail/internal/index"
	"github.com/trailhq/trail/internal/segment"
	"github.com/trailhq/trail/internal/tree"
)

// Layout of a data directory: see package datadir.
const (
	replayMax = 1 << 16 // entries per index store batch during recovery
)

// ErrLocked: another process has the data directory open.
var ErrLocked = errors.New("trail: data directory is in use by another process")

// Open opens the engine in dir, creating the directory, the signing key and
// the first checkpoint when dir is new, and recovers after a crash: a torn
// tail of the log is cut, the Merkle tree is reopened at the latest signed
// checkpoint and the few records after it are hashed again, and the index
// store replays what it had not applied. Start-up reads O(log n) tree hashes
// and the records written since the last checkpoint, never the whole log.
func Open(dir string, cfg Config) (*Log, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("trail: config: %w", err)
	}
	cfg.fill()
	start := time.Now()
	l := &Log{
		cfg: cfg, dir: dir,
		commits:   make(chan *commit, 1),
		applies:   newIndexQueue(),
		indexKick: make(chan struct{}, 1),
		closing:   make(chan struct{}),
		seqDone:   make(chan struct{}),
		syncDone:  make(chan struct{}),
		idxDone:   make(chan struct{}),
		cpDone:    make(chan struct{}),
	}
	l.durable, l.applied = newWatermark(0), newWatermark(0)
	l.syncHist = newHistogram(expBounds(50e-6, 2, 16))
	l.batchHist = newHistogram(expBounds(1, 2, 17))
	if err := l.openFiles(); err != nil {
		l.closeFiles()
		return nil, err
	}
	replayed, err := l.recover()
	if err != nil {
		l.closeFiles()
		return nil, err
	}
	l.q = newQueue(cfg.QueueSize, 4096)
	l.seq = newSequencer(l)
	if err := l.seq.resumeClock(); err != nil {
		l.closeFiles()
		return nil, err
	}
	go l.seq.run()
	go l.syncer()
	go l.indexer()
	go l.checkpointer()
	cfg.Logger.Info("trail opened", "dir", dir, "events", l.durable.load(),
		"replayed", replayed, "took", time.Since(start).Round(time.Microsecond))
	return l, nil
}

func (l *Log) openFiles() error {
	fs := l.cfg.FS
	if err := durable.MkdirAll(fs, l.dir); err != nil {
		return fmt.Errorf("trail: create data directory: %w", err)
	}
	lock, err := fs.Lock(fs.PathJoin(l.dir, datadir.LockFile))
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrLocked, l.dir, err)
	}
	l.lock = lock
	if err := datadir.CheckFormat(fs, l.dir); err != nil {
		return err
	}
	origin := l.cfg.Origin
	if origin == "" {
		var b [6]byte
		rand.Read(b[:])
		origin = "trail/" + hex.EncodeToString(b[:])
	}
	if l.cps, err = checkpoint.Open(fs, l.dir, origin); err != nil {
		return fmt.Errorf("trail: %w", err)
	}
	// Stamped after the verifier key, which marks a data directory, and
	// before the log, whose presence without a stamp means format 1.
	if err := datadir.StampFormat(fs, l.dir); err != nil {
		return err
	}
	latest, _ := l.cps.Latest()
	segDir := fs.PathJoin(l.dir, datadir.LogDir)
	for _, d := range []string{segDir, fs.PathJoin(l.dir, datadir.TreeDir), fs.PathJoin(l.dir, datadir.IndexDir)} {
		if err := durable.MkdirAll(fs, d); err != nil {
			return fmt.Errorf("trail: %w", err)
		}
	}
	l.segs, err = segment.Open(segment.Options{FS: fs, Dir: segDir, SegmentSize: l.cfg.SegmentSize, Durable: latest.Size})
	if err != nil {
		return fmt.Errorf("trail: open log (run trail verify): %w", err)
	}
	if l.tree, err = l.openTree(latest); err != nil {
		return err
	}
	if l.idx, err = l.openIndex(); err != nil {
		return fmt.Errorf("trail: %w", err)
	}
	return nil
}

// openIndex opens the index store. The store is derived from the log, so one
// that cannot be opened (a power loss can leave Pebble's files inconsistent
// when its directory entries were not all synced) is removed and rebuilt by
// recover from the whole log.
func (l *Log) openIndex() (*index.Store, error) {
	fs, dir := l.cfg.FS, l.cfg.FS.PathJoin(l.dir, datadir.IndexDir)
	idx, err := index.Open(fs, dir, l.cfg.Logger)
	if err == nil {
		return idx, nil
	}
	l.cfg.Logger.Warn("rebuilding the index store from the log", "reason", err)
	return l.newIndex()
}

// newIndex removes the index store's directory and opens an empty store.
func (l *Log) newIndex() (*index.Store, error) {
	fs, dir := l.cfg.FS, l.cfg.FS.PathJoin(l.dir, datadir.IndexDir)
	if err := fs.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("remove index store %s: %w", dir, err)
	}
	if err := durable.MkdirAll(fs, dir); err != nil {
		return nil, err
	}
	return index.Open(fs, dir, l.cfg.Logger)
}

// openTree opens the Merkle tree at the latest checkpoint and checks its root
// against the signed one. Tree files that do not match are rebuilt from the
// log; a log that does not match is an error.
func (l *Log) openTree(latest checkpoint.Checkpoint) (*tree.Tree, error) {
	fs, dir := l.cfg.FS, l.cfg.FS.PathJoin(l.dir, datadir.TreeDir)
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
	l.cfg.Logger.Warn("rebuilding the Merkle tree from the log", "reason", err)
	if t, err = tree.Open(fs, dir, 0); err != nil {
		return nil, fmt.Errorf("trail: %w", err)
	}
	err = l.segs.Scan(0, latest.Size, func(i uint64, rec []byte) error {
		h := LeafHash(rec)
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
func (l *Log) recover() (uint64, error) {
	n := l.segs.Len()
	applied, err := l.idx.Applied()
	if err != nil {
		return 0, fmt.Errorf("trail: %w", err)
	}
	if applied > n {
		if applied, err = l.indexAhead(applied, n); err != nil {
			return 0, err
		}
	}
	signed := l.tree.Size() // the latest checkpoint's size
	from := min(signed, applied)
	var entries []index.Entry
	err = l.segs.Scan(from, n, func(i uint64, rec []byte) error {
		leaf := LeafHash(rec)
		if i >= signed {
			if err := l.checkUnsigned(i, leaf); err != nil {
				return err
			}
			l.tree.Append(leaf[:])
		}
		if i < applied {
			return nil
		}
		ev, err := ParseStored(rec)
		if err != nil || ev.Index != i {
			return fmt.Errorf("trail: record %d is not a valid event (run trail verify): %v", i, err)
		}
		gen, ok := decodeGeneratedID(ev.ID)
		given := !ok || gen != i
		e := index.Entry{Index: i, ID: ev.ID, Given: given, Stream: ev.Stream, Seq: ev.StreamSeq, Leaf: leaf}
		entries = append(entries, queryFieldsOf(&ev.Event).entry(e))
		if len(entries) == replayMax {
			err = l.idx.Apply(entries, i+1)
			entries = entries[:0]
		}
		return err
	})
	if err == nil && len(entries) > 0 {
		err = l.idx.Apply(entries, n)
	}
	if err == nil {
		err = l.tree.Flush()
	}
	if err == nil {
		err = l.tree.Trim()
	}
	if err != nil {
		return 0, err
	}
	l.durable.advance(n)
	l.applied.advance(n)
	if len(l.cps.All()) == 0 || n > 0 {
		if err := l.checkpoint(); err != nil {
			return 0, fmt.Errorf("trail: first checkpoint: %w", err)
		}
	}
	return n - from, nil
}

// checkUnsigned checks record i, past the latest signed checkpoint, against
// the leaf the tree's files hold for it. The sequencer hashed each record
// into the tree from the bytes it wrote, and recovery trims the files past
// the log's end (Tree.Trim), so a leaf there is the hash of the record
// written at i: a record that differs was altered after it was written, and
// Open refuses rather than sign a checkpoint over it. A leaf the crash left
// unwritten cannot be checked.
func (l *Log) checkUnsigned(i uint64, leaf Hash) error {
	stored, ok, err := l.tree.StoredLeaf(i)
	if err != nil {
		return fmt.Errorf("trail: %w", err)
	}
	if ok && !bytes.Equal(stored, leaf[:]) {
		return &IntegrityError{Index: i, Err: fmt.Errorf(
			"record %d, written after the latest signed checkpoint, hashes to %s but the tree recorded %x when it was written; "+
				"Trail will not sign a checkpoint over it", i, leaf, stored)}
	}
	return nil
}

// indexAhead handles an index store that has applied more events than the
// log holds. With SyncNone a power loss can take records the store was
// flushed over (it is derived data: rebuild it); with SyncAlways the store
// only holds fsynced records, so the log lost acknowledged ones and a person
// must look.
func (l *Log) indexAhead(applied, n uint64) (uint64, error) {
	dir := l.cfg.FS.PathJoin(l.dir, datadir.IndexDir)
	if l.cfg.Sync != SyncNone {
		return 0, fmt.Errorf("trail: index store has %d events but the log only %d: acknowledged events are missing "+
			"from the log (run trail verify), or it ran with --sync none; remove %s to rebuild it", applied, n, dir)
	}
	l.cfg.Logger.Warn("rebuilding the index store: it is ahead of the log, whose records past the disk's last sync were lost (sync none)",
		"index_events", applied, "log_events", n)
	if err := l.idx.Close(); err != nil {
		return 0, fmt.Errorf("trail: %w", err)
	}
	idx, err := l.newIndex()
	if err != nil {
		l.idx = nil
		return 0, fmt.Errorf("trail: %w", err)
	}
	l.idx = idx
	return 0, nil
}

func (l *Log) closeFiles() {
	if l.idx != nil {
		l.idx.Close()
	}
	if l.tree != nil {
		l.tree.Close()
	}
	if l.segs != nil {
		l.segs.Close()
	}
	if l.cps != nil {
		l.cps.Close()
	}
	if l.lock != nil {
		l.lock.Close()
	}
}
