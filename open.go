package trail

import (
	"fmt"
	"time"

	"github.com/trailhq/trail/internal/store"
	"github.com/trailhq/trail/internal/store/files"
)

// ErrLocked: another process has the data directory open.
var ErrLocked = files.ErrLocked

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
	begin := time.Now()
	st, replayed, err := files.Open(files.Options{
		FS: cfg.FS, Dir: dir, SegmentSize: cfg.SegmentSize, NoSync: cfg.Sync == SyncNone,
		Origin: cfg.Origin, Logger: cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	l, err := start(st, dir, cfg)
	if err != nil {
		st.Close()
		return nil, err
	}
	cfg.Logger.Info("trail opened", "dir", dir, "events", l.durable.load(),
		"replayed", replayed, "took", time.Since(begin).Round(time.Microsecond))
	return l, nil
}

// OpenStore opens the engine on a store that is already open: a log in
// PostgreSQL (internal/store/postgres, which "trail serve --store" uses) or
// in a data directory. The engine closes the store on Close, and on error.
// Config fields about files (FS, SegmentSize, Origin) are the store's
// business and ignored here.
func OpenStore(st store.Store, cfg Config) (*Log, error) {
	if err := cfg.Validate(); err != nil {
		st.Close()
		return nil, fmt.Errorf("trail: config: %w", err)
	}
	cfg.fill()
	l, err := start(st, "", cfg)
	if err != nil {
		st.Close()
		return nil, err
	}
	cfg.Logger.Info("trail opened", "events", l.durable.load())
	return l, nil
}

// start wires the pipeline on an open store and starts its stages:
//
//	Log/Enqueue/Append ─▶ queue ─▶ sequencer ─▶ commits ─▶ syncer ─▶ receipts
//	                                                          │
//	                                             applies ─────┴─▶ indexer
//	                                             (ticker) ─────▶ checkpointer
//
// The sequencer writes each batch through the store; the syncer makes
// batches durable (durable watermark), resolves their Pendings and queues
// their index entries; the indexer applies them (applied watermark).
func start(st store.Store, dir string, cfg Config) (*Log, error) {
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
	l.st = st
	n := st.Len()
	l.durable.advance(n)
	l.applied.advance(n)
	// A group is at most a quarter of a batch, so that batches come near
	// MaxBatchBytes without passing it by much.
	l.q = newQueue(cfg.QueueSize, 4096, max(cfg.MaxBatchBytes/4, 1))
	l.seq = newSequencer(l)
	if err := l.seq.resumeClock(); err != nil {
		return nil, err
	}
	st.Follow(func(n uint64) {
		l.durable.advance(n)
		l.applied.advance(n)
	})
	go l.seq.run()
	go l.syncer()
	go l.indexer()
	go l.checkpointer()
	return l, nil
}
