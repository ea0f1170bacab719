// Package postgres keeps a Trail log in PostgreSQL, so that several Trail
// processes serve one log and the log inherits the database's replication,
// failover and backups.
//
// Tables (migrations/, applied at Open): trail_events holds one row per event
// (the stored bytes, the leaf hash and the indexed fields), trail_tree the
// Merkle tree's perfect subtrees above the leaves, trail_checkpoints the
// signed checkpoints, trail_log the log's origin and verifier key. Rows are
// only inserted, never updated or deleted: the role Trail serves with needs
// SELECT and INSERT only.
//
// Ordering across processes. A batch holds a transaction-scoped advisory lock
// from Begin to its COMMIT (Sync) or rollback, so the processes' batches are
// serialised: each reads the log's end under the lock, so indexes, stream_seq
// (also UNIQUE (stream, stream_seq)) and recorded times follow on from the
// previous batch whoever wrote it, and an id is stored once (also UNIQUE
// (id)). A batch's rows and tree nodes are written in its one transaction.
//
// Durability. Every session runs with synchronous_commit on, so a receipt,
// given after COMMIT returns, names an event the database has flushed (and,
// with synchronous replication configured, replicated). When the database
// cannot be reached — restarting, failing over — the batch in flight fails
// with store.ErrUnavailable: its outcome may be unknown, callers retry with
// the same ids, and the next batch reads the log afresh. Trail reconnects by
// itself (the pool opens new connections).
//
// Checkpoints are signed by the one process holding a session-scoped
// advisory lock; when it dies its session ends, the lock is free, and the
// next process to try (every checkpoint interval) takes over. The signing
// key is a file the processes share, never a row.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/transparency-dev/merkle/compact"
	"golang.org/x/mod/sumdb/note"

	"github.com/trailhq/trail/internal/checkpoint"
	"github.com/trailhq/trail/internal/store"
	"github.com/trailhq/trail/internal/tree"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Advisory lock keys (the first 8 bytes of "trail-sq", "trail-cp", "trail-mg").
const (
	lockSequence   = 0x747261696c2d7371
	lockCheckpoint = 0x747261696c2d6370
	lockMigrate    = 0x747261696c2d6d67
)

// Options configure Open.
type Options struct {
	// URL is a PostgreSQL connection string (postgres://user@host/db?...).
	URL string
	// Signer signs checkpoints; VerifierKey is its verifier key. A new log
	// takes the signer's name as its origin; an existing one must have been
	// made with the same key.
	Signer      note.Signer
	VerifierKey string
	Logger      *slog.Logger
	// FollowEvery is how often the store looks for other processes' appends
	// besides their notifications (default 1s).
	FollowEvery time.Duration
}

// Store is a log in PostgreSQL. See the package comment.
type Store struct {
	opts Options
	pool *pgxpool.Pool
	vkey string

	// The batch in flight (sequencer goroutine; Sync from the syncer).
	cur         *batchTx
	lastWritten *batchTx       // written by the sequencer, maybe not yet synced
	rng         *compact.Range // guarded by mu: the tree's border after this process's last committed batch
	curLen      uint64         // log length at Begin
	mu          sync.Mutex     // guards expect, dirty, known
	expect      uint64         // log length after this process's last committed batch
	dirty       bool           // the last batch failed: its outcome is unknown
	started     bool

	cpMu         sync.Mutex // guards signerConn, latest, checkpointAt
	signerConn   *pgx.Conn  // holds the checkpoint signer's lock for its session
	latest       checkpoint.Checkpoint
	hasLatest    bool
	checkpointAt time.Time

	errMu sync.Mutex
	err   error

	followMu   sync.Mutex
	followFn   func(uint64)
	known      uint64 // highest committed length reported to followFn
	stop       chan struct{}
	followDone chan struct{}
}

// batchTx is a batch's transaction on its connection, holding the
// sequencing lock.
type batchTx struct {
	conn    *pgxpool.Conn
	results pgx.BatchResults // the written batch's statements, COMMIT last, read by Sync
	inserts []int64          // rows each INSERT of results inserts
	end     uint64           // log length once committed (set by Write)
	rng     *compact.Range   // the tree's border: at Begin, then once the batch is in
	done    chan struct{}    // closed when Sync has committed or given up the batch
}

var _ store.Store = (*Store)(nil)

var factory = &compact.RangeFactory{Hash: tree.HashChildren}

// Open connects, applies the migrations the database lacks, and checks (or,
// for a new log, records) the log's verifier key.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.FollowEvery <= 0 {
		opts.FollowEvery = time.Second
	}
	if opts.Signer == nil || opts.VerifierKey == "" {
		return nil, errors.New("trail: postgres: a signing key is required")
	}
	cfg, err := pgxpool.ParseConfig(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("trail: postgres: %w", err)
	}
	// Receipts are given after COMMIT: it must not return before the WAL
	// is flushed, whatever the role's or database's defaults say.
	if cfg.ConnConfig.RuntimeParams == nil {
		cfg.ConnConfig.RuntimeParams = map[string]string{}
	}
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
	cfg.ConnConfig.RuntimeParams["application_name"] = "trail"
	// Every statement is planned for its parameters: a generic plan made
	// while the log was small (a sequential scan looking ids up) would be
	// kept as the log grows, until statistics are next gathered.
	cfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_custom_plan"
	if cfg.MaxConns < 8 {
		cfg.MaxConns = 8
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("trail: postgres: %w", err)
	}
	s := &Store{opts: opts, pool: pool, stop: make(chan struct{}), followDone: make(chan struct{})}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	if err := s.checkLog(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	n, _, err := s.end(ctx, pool)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("trail: postgres: %w", err)
	}
	s.expect, s.known, s.curLen = n, n, n
	if c, ok, err := s.loadLatest(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("trail: postgres: %w", err)
	} else if ok {
		s.latest, s.hasLatest = c, true
	}
	// A log has a checkpoint from its first start (of size 0 when empty),
	// as in a data directory; the signer's lock decides who signs it.
	if err := s.Checkpoint(n, n); err != nil {
		pool.Close()
		return nil, err
	}
	s.started = true
	go s.follow()
	return s, nil
}

// migrate applies, in order and each in its own transaction, the embedded
// migrations the database has not recorded, under an advisory lock so that
// processes starting together apply each once.
func (s *Store) migrate(ctx context.Context) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("trail: postgres: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", int64(lockMigrate)); err != nil {
		return fmt.Errorf("trail: postgres: %w", err)
	}
	defer conn.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", int64(lockMigrate))
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS trail_migrations (
		version int PRIMARY KEY, name text NOT NULL, applied timestamptz NOT NULL DEFAULT now())`); err != nil {
		// A role that may not create tables can still serve a database
		// its owner migrated.
		var n int
		if qerr := conn.QueryRow(ctx, "SELECT count(*) FROM trail_migrations").Scan(&n); qerr != nil {
			return fmt.Errorf("trail: postgres: create trail_migrations: %w", err)
		}
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	slices.Sort(names)
	for _, name := range names {
		base := strings.TrimPrefix(name, "migrations/")
		v, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil {
			return fmt.Errorf("trail: postgres: migration %s: no version", base)
		}
		var done bool
		if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM trail_migrations WHERE version = $1)", v).Scan(&done); err != nil {
			return fmt.Errorf("trail: postgres: %w", err)
		}
		if done {
			continue
		}
		sql, err := migrations.ReadFile(name)
		if err != nil {
			return err
		}
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, string(sql)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO trail_migrations (version, name) VALUES ($1, $2)", v, base)
			return err
		})
		if err != nil {
			return fmt.Errorf("trail: postgres: migration %s: %w", base, err)
		}
		s.opts.Logger.Info("applied database migration", "migration", base)
	}
	return nil
}

// checkLog records a new log's origin and verifier key, or checks that an
// existing log's key is the signer's.
func (s *Store) checkLog(ctx context.Context) error {
	_, err := s.pool.Exec(ctx, "INSERT INTO trail_log (origin, verifier_key) VALUES ($1, $2) ON CONFLICT DO NOTHING",
		s.opts.Signer.Name(), s.opts.VerifierKey)
	if err != nil {
		return fmt.Errorf("trail: postgres: %w", err)
	}
	var origin, vkey string
	if err := s.pool.QueryRow(ctx, "SELECT origin, verifier_key FROM trail_log").Scan(&origin, &vkey); err != nil {
		return fmt.Errorf("trail: postgres: %w", err)
	}
	if vkey != s.opts.VerifierKey {
		return fmt.Errorf("trail: postgres: the log %q is signed with the key %s, not with the signing key given (%s): give every process the log's key file",
			origin, vkey, s.opts.VerifierKey)
	}
	s.vkey = vkey
	return nil
}

// querier is a pool, a connection or a transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// end returns the log's committed length and its last recorded time.
func (s *Store) end(ctx context.Context, q querier) (uint64, string, error) {
	var idx int64
	var recorded string
	err := q.QueryRow(ctx, "SELECT idx, recorded FROM trail_events ORDER BY idx DESC LIMIT 1").Scan(&idx, &recorded)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, "", nil
	}
	if err != nil {
		return 0, "", err
	}
	return uint64(idx) + 1, recorded, nil
}

// unavailable tells an error of reaching the database (retry later) from
// any other (the store fails): connection failures, a server shutting down
// or starting, too many connections, a read-only standby after a failover.
func unavailable(err error) bool {
	if err == nil {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "08"), // connection exception
			strings.HasPrefix(pe.Code, "57P"), // admin/crash shutdown, cannot connect now
			strings.HasPrefix(pe.Code, "53"),  // insufficient resources
			pe.Code == "25006",                // read-only transaction: a standby
			pe.Code == "40001", pe.Code == "40P01":
			return true
		}
		return false
	}
	var ne net.Error
	return errors.As(err, &ne) || pgconn.Timeout(err) || pgconn.SafeToRetry(err) ||
		errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "conn closed") ||
		strings.Contains(err.Error(), "connection refused") || strings.Contains(err.Error(), "unexpected EOF")
}

// classify turns a database error into the store's: ErrUnavailable for one
// of reaching it, else a failure that stops the store.
func (s *Store) classify(what string, err error) error {
	if unavailable(err) {
		return fmt.Errorf("%w: %s: %v", store.ErrUnavailable, what, err)
	}
	return s.fail(fmt.Errorf("trail: postgres: %s: %w", what, err))
}

// Fail makes the store refuse every later write.
func (s *Store) Fail(cause error) {
	s.errMu.Lock()
	if s.err == nil {
		s.err = cause
	}
	s.errMu.Unlock()
}

// Err is the store's failure, or nil.
func (s *Store) Err() error {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.err
}

func (s *Store) fail(err error) error {
	s.Fail(err)
	return err
}

// Len is the log's length at the batch's Begin (or at Open).
func (s *Store) Len() uint64 { return s.curLen }

// NeedsDurable is false: a batch's transaction never waits for another's.
func (s *Store) NeedsDurable(*store.Batch) bool { return false }

// VerifierKey is the log's verifier key.
func (s *Store) VerifierKey() string { return s.vkey }

// Describe names the database (without its password) and says how its
// commits are replicated: synchronously to the standbys
// synchronous_standby_names names, asynchronously, or not at all.
func (s *Store) Describe(ctx context.Context) store.Info {
	cc := s.pool.Config().ConnConfig
	info := store.Info{Kind: "postgres", Where: fmt.Sprintf("%s@%s:%d/%s", cc.User, cc.Host, cc.Port, cc.Database)}
	var names string
	var streaming, syncing int
	err := s.pool.QueryRow(ctx, `SELECT current_setting('synchronous_standby_names'),
		(SELECT count(*) FROM pg_stat_replication),
		(SELECT count(*) FROM pg_stat_replication WHERE sync_state IN ('sync', 'quorum'))`).Scan(&names, &streaming, &syncing)
	switch {
	case err != nil:
		info.Mode, info.Replication = "unknown", "unknown: "+err.Error()
	case names != "" && syncing > 0:
		info.Mode = "synchronous"
		info.Replication = fmt.Sprintf("synchronous: a commit waits for %d of %d streaming standbys (synchronous_standby_names %q)", syncing, streaming, names)
	case names != "":
		info.Mode = "synchronous"
		info.Replication = fmt.Sprintf("synchronous by configuration (%q), but no synchronous standby is streaming: commits wait", names)
	case streaming > 0:
		info.Mode = "asynchronous"
		info.Replication = fmt.Sprintf("asynchronous: %d standbys streaming; a failover may lose the last acknowledged events", streaming)
	default:
		info.Mode = "none"
		info.Replication = "none: no standby is streaming; this database is the only copy"
	}
	return info
}

// Close stops following, gives up the signer's lock and closes the pool.
// The caller has ended every batch.
func (s *Store) Close() error {
	close(s.stop)
	if s.started {
		<-s.followDone
	}
	s.cpMu.Lock()
	if s.signerConn != nil {
		s.signerConn.Close(context.Background()) // the lock goes with the session
		s.signerConn = nil
	}
	s.cpMu.Unlock()
	if s.cur != nil {
		s.Abort()
	}
	s.pool.Close()
	return nil
}
