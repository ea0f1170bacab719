package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/transparency-dev/merkle/compact"

	"github.com/trailhq/trail/event"
	"github.com/trailhq/trail/internal/store"
)

// Begin opens the batch's transaction and takes the sequencing lock, which
// it holds until Sync or Abort, then reads the log's end. Changed says that
// another process appended since this one's last batch, or that batch
// failed.
func (s *Store) Begin(ctx context.Context) (store.Begun, error) {
	// The previous batch's outcome first: until its COMMIT returns, this
	// process does not know whether the log holds it (a COMMIT that fails
	// frees the lock as its session ends, and the next batch must not
	// take the rolled-back batch's heads for granted).
	if c := s.lastWritten; c != nil {
		s.lastWritten = nil
		<-c.done
	}
	if err := s.Err(); err != nil {
		return store.Begun{}, err
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		s.setDirty()
		return store.Begun{}, s.classify("connect", err)
	}
	tx, err := conn.Begin(ctx)
	if err == nil {
		_, err = tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(lockSequence))
	}
	var n uint64
	var last string
	if err == nil {
		n, last, err = s.end(ctx, tx)
	}
	if err != nil {
		if tx != nil {
			tx.Rollback(context.Background())
		}
		conn.Release()
		s.setDirty()
		return store.Begun{}, s.classify("begin a batch", err)
	}
	s.mu.Lock()
	changed := s.dirty || n != s.expect
	s.dirty = false
	rng := s.rng
	s.mu.Unlock()
	if changed || rng == nil || rng.End() != n {
		if rng, err = s.border(ctx, tx, n); err != nil {
			tx.Rollback(context.Background())
			conn.Release()
			s.setDirty()
			return store.Begun{}, s.classify("read the tree", err)
		}
	}
	s.cur = &batchTx{conn: conn, tx: tx, rng: rng}
	s.curLen = n
	return store.Begun{Changed: changed, LastRecorded: last}, nil
}

func (s *Store) setDirty() {
	s.mu.Lock()
	s.dirty = true
	s.mu.Unlock()
}

// border reads the compact range [0, n): the roots of the perfect subtrees
// that make up the tree of size n.
func (s *Store) border(ctx context.Context, q querier, n uint64) (*compact.Range, error) {
	ids := compact.RangeNodes(0, n, nil)
	hashes, err := s.nodes(ctx, q, ids)
	if err != nil {
		return nil, err
	}
	return factory.NewRange(0, n, hashes)
}

// Abort rolls the batch's transaction back.
func (s *Store) Abort() {
	if c := s.cur; c != nil {
		s.cur = nil
		c.tx.Rollback(context.Background())
		c.conn.Release()
	}
}

// eventColumns are the columns of trail_events, in COPY order.
var eventColumns = []string{"idx", "id", "stream", "stream_seq", "recorded", "patient", "actor", "type", "action", "outcome", "more", "record", "leaf"}

// Write copies the batch's rows and the tree nodes its leaves complete into
// the batch's transaction, and notifies the other processes at COMMIT.
func (s *Store) Write(b *store.Batch) (store.Commit, error) {
	c := s.cur
	if c == nil {
		return nil, s.fail(errors.New("trail: postgres: Write without Begin"))
	}
	if err := s.Err(); err != nil {
		s.Abort()
		return nil, err
	}
	ctx := context.Background()
	if b.First != s.curLen || len(b.Entries) != b.Len() || len(b.Leaves) != b.Len() {
		s.Abort()
		return nil, s.fail(fmt.Errorf("trail: postgres: a batch of %d records at %d (with %d entries, %d leaves) does not follow the log's end %d",
			b.Len(), b.First, len(b.Entries), len(b.Leaves), s.curLen))
	}
	rows := make([][]any, b.Len())
	for k := range rows {
		rec, more, err := b.Record(k)
		if err != nil {
			s.Abort()
			return nil, s.fail(fmt.Errorf("trail: postgres: record %d of the batch: %w", k, err))
		}
		h, err := event.ParseHeader(rec)
		if err != nil {
			s.Abort()
			return nil, s.fail(fmt.Errorf("trail: postgres: record %d of the batch: %w", k, err))
		}
		e := &b.Entries[k]
		var patient any
		if e.Patient != "" {
			patient = e.Patient
		}
		rows[k] = []any{int64(b.First) + int64(k), e.ID, e.Stream, int64(e.Seq), h.Recorded, patient,
			e.Actor, e.Type, e.Action, e.Outcome, more, rec, b.Leaves[k]}
	}
	var nodes [][]any
	rng := c.rng
	if rng == nil || rng.End() != b.First {
		s.Abort()
		return nil, s.fail(fmt.Errorf("trail: postgres: the tree's border is not at %d", b.First))
	}
	// The range advances on a copy: a batch that is not committed leaves
	// the border as it was (and the next Begin reads it again anyway).
	next := factory.NewEmptyRange(0)
	if err := next.AppendRange(rng, nil); err != nil {
		s.Abort()
		return nil, s.fail(err)
	}
	for _, leaf := range b.Leaves {
		err := next.Append(leaf, func(id compact.NodeID, hash []byte) {
			if id.Level > 0 {
				nodes = append(nodes, []any{int16(id.Level), int64(id.Index), hash})
			}
		})
		if err != nil {
			s.Abort()
			return nil, s.fail(err)
		}
	}
	end := b.First + uint64(b.Len())
	_, err := c.tx.CopyFrom(ctx, pgx.Identifier{"trail_events"}, eventColumns, pgx.CopyFromRows(rows))
	if err == nil && len(nodes) > 0 {
		_, err = c.tx.CopyFrom(ctx, pgx.Identifier{"trail_tree"}, []string{"level", "idx", "hash"}, pgx.CopyFromRows(nodes))
	}
	if err == nil {
		_, err = c.tx.Exec(ctx, "SELECT pg_notify('trail_log', $1)", fmt.Sprint(end))
	}
	if err != nil {
		s.Abort()
		s.setDirty()
		return nil, s.classify("write a batch", err)
	}
	c.end, c.rng, c.done = end, next, make(chan struct{})
	s.cur, s.lastWritten = nil, c
	return c, nil
}

// Sync commits the batches' transactions (one at a time is in flight: the
// sequencing lock is held until COMMIT). A COMMIT that fails leaves the
// batch's outcome unknown to this process: ErrUnavailable when the database
// was out of reach, and the next Begin reads the log afresh.
func (s *Store) Sync(cs []store.Commit) error {
	for _, x := range cs {
		c, _ := x.(*batchTx)
		if c == nil {
			continue
		}
		err := s.Err()
		if err == nil {
			err = c.tx.Commit(context.Background())
			if err != nil {
				err = s.classify("commit a batch", err)
			}
		} else {
			c.tx.Rollback(context.Background())
		}
		c.conn.Release()
		if err != nil {
			s.setDirty()
			close(c.done)
			return err
		}
		s.mu.Lock()
		s.expect, s.rng = c.end, c.rng
		s.mu.Unlock()
		close(c.done)
		s.committed(c.end)
	}
	return nil
}

// Apply does nothing: a batch's index rows are its event rows, committed
// with them.
func (s *Store) Apply([]store.Entry, uint64) error { return s.Err() }
