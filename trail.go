package trail

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/trailhq/trail/internal/store"
)

// Log is the embedded engine: an append-only, tamper-evident audit log. It
// is safe for concurrent use.
//
// The write path: Log puts the event on a bounded queue (queue.go); one
// sequencer goroutine takes everything queued, assigns index, stream_seq,
// prev, recorded and ids, and has the store write the batch with one write
// (sequencer.go); one syncer goroutine makes it durable and resolves every
// waiter of the batch (syncer.go). The indexes and the signed checkpoints
// follow off the acknowledgement path (indexer.go, checkpointer.go). The
// stages are wired in one place (start, in open.go).
type Log struct {
	cfg Config
	dir string
	st  store.Store // the records, tree, checkpoints and indexes (internal/store)

	q         *queue
	seq       *sequencer
	cpMu      sync.Mutex // one checkpoint at a time
	syncHist  *histogram // fsync latency, seconds
	batchHist *histogram // events per fsync

	queries     atomic.Int64  // queries running (Query)
	queryReads  atomic.Uint64 // records queries have read, matching or not
	headsCached atomic.Int64  // stream heads the sequencer holds (Stats)

	commits chan *commit // sequencer → syncer
	applies *indexQueue  // syncer → indexer

	durable    *watermark    // events fsynced and acknowledged (syncer → everyone)
	applied    *watermark    // events reflected in the index store (indexer → readers)
	readers    atomic.Int32  // readers waiting for the index store (waitApplied)
	indexKick  chan struct{} // capacity 1: a reader waits; the indexer stops lingering
	failure    atomic.Pointer[FailedError]
	seqBusy    atomic.Bool // the sequencer is building a batch the syncer may wait for
	readMu     sync.RWMutex
	readClosed bool // guarded by readMu: the files are closed

	closeOnce sync.Once
	closing   chan struct{} // closed when Close begins
	seqDone   chan struct{}
	syncDone  chan struct{}
	idxDone   chan struct{}
	cpDone    chan struct{}
	closeErr  error
}

// Log hands ev to the engine and returns at once with a Pending receipt. It
// never blocks on disk: when the queue is full the Pending fails with
// ErrBufferFull (use Enqueue to wait for room instead).
func (l *Log) Log(ev Event) *Pending {
	p := &Pending{ev: ev}
	if err := l.q.put(context.Background(), p, false); err != nil {
		l.q.refuse(p, err)
	}
	return p
}

// Enqueue is Log, but waits under ctx for room when the queue is full.
func (l *Log) Enqueue(ctx context.Context, ev Event) (*Pending, error) {
	p := &Pending{ev: ev}
	if err := l.q.put(ctx, p, true); err != nil {
		return nil, err
	}
	return p, nil
}

// Append logs ev, waiting for room if needed, and waits for its receipt.
// Since the caller waits anyway, it validates and encodes the event itself,
// in parallel with other callers, and an invalid event never enters the
// queue.
func (l *Log) Append(ctx context.Context, ev Event) (Receipt, error) {
	// One allocation for the Pending and its prepared event.
	c := &struct {
		p    Pending
		prep prepared
	}{p: Pending{ev: ev}}
	p := &c.p
	c.prep, _ = prepareEvent(&p.ev, nil)
	if c.prep.err != nil {
		return Receipt{}, c.prep.err
	}
	p.prep = &c.prep
	if err := l.q.put(ctx, p, true); err != nil {
		return Receipt{}, err
	}
	return p.Wait(ctx)
}

// LogBatch hands an atomic batch to the engine: after Wait, every event is
// stored (receipts in order) or none is (a *BatchError names the first bad
// event). It validates and encodes the events in the caller's goroutine,
// then waits under ctx for room in the queue.
func (l *Log) LogBatch(ctx context.Context, evs []Event) (BatchPending, error) {
	if len(evs) == 0 {
		return BatchPending{}, errors.New("trail: empty batch")
	}
	return l.logBatch(ctx, evs, false)
}

func (l *Log) logBatch(ctx context.Context, evs []Event, reserved bool) (BatchPending, error) {
	p := &Pending{batch: &batchReq{evs: slices.Clone(evs)}}
	prepareBatch(p.batch, reserved)
	if err := l.q.put(ctx, p, true); err != nil {
		return BatchPending{}, err
	}
	return BatchPending{p}, nil
}

// AppendReserved stores events of Trail's own streams (under trail/, such as
// the record of every read in trail/access) atomically, like AppendBatch.
// Every event must be in a reserved stream. The HTTP API never lets a
// client append there; an application embedding the engine is trusted.
func (l *Log) AppendReserved(ctx context.Context, evs []Event) ([]Receipt, error) {
	if len(evs) == 0 {
		return nil, errors.New("trail: empty batch")
	}
	b, err := l.logBatch(ctx, evs, true)
	if err != nil {
		return nil, err
	}
	return b.Wait(ctx)
}

// AppendBatch stores evs atomically and returns their receipts in order.
func (l *Log) AppendBatch(ctx context.Context, evs []Event) ([]Receipt, error) {
	b, err := l.LogBatch(ctx, evs)
	if err != nil {
		return nil, err
	}
	return b.Wait(ctx)
}

// Err returns why the engine stopped acknowledging, or nil while it works.
func (l *Log) Err() error {
	if f := l.failure.Load(); f != nil {
		return f
	}
	return nil
}

// fail stops the engine after a storage error: nothing more is acknowledged
// and the queue refuses new events. The first cause wins.
func (l *Log) fail(cause error) *FailedError {
	f := &FailedError{Cause: cause}
	if l.failure.CompareAndSwap(nil, f) {
		l.cfg.Logger.Error("storage failure: no longer acknowledging events; restart to recover", "err", cause)
		l.st.Fail(f)
		l.q.close(f)
		l.durable.wake()
		l.applied.wake()
		return f
	}
	return l.failure.Load()
}

// Close stops accepting events, stores every event already accepted (or
// resolves it with the reason it was not), writes a final checkpoint and
// closes the files. Events logged after Close began fail with ErrClosed.
func (l *Log) Close(ctx context.Context) error {
	l.closeOnce.Do(func() {
		l.q.close(ErrClosed)
		close(l.closing)
		select {
		case l.q.kick <- struct{}{}:
		default:
		}
		l.closeErr = l.waitStopped(ctx)
	})
	return l.closeErr
}

func (l *Log) waitStopped(ctx context.Context) error {
	for _, ch := range []chan struct{}{l.seqDone, l.syncDone, l.idxDone, l.cpDone} {
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("trail: close: %w", ctx.Err())
		}
	}
	var errs []error
	if l.Err() == nil {
		if err := l.checkpoint(); err != nil {
			errs = append(errs, err)
		}
	}
	// Wait for reads in progress, and make later ones fail with ErrClosed
	// instead of touching closed files.
	l.readMu.Lock()
	l.readClosed = true
	l.readMu.Unlock()
	errs = append(errs, l.st.Close())
	return errors.Join(errs...)
}

// storeFailed resolves a store error: ErrUnavailable (a database out of
// reach for a while) fails only the batch at hand, as callers retry with
// the same ids; any other error stops the engine.
func (l *Log) storeFailed(err error) error {
	if errors.Is(err, store.ErrUnavailable) {
		return err
	}
	return l.fail(err)
}

// storeErr returns err, and fails the engine when the store has failed (a
// write error in a read path, say: the tree's buffered hashes could not be
// written).
func (l *Log) storeErr(err error) error {
	if err == nil {
		return nil
	}
	if serr := l.st.Err(); serr != nil {
		return l.fail(serr)
	}
	return err
}

// beginRead admits a read of the files unless Close has closed them; call
// endRead when done.
func (l *Log) beginRead() error {
	l.readMu.RLock()
	if l.readClosed {
		l.readMu.RUnlock()
		return ErrClosed
	}
	return nil
}

func (l *Log) endRead() { l.readMu.RUnlock() }
