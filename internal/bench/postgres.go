package bench

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trailhq/trail"
)

// PostgreSQL's own writes are the peer of a log kept in PostgreSQL: the same
// events, each stored by PostgreSQL in a table of a Trail event's fields with
// the indexes Trail keeps (the table of the benchmarks module's comparison,
// under a name of its own).

// PGTable is an events table in a database: CreatePGTable makes a throwaway
// one under a unique name, CreatePGTableNamed one under a name of the
// caller's, OpenPGTable names one that exists; Drop removes it.
type PGTable struct {
	URL  string // the database's connection string
	Name string // trail_bench_insert_<random>, or the name given
}

// pgSchema is the table, with %[1]s its name.
const pgSchema = `
CREATE TABLE %[1]s (
	seq              bigserial PRIMARY KEY,
	id               text NOT NULL UNIQUE,
	stream           text NOT NULL,
	time             timestamptz NOT NULL,
	recorded         timestamptz NOT NULL DEFAULT clock_timestamp(),
	type             text NOT NULL,
	action           text NOT NULL,
	outcome          text NOT NULL,
	outcome_desc     text,
	actor_id         text NOT NULL,
	actor_name       text,
	actor_role       text,
	actor_address    text,
	actor_user_agent text,
	patient          text,
	entities         jsonb,
	source           jsonb,
	purpose          text,
	details          jsonb
);
CREATE INDEX ON %[1]s (stream, seq);
CREATE INDEX ON %[1]s (patient, seq) WHERE patient IS NOT NULL;
CREATE INDEX ON %[1]s (actor_id, seq);
CREATE INDEX ON %[1]s (recorded);
`

// CreatePGTable creates a new events table with a random name in the
// database url names; it touches nothing else there.
func CreatePGTable(ctx context.Context, url string) (*PGTable, error) {
	var b [6]byte
	rand.Read(b[:])
	return CreatePGTableNamed(ctx, url, "trail_bench_insert_"+hex.EncodeToString(b[:]))
}

// CreatePGTableNamed creates the events table name in the database url names;
// it fails if a relation of that name exists.
func CreatePGTableNamed(ctx context.Context, url, name string) (*PGTable, error) {
	t := OpenPGTable(url, name)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, fmt.Sprintf(pgSchema, t.ident())); err != nil {
		return nil, fmt.Errorf("create table %s: %w", t.Name, err)
	}
	return t, nil
}

// OpenPGTable is the events table name in the database url names, as
// CreatePGTableNamed made it; it connects to nothing.
func OpenPGTable(url, name string) *PGTable { return &PGTable{URL: url, Name: name} }

func (t *PGTable) ident() string { return pgx.Identifier{t.Name}.Sanitize() }

// Count returns how many rows the table holds.
func (t *PGTable) Count(ctx context.Context) (int64, error) {
	conn, err := pgx.Connect(ctx, t.URL)
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	var n int64
	err = conn.QueryRow(ctx, "SELECT count(*) FROM "+t.ident()).Scan(&n)
	return n, err
}

// RelationBytes returns what table takes in the database at url: its rows
// (with TOAST) and its indexes, after a VACUUM ANALYZE settles the free
// space map.
func RelationBytes(ctx context.Context, url, table string) (rows, indexes int64, err error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close(ctx)
	id := pgx.Identifier{table}.Sanitize()
	if _, err := conn.Exec(ctx, "VACUUM ANALYZE "+id); err != nil {
		return 0, 0, err
	}
	err = conn.QueryRow(ctx, "SELECT pg_table_size($1::regclass), pg_indexes_size($1::regclass)", id).Scan(&rows, &indexes)
	return rows, indexes, err
}

// Drop drops the table (with its indexes).
func (t *PGTable) Drop(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, t.URL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP TABLE IF EXISTS "+t.ident()); err != nil {
		return fmt.Errorf("drop table %s: %w", t.Name, err)
	}
	return nil
}

// pgColumns are the columns an event fills, in the order of pgRow's values;
// seq and recorded take their defaults.
var pgColumns = []string{"id", "stream", "time", "type", "action", "outcome", "outcome_desc",
	"actor_id", "actor_name", "actor_role", "actor_address", "actor_user_agent",
	"patient", "entities", "source", "purpose", "details"}

// pgRow is ev as the values of pgColumns, with what Trail fills in when the
// client leaves it out: an id (a UUIDv7, as Trail assigns), the time and the
// outcome.
func pgRow(ev trail.Event, now time.Time) []any {
	id := ev.ID
	if id == "" {
		id = uuid7(now)
	}
	t := ev.Time
	if t.IsZero() {
		t = now
	}
	outcome := ev.Outcome
	if outcome == "" {
		outcome = trail.OutcomeSuccess
	}
	var entities, source any
	if len(ev.Entities) > 0 {
		entities, _ = json.Marshal(ev.Entities)
	}
	if ev.Source != nil {
		source, _ = json.Marshal(ev.Source)
	}
	orNull := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	var details any
	if len(ev.Details) > 0 {
		details = string(ev.Details)
	}
	a := ev.Actor
	return []any{id, ev.Stream, t, ev.Type, ev.Action, outcome, orNull(ev.OutcomeDesc),
		a.ID, orNull(a.Name), orNull(a.Role), orNull(a.Address), orNull(a.UserAgent),
		orNull(ev.Patient), entities, source, orNull(ev.Purpose), details}
}

// uuid7 returns a UUIDv7 (RFC 9562) as text. Its time prefix keeps the
// unique index on id appending at its right edge, as Trail's ids do.
func uuid7(now time.Time) string {
	var u [16]byte
	rand.Read(u[6:])
	ms := uint64(now.UnixMilli())
	binary.BigEndian.PutUint16(u[0:2], uint16(ms>>32))
	binary.BigEndian.PutUint32(u[2:6], uint32(ms))
	u[6] = u[6]&0x0f | 0x70
	u[8] = u[8]&0x3f | 0x80
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// openPGPool opens n connections with synchronous_commit on (a commit
// returns once its WAL is flushed, whatever the database's default), all
// connected and with the insert prepared before it returns, so that a run
// measures inserts, not set-up.
func openPGPool(ctx context.Context, t *PGTable, n int) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(t.URL)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns, cfg.MinConns = int32(n), int32(n)
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
	ps := make([]string, len(pgColumns))
	for i := range ps {
		ps[i] = fmt.Sprintf("$%d", i+1)
	}
	insert := "INSERT INTO " + t.ident() + " (" + strings.Join(pgColumns, ", ") + ") VALUES (" + strings.Join(ps, ", ") + ")"
	cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		_, err := c.Prepare(ctx, "insert_event", insert)
		return err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	conns := make([]*pgxpool.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Release()
		}
	}()
	for range n {
		c, err := pool.Acquire(ctx)
		if err != nil {
			pool.Close()
			return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
		}
		conns = append(conns, c)
	}
	return pool, nil
}

// PGInsert appends each event with one single-row INSERT in its own
// transaction (autocommit): it returns once PostgreSQL has committed.
type PGInsert struct {
	pool *pgxpool.Pool
}

var _ Appender = (*PGInsert)(nil)

// OpenPGInsert connects conns connections for single-row inserts into t.
func OpenPGInsert(ctx context.Context, t *PGTable, conns int) (*PGInsert, error) {
	pool, err := openPGPool(ctx, t, conns)
	if err != nil {
		return nil, err
	}
	return &PGInsert{pool: pool}, nil
}

// Append implements Appender.
func (p *PGInsert) Append(ctx context.Context, ev trail.Event) error {
	if _, err := p.pool.Exec(ctx, "insert_event", pgRow(ev, time.Now())...); err != nil {
		return fmt.Errorf("insert: %w", err)
	}
	return nil
}

// Log implements Appender. A single-row INSERT has no asynchronous form: Log
// inserts at once and returns a decided Waiter.
func (p *PGInsert) Log(ev trail.Event) Waiter {
	return decided{p.Append(context.Background(), ev)}
}

// Close closes the connections.
func (p *PGInsert) Close() { p.pool.Close() }

type decided struct{ err error }

func (d decided) Wait(context.Context) error { return d.err }

// PGCopy appends events in batches, one COPY per batch in its own
// transaction, over a few connections at once: PostgreSQL's fastest durable
// bulk path. Log returns at once while a batch fills; it waits
// (backpressure) while every connection is busy and as many full batches as
// connections wait. A batch is sent when it holds batchSize events, or
// linger after its first event.
type PGCopy struct {
	pool      *pgxpool.Pool
	table     string
	batchSize int
	linger    time.Duration

	mu     sync.Mutex
	cur    *pgBatch
	closed bool
	full   chan *pgBatch
	wg     sync.WaitGroup
}

var _ Appender = (*PGCopy)(nil)

// pgBatch is one COPY; every event in it has the same outcome.
type pgBatch struct {
	rows [][]any
	done chan struct{}
	err  error
}

func (b *pgBatch) Wait(ctx context.Context) error {
	select {
	case <-b.done:
		return b.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ErrPGCopyClosed is what PGCopy's Log answers after Close.
var ErrPGCopyClosed = errors.New("copy: closed")

// OpenPGCopy connects conns connections, each running one COPY of up to
// batchSize events into t at a time.
func OpenPGCopy(ctx context.Context, t *PGTable, conns, batchSize int, linger time.Duration) (*PGCopy, error) {
	pool, err := openPGPool(ctx, t, conns)
	if err != nil {
		return nil, err
	}
	c := &PGCopy{pool: pool, table: t.Name, batchSize: batchSize, linger: linger, full: make(chan *pgBatch, conns)}
	for range conns {
		c.wg.Add(1)
		go c.worker()
	}
	return c, nil
}

func (c *PGCopy) worker() {
	defer c.wg.Done()
	for b := range c.full {
		_, err := c.pool.CopyFrom(context.Background(), pgx.Identifier{c.table}, pgColumns, pgx.CopyFromRows(b.rows))
		if err != nil {
			b.err = fmt.Errorf("copy %d events: %w", len(b.rows), err)
		}
		close(b.done)
	}
}

// Log implements Appender.
func (c *PGCopy) Log(ev trail.Event) Waiter {
	r := pgRow(ev, time.Now())
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return decided{ErrPGCopyClosed}
	}
	b := c.cur
	if b == nil {
		b = &pgBatch{rows: make([][]any, 0, c.batchSize), done: make(chan struct{})}
		c.cur = b
		time.AfterFunc(c.linger, func() { c.sendIfCurrent(b) })
	}
	b.rows = append(b.rows, r)
	if len(b.rows) < c.batchSize {
		c.mu.Unlock()
		return b
	}
	c.cur = nil
	// Send while holding mu: Close then cannot close full under a sender,
	// and callers queue behind a busy pool (backpressure).
	c.full <- b
	c.mu.Unlock()
	return b
}

func (c *PGCopy) sendIfCurrent(b *pgBatch) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == b && !c.closed {
		c.cur = nil
		c.full <- b
	}
}

// Append implements Appender.
func (c *PGCopy) Append(ctx context.Context, ev trail.Event) error {
	return c.Log(ev).Wait(ctx)
}

// Close sends the batch still filling, waits for every COPY and closes the
// connections.
func (c *PGCopy) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	if c.cur != nil {
		c.full <- c.cur
		c.cur = nil
	}
	close(c.full)
	c.mu.Unlock()
	c.wg.Wait()
	c.pool.Close()
}
