package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/transparency-dev/merkle/compact"

	"github.com/trailhq/trail/event"
	"github.com/trailhq/trail/internal/store"
)

// A batch drives its transaction with plain BEGIN and COMMIT statements
// queued with its other statements, so that it costs few round trips while
// it holds the sequencing lock:
//
//	Begin: BEGIN, the lock and the log's end, in one round trip (and the
//	       tree's border when another process appended);
//	Write: the rows, the tree nodes, the notification and COMMIT, sent at
//	       once; Sync reads their results, COMMIT's last (a large batch
//	       copies its rows first, a round trip each for them and the
//	       nodes).
//
// The statements of one send are one pipeline ending in one Sync message:
// after an error the server skips the rest, COMMIT too, and the transaction
// is left aborted, to be rolled back (or the connection closed, which rolls
// it back).

const (
	endSQL    = "SELECT idx, recorded FROM trail_events ORDER BY idx DESC LIMIT 1"
	eventsSQL = `INSERT INTO trail_events (idx, id, stream, stream_seq, recorded, patient, actor, type, action, outcome, more, record, leaf)
	SELECT * FROM unnest($1::int8[], $2::text[], $3::text[], $4::int8[], $5::text[], $6::text[], $7::text[], $8::text[],
		$9::text[], $10::text[], $11::bool[], $12::bytea[], $13::bytea[])`
	treeSQL = "INSERT INTO trail_tree (level, idx, hash) SELECT * FROM unnest($1::int2[], $2::int8[], $3::bytea[])"
	// sinceSQL reads what other processes appended since this one's last
	// batch: under the lock, every record from the end this process knew.
	sinceSQL = "SELECT idx, stream, stream_seq, leaf FROM trail_events WHERE idx >= $1 ORDER BY idx LIMIT $2"
	// maxCatchUp bounds the records Begin reads to catch up; past it the
	// sequencer forgets what it cached and the tree's border is read.
	maxCatchUp = 4096
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
	s.mu.Lock()
	dirty, expect, rng := s.dirty, s.expect, s.rng
	s.mu.Unlock()
	// When this process's view of the log is sound, what others appended
	// since is read with the end, in the same round trip.
	catchUp := !dirty && rng != nil && rng.End() == expect
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue("SELECT pg_advisory_xact_lock($1)", int64(lockSequence))
	b.Queue(endSQL)
	if catchUp {
		b.Queue(sinceSQL, int64(expect), maxCatchUp+1)
	}
	br := conn.SendBatch(ctx, b)
	_, err = br.Exec()
	if err == nil {
		_, err = br.Exec()
	}
	var n uint64
	var last string
	if err == nil {
		var idx int64
		err = br.QueryRow().Scan(&idx, &last)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			err = nil
		case err == nil:
			n = uint64(idx) + 1
		}
	}
	var since []appended
	if err == nil && catchUp {
		since, err = readAppended(br)
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		rollback(conn)
		s.setDirty()
		return store.Begun{}, s.classify("begin a batch", err)
	}
	s.mu.Lock()
	dirty = dirty || s.dirty // set meanwhile, too
	s.dirty = false
	s.mu.Unlock()
	changed := dirty || n != expect
	var moved map[string]store.Head
	if changed && !dirty && catchUp && n > expect && uint64(len(since)) == n-expect {
		// Only others appended, and all of it was read: the border
		// grows by their leaves, and the sequencer keeps its caches.
		if rng, moved, err = catchUpWith(rng, since); err == nil {
			changed = false
		}
	}
	if changed || rng == nil || rng.End() != n {
		if rng, err = s.border(ctx, conn, n); err != nil {
			rollback(conn)
			s.setDirty()
			return store.Begun{}, s.classify("read the tree", err)
		}
	}
	s.cur = &batchTx{conn: conn, rng: rng}
	s.curLen = n
	return store.Begun{Changed: changed, LastRecorded: last, Moved: moved}, nil
}

// appended is a record another process appended, as Begin catches up.
type appended struct {
	idx, seq int64
	stream   string
	leaf     []byte
}

func readAppended(br pgx.BatchResults) ([]appended, error) {
	rows, err := br.Query()
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []appended
	for rows.Next() {
		var a appended
		if err := rows.Scan(&a.idx, &a.stream, &a.seq, &a.leaf); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// catchUpWith returns the border rng grown by the leaves of since (records
// from rng's end on, in order) and the heads of the streams they moved.
func catchUpWith(rng *compact.Range, since []appended) (*compact.Range, map[string]store.Head, error) {
	next := factory.NewEmptyRange(0)
	if err := next.AppendRange(rng, nil); err != nil {
		return nil, nil, err
	}
	moved := make(map[string]store.Head)
	for k, a := range since {
		if uint64(a.idx) != rng.End()+uint64(k) || len(a.leaf) != 32 {
			return nil, nil, fmt.Errorf("trail: postgres: record %d read at %d catching up from %d", a.idx, k, rng.End())
		}
		if err := next.Append(a.leaf, nil); err != nil {
			return nil, nil, err
		}
		h := store.Head{Seq: uint64(a.seq), Index: uint64(a.idx)}
		copy(h.LeafHash[:], a.leaf)
		moved[a.stream] = h
	}
	return next, moved, nil
}

// rollback ends conn's transaction, if any, and returns conn to the pool,
// which closes it instead when the transaction could not be ended (the
// session's end rolls it back and frees the lock).
func rollback(conn *pgxpool.Conn) {
	c := conn.Conn()
	if !c.IsClosed() && !c.PgConn().IsBusy() && c.PgConn().TxStatus() != 'I' {
		c.Exec(context.Background(), "ROLLBACK")
	}
	conn.Release()
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
		rollback(c.conn)
	}
}

// copyAbove is the batch size above which a batch's rows go by COPY
// rather than INSERT ... SELECT FROM unnest: COPY costs a round trip more,
// and its rows are cheaper on the server.
var copyAbove = 1024

// eventColumns are the columns of trail_events, in COPY order.
var eventColumns = []string{"idx", "id", "stream", "stream_seq", "recorded", "patient", "actor", "type", "action", "outcome", "more", "record", "leaf"}

// batchRows are a batch's rows of trail_events, a column each.
type batchRows struct {
	idx, seq                                          []int64
	id, stream, recorded, actor, typ, action, outcome []string
	patient                                           []*string
	more                                              []bool
	record, leaf                                      [][]byte
}

// Write sends the batch's rows and the tree nodes its leaves complete, the
// notification of the other processes and the COMMIT, without waiting:
// Sync reads the outcome.
func (s *Store) Write(b *store.Batch) (store.Commit, error) {
	c := s.cur
	if c == nil {
		return nil, s.fail(errors.New("trail: postgres: Write without Begin"))
	}
	if err := s.Err(); err != nil {
		s.Abort()
		return nil, err
	}
	if b.First != s.curLen || len(b.Entries) != b.Len() || len(b.Leaves) != b.Len() {
		s.Abort()
		return nil, s.fail(fmt.Errorf("trail: postgres: a batch of %d records at %d (with %d entries, %d leaves) does not follow the log's end %d",
			b.Len(), b.First, len(b.Entries), len(b.Leaves), s.curLen))
	}
	n := b.Len()
	r := batchRows{
		idx: make([]int64, n), seq: make([]int64, n),
		id: make([]string, n), stream: make([]string, n), recorded: make([]string, n), actor: make([]string, n),
		typ: make([]string, n), action: make([]string, n), outcome: make([]string, n),
		patient: make([]*string, n), more: make([]bool, n), record: make([][]byte, n), leaf: b.Leaves,
	}
	for k := range n {
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
		if e.Patient != "" {
			r.patient[k] = &e.Patient
		}
		r.idx[k], r.id[k], r.stream[k], r.seq[k], r.recorded[k] = int64(b.First)+int64(k), e.ID, e.Stream, int64(e.Seq), h.Recorded
		r.actor[k], r.typ[k], r.action[k], r.outcome[k], r.more[k], r.record[k] = e.Actor, e.Type, e.Action, e.Outcome, more, rec
	}
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
	var levels []int16
	var idxs []int64
	var hashes [][]byte
	for _, leaf := range b.Leaves {
		err := next.Append(leaf, func(id compact.NodeID, hash []byte) {
			if id.Level > 0 {
				levels, idxs, hashes = append(levels, int16(id.Level)), append(idxs, int64(id.Index)), append(hashes, hash)
			}
		})
		if err != nil {
			s.Abort()
			return nil, s.fail(err)
		}
	}
	end := b.First + uint64(n)
	ctx := context.Background()
	q := &pgx.Batch{}
	c.inserts = c.inserts[:0]
	if n > copyAbove {
		// A large batch: COPY costs a round trip more, and less than
		// unnest's arrays on the server.
		_, err := c.conn.Conn().CopyFrom(ctx, pgx.Identifier{"trail_events"}, eventColumns, pgx.CopyFromSlice(n, func(k int) ([]any, error) {
			return []any{r.idx[k], r.id[k], r.stream[k], r.seq[k], r.recorded[k], r.patient[k],
				r.actor[k], r.typ[k], r.action[k], r.outcome[k], r.more[k], r.record[k], r.leaf[k]}, nil
		}))
		if err == nil && len(levels) > 0 {
			_, err = c.conn.Conn().CopyFrom(ctx, pgx.Identifier{"trail_tree"}, []string{"level", "idx", "hash"}, pgx.CopyFromSlice(len(levels), func(k int) ([]any, error) {
				return []any{levels[k], idxs[k], hashes[k]}, nil
			}))
		}
		if err != nil {
			s.Abort()
			s.setDirty()
			return nil, s.classify("write a batch", err)
		}
	} else {
		q.Queue(eventsSQL, r.idx, r.id, r.stream, r.seq, r.recorded, r.patient, r.actor, r.typ, r.action, r.outcome, r.more, r.record, r.leaf)
		c.inserts = append(c.inserts, int64(n))
		if len(levels) > 0 {
			q.Queue(treeSQL, levels, idxs, hashes)
			c.inserts = append(c.inserts, int64(len(levels)))
		}
	}
	q.Queue("SELECT pg_notify('trail_log', $1)", strconv.FormatUint(end, 10))
	q.Queue("COMMIT")
	c.results = c.conn.SendBatch(ctx, q)
	c.end, c.rng, c.done = end, next, make(chan struct{})
	s.cur, s.lastWritten = nil, c
	return c, nil
}

// finish reads the outcome of a written batch: its rows, its tree nodes,
// the notification and COMMIT. The batch is in the log only if COMMIT
// returned and left the session outside a transaction.
func (c *batchTx) finish() error {
	br := c.results
	var err error
	for _, want := range c.inserts {
		tag, ierr := br.Exec()
		if err = ierr; err == nil && tag.RowsAffected() != want {
			err = fmt.Errorf("%d rows inserted, not %d", tag.RowsAffected(), want)
		}
		if err != nil {
			break
		}
	}
	if err == nil {
		_, err = br.Exec()
	}
	if err == nil {
		// COMMIT of a transaction that failed answers ROLLBACK.
		if tag, cerr := br.Exec(); cerr != nil {
			err = cerr
		} else if tag.String() != "COMMIT" {
			err = fmt.Errorf("COMMIT answered %s", tag)
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err == nil && c.conn.Conn().PgConn().TxStatus() != 'I' {
		err = errors.New("the transaction is still open after COMMIT")
	}
	return err
}

// Sync reads the outcome of the batches' COMMITs (one at a time is in
// flight: the sequencing lock is held until COMMIT). A COMMIT that fails
// leaves the batch's outcome unknown to this process: ErrUnavailable when
// the database was out of reach, and the next Begin reads the log afresh.
// A store that failed meanwhile gives no batch's receipts, though the
// batch may be in the log.
func (s *Store) Sync(cs []store.Commit) error {
	for _, x := range cs {
		c, _ := x.(*batchTx)
		if c == nil {
			continue
		}
		err := c.finish()
		if err != nil {
			err = s.classify("commit a batch", err)
		} else {
			err = s.Err()
		}
		rollback(c.conn)
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
