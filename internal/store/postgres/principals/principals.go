// Package principals keeps the principals of a log in PostgreSQL (package
// postgres makes their tables: migrations/0002_principals.sql), so that
// every process sharing the database honours the same ones: trail_policy,
// the history of the policy (each version the whole of it, the bytes of a
// tokens file; the highest version is in force), and trail_admin, the
// SHA-256 of the admin token, recorded once. It is apart from package
// postgres because package auth imports the engine, whose tests use
// package postgres.
package principals

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trailhq/trail/auth"
)

// querier is a pool or a transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// lockPolicy serialises changes to the policy (the first 8 bytes of
// "trail-pl"), held for a change's transaction.
const lockPolicy = 0x747261696c2d706c

// ErrNoLog: the database holds no Trail log with principals; trail serve
// --store makes one (or adds the principals' tables to an older one).
var ErrNoLog = errors.New("the database holds no Trail log")

// Source is the principals of a log in PostgreSQL: the policy in force
// (an auth.PolicySource for auth.NewTokenAuthFrom), its changes (Update,
// each a new version, so that the history keeps every one) and the admin
// token's SHA-256. Only SELECT and INSERT are used.
type Source struct {
	pool  *pgxpool.Pool
	where string
}

var _ auth.PolicySource = (*Source)(nil)

// Open connects to the database at url, which must hold a Trail
// log (ErrNoLog otherwise). Close releases it.
func Open(ctx context.Context, url string) (*Source, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("trail: postgres: %w", err)
	}
	if cfg.ConnConfig.RuntimeParams == nil {
		cfg.ConnConfig.RuntimeParams = map[string]string{}
	}
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
	cfg.ConnConfig.RuntimeParams["application_name"] = "trail"
	cfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_custom_plan" // as the log's (package postgres)
	cfg.MaxConns = 4
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("trail: postgres: %w", err)
	}
	cc := cfg.ConnConfig
	p := &Source{pool: pool, where: fmt.Sprintf("postgres %s@%s:%d/%s", cc.User, cc.Host, cc.Port, cc.Database)}
	var ok bool
	err = pool.QueryRow(ctx, `SELECT to_regclass('trail_log') IS NOT NULL AND to_regclass('trail_policy') IS NOT NULL
		AND to_regclass('trail_admin') IS NOT NULL`).Scan(&ok)
	if err == nil && ok {
		err = pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM trail_log)").Scan(&ok)
	}
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("trail: postgres: %w", err)
	}
	if !ok {
		pool.Close()
		return nil, fmt.Errorf("%s: %w (or one older than its principals' tables): start trail serve --store on it first", p.where, ErrNoLog)
	}
	return p, nil
}

// Close releases the connections.
func (p *Source) Close() { p.pool.Close() }

// String names the database (without a password).
func (p *Source) String() string { return p.where }

// Version returns the version of the policy in force ("0": none yet, an
// empty policy).
func (p *Source) Version(ctx context.Context) (string, error) {
	var v int64
	if err := p.pool.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM trail_policy").Scan(&v); err != nil {
		return "", fmt.Errorf("trail: postgres: %w", err)
	}
	return strconv.FormatInt(v, 10), nil
}

// Load returns the policy in force, checked as auth.Parse checks a tokens
// file, and its version.
func (p *Source) Load(ctx context.Context) (auth.Policy, string, error) {
	pol, v, err := latest(ctx, p.pool)
	return pol, strconv.FormatInt(v, 10), err
}

// latest reads the highest version of the policy.
func latest(ctx context.Context, q querier) (auth.Policy, int64, error) {
	var v int64
	var b []byte
	err := q.QueryRow(ctx, "SELECT version, policy FROM trail_policy ORDER BY version DESC LIMIT 1").Scan(&v, &b)
	if errors.Is(err, pgx.ErrNoRows) {
		return auth.Policy{}, 0, nil
	}
	if err != nil {
		return auth.Policy{}, 0, fmt.Errorf("trail: postgres: %w", err)
	}
	pol, err := auth.Parse(b)
	if err != nil {
		return auth.Policy{}, v, fmt.Errorf("trail_policy version %d: %w", v, err)
	}
	return pol, v, nil
}

// Update changes the policy: under a transaction-scoped advisory lock (so
// that two changes made together never lose one another), it reads the
// policy in force, applies fn, checks the result as auth.Parse checks a
// tokens file (reserved names, patients' principals, patterns, token
// hashes) and inserts it as the next version, recording by as who changed
// it. When fn or the check fails nothing is stored. A policy in force that
// cannot be read is not built upon: a version that meant to revoke someone
// would be lost.
func (p *Source) Update(ctx context.Context, by string, fn func(*auth.Policy) error) error {
	return pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(lockPolicy)); err != nil {
			return fmt.Errorf("trail: postgres: %w", err)
		}
		pol, v, err := latest(ctx, tx)
		if err != nil {
			if v > 0 { // the latest version is there but unreadable
				err = fmt.Errorf("%w; the policy in force cannot be changed until a good version follows it: insert one, e.g. "+
					"INSERT INTO trail_policy (version, policy, changed_by) SELECT %d, policy, 'repair' FROM trail_policy WHERE version = <the last good version>",
					err, v+1)
			}
			return err
		}
		if err := fn(&pol); err != nil {
			return err
		}
		b, err := auth.Marshal(pol)
		if err != nil {
			return err
		}
		if _, err := auth.Parse(b); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "INSERT INTO trail_policy (version, policy, changed_by) VALUES ($1, $2, $3)", v+1, b, by); err != nil {
			return fmt.Errorf("trail: postgres: %w", err)
		}
		return nil
	})
}

// Updater is Update as an auth.Updater (for auth.CreateIn, auth.RevokeIn).
func (p *Source) Updater(ctx context.Context, by string) auth.Updater {
	return func(fn func(*auth.Policy) error) error { return p.Update(ctx, by, fn) }
}

// UpdatePolicy changes the policy of the log at url (see Update).
func UpdatePolicy(ctx context.Context, url, by string, fn func(*auth.Policy) error) error {
	p, err := Open(ctx, url)
	if err != nil {
		return err
	}
	defer p.Close()
	return p.Update(ctx, by, fn)
}

// PolicyVersion is one version of the policy in its history.
type PolicyVersion struct {
	Version int64
	Policy  []byte // as stored: a tokens file's bytes
	Changed time.Time
	By      string
}

// History returns every version of the policy, oldest first.
func (p *Source) History(ctx context.Context) ([]PolicyVersion, error) {
	rows, err := p.pool.Query(ctx, "SELECT version, policy, changed, changed_by FROM trail_policy ORDER BY version")
	if err != nil {
		return nil, fmt.Errorf("trail: postgres: %w", err)
	}
	vs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (PolicyVersion, error) {
		var v PolicyVersion
		err := r.Scan(&v.Version, &v.Policy, &v.Changed, &v.By)
		return v, err
	})
	if err != nil {
		return nil, fmt.Errorf("trail: postgres: %w", err)
	}
	return vs, nil
}

// ImportFile makes DIR/tokens.json the policy's first version when the
// database holds none yet and the file names principals, so that a log kept
// in PostgreSQL before its principals were keeps those of the process that
// first starts on it. It reports whether it did.
func (p *Source) ImportFile(ctx context.Context, dir, by string) (bool, error) {
	if v, err := p.Version(ctx); err != nil || v != "0" {
		return false, err
	}
	pol, err := auth.Load(dir)
	if err != nil || len(pol.Principals) == 0 {
		return false, err
	}
	b, err := auth.Marshal(pol)
	if err != nil {
		return false, err
	}
	tag, err := p.pool.Exec(ctx, "INSERT INTO trail_policy (version, policy, changed_by) VALUES (1, $1, $2) ON CONFLICT DO NOTHING", b, by)
	if err != nil {
		return false, fmt.Errorf("trail: postgres: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// AdminHash returns the SHA-256 of the log's admin token; ok is false when
// none is recorded yet.
func (p *Source) AdminHash(ctx context.Context) (h [32]byte, ok bool, err error) {
	var s string
	err = p.pool.QueryRow(ctx, "SELECT token_sha256 FROM trail_admin").Scan(&s)
	if errors.Is(err, pgx.ErrNoRows) {
		return h, false, nil
	}
	if err != nil {
		return h, false, fmt.Errorf("trail: postgres: %w", err)
	}
	if b, err := hex.DecodeString(s); err != nil || len(b) != len(h) {
		return h, false, fmt.Errorf("trail: postgres: trail_admin holds no SHA-256 in hex")
	}
	hex.Decode(h[:], []byte(s))
	return h, true, nil
}

// RecordAdmin records h as the admin token's SHA-256 unless one is recorded
// already, and returns the one recorded.
func (p *Source) RecordAdmin(ctx context.Context, h [32]byte) ([32]byte, error) {
	_, err := p.pool.Exec(ctx, "INSERT INTO trail_admin (token_sha256) VALUES ($1) ON CONFLICT DO NOTHING", hex.EncodeToString(h[:]))
	if err != nil {
		return h, fmt.Errorf("trail: postgres: %w", err)
	}
	got, _, err := p.AdminHash(ctx)
	return got, err
}

// EnsureAdmin returns the SHA-256 of the log's admin token, the only admin
// token the processes sharing the database accept. The first process to
// find none recorded takes the token of its DIR/admin.token (made, mode
// 0600, as auth.EnsureAdminToken makes it, when missing) and records its
// hash; created reports that it made the file. Any other process needs no
// copy of the token: a DIR/admin.token holding another token is logged as
// not the log's and is not accepted.
func (p *Source) EnsureAdmin(ctx context.Context, dir string, logger *slog.Logger) (h [32]byte, created bool, err error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h, ok, err := p.AdminHash(ctx)
	if err != nil {
		return h, false, err
	}
	path := filepath.Join(dir, auth.AdminTokenFile)
	if !ok {
		tok, made, err := auth.EnsureAdminToken(dir) // the file first: a hash recorded for a token never written would lock the admin out for good
		if err != nil {
			return h, false, err
		}
		mine := auth.HashToken(tok)
		if h, err = p.RecordAdmin(ctx, mine); err != nil {
			return h, false, err
		}
		if h == mine {
			return h, made, nil
		}
		if made { // another process recorded its token first
			os.Remove(path)
			logger.Info("another process recorded the log's admin token first; it is in that process's data directory, copy it here to have it at hand",
				"file", path)
			return h, false, nil
		}
	}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		logger.Info("no admin token in this data directory: the log's admin token is in the DIR/admin.token of the process that made the database; copy it here to have it at hand",
			"dir", dir)
	case err != nil:
		return h, false, fmt.Errorf("read admin token: %w", err)
	case auth.HashToken(auth.Token(strings.TrimSpace(string(b)))) != h:
		logger.Warn("this file is not the log's admin token and is not accepted: the log's admin token is in the DIR/admin.token of the process that made the database; copy it here",
			"file", path)
	}
	return h, false, nil
}
