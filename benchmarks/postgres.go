package benchmarks

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/internal/bench"
)

// Schema is the table PostgreSQL stores events in: the fields of a Trail
// event, a global order (seq, like Trail's index) and the time recorded, with
// the indexes Trail keeps (id, stream, patient, actor, time). It has no
// per-stream sequence, hash chain or Merkle tree: PostgreSQL does less per
// event than Trail.
const Schema = `
CREATE TABLE events (
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
CREATE INDEX events_stream ON events (stream, seq);
CREATE INDEX events_patient ON events (patient, seq) WHERE patient IS NOT NULL;
CREATE INDEX events_actor ON events (actor_id, seq);
CREATE INDEX events_recorded ON events (recorded);
`

// columns are the columns an event fills, in the order of row's values;
// seq and recorded take their defaults.
var columns = []string{"id", "stream", "time", "type", "action", "outcome", "outcome_desc",
	"actor_id", "actor_name", "actor_role", "actor_address", "actor_user_agent",
	"patient", "entities", "source", "purpose", "details"}

func insertSQL() string {
	ps := make([]string, len(columns))
	for i := range ps {
		ps[i] = fmt.Sprintf("$%d", i+1)
	}
	return "INSERT INTO events (" + strings.Join(columns, ", ") + ") VALUES (" + strings.Join(ps, ", ") + ")"
}

// row is ev as the values of columns, with what Trail fills in when the
// client leaves it out: an id, the time and the outcome.
func row(ev trail.Event, now time.Time) []any {
	id := ev.ID
	if id == "" {
		id = newID(now)
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
	a := ev.Actor
	return []any{id, ev.Stream, t, ev.Type, ev.Action, outcome, orNull(ev.OutcomeDesc),
		a.ID, orNull(a.Name), orNull(a.Role), orNull(a.Address), orNull(a.UserAgent),
		orNull(ev.Patient), entities, source, orNull(ev.Purpose), jsonOrNull(ev.Details)}
}

func orNull(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func jsonOrNull(b json.RawMessage) any {
	if len(b) == 0 {
		return nil
	}
	return string(b)
}

// CreateSchema drops and creates the events table, then checkpoints so that
// a run starts from an empty table with no dirty pages of the one before.
func CreateSchema(ctx context.Context, connString string) error {
	conn, err := pgx.Connect(ctx, connString)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	for _, q := range []string{"DROP TABLE IF EXISTS events", Schema, "CHECKPOINT"} {
		if _, err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("%.40q: %w", strings.TrimSpace(q), err)
		}
	}
	return nil
}

// CountEvents returns how many rows the events table holds.
func CountEvents(ctx context.Context, connString string) (int, error) {
	conn, err := pgx.Connect(ctx, connString)
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	var n int
	err = conn.QueryRow(ctx, "SELECT count(*) FROM events").Scan(&n)
	return n, err
}

// openPool opens a pool of n connections, all connected and with the insert
// prepared before it returns, so that a run measures inserts, not set-up.
func openPool(ctx context.Context, connString string, n int) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(connString)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns, cfg.MinConns = int32(n), int32(n)
	cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		_, err := c.Prepare(ctx, "insert_event", insertSQL())
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

// Insert appends each event with one single-row INSERT in its own
// transaction (autocommit): it returns once PostgreSQL has committed, that is
// flushed the WAL.
type Insert struct {
	pool *pgxpool.Pool
}

var _ bench.Appender = (*Insert)(nil)

// OpenInsert connects conns connections for single-row inserts.
func OpenInsert(ctx context.Context, connString string, conns int) (*Insert, error) {
	pool, err := openPool(ctx, connString, conns)
	if err != nil {
		return nil, err
	}
	return &Insert{pool: pool}, nil
}

// Append implements bench.Appender.
func (p *Insert) Append(ctx context.Context, ev trail.Event) error {
	_, err := p.pool.Exec(ctx, "insert_event", row(ev, time.Now())...)
	if err != nil {
		return fmt.Errorf("insert: %w", err)
	}
	return nil
}

// Log implements bench.Appender. A single-row INSERT has no asynchronous
// form: Log inserts at once and returns a decided Waiter.
func (p *Insert) Log(ev trail.Event) bench.Waiter {
	return decided{p.Append(context.Background(), ev)}
}

// Close closes the connections.
func (p *Insert) Close() { p.pool.Close() }

type decided struct{ err error }

func (d decided) Wait(context.Context) error { return d.err }
