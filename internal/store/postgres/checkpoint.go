package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trailhq/trail/internal/checkpoint"
)

// Checkpoint signs a checkpoint of the committed log if this process holds
// the signer's lock (taking it when free) and the log grew since the latest
// checkpoint. Every committed row is durable (synchronous_commit on), so
// durable and applied are not needed: the checkpoint covers what every
// process committed.
func (s *Store) Checkpoint(durable, applied uint64) error {
	if err := s.Err(); err != nil {
		return err
	}
	ctx := context.Background()
	s.cpMu.Lock()
	defer s.cpMu.Unlock()
	signer, err := s.signerLock(ctx)
	if err != nil || !signer {
		// Not the signer (or the database is out of reach): the holder
		// signs; learn what it signed.
		if c, ok, lerr := s.loadLatest(ctx); lerr == nil && ok {
			s.latest, s.hasLatest = c, true
		}
		return nil
	}
	conn := s.signerConn
	n, _, err := s.end(ctx, conn)
	if err == nil {
		var c checkpoint.Checkpoint
		var ok bool
		if c, ok, err = s.latestOn(ctx, conn); err == nil && ok {
			s.latest, s.hasLatest = c, true
		}
	}
	if err != nil {
		s.dropSigner()
		return nil // retried at the next interval, by this process or another
	}
	if s.hasLatest && n <= s.latest.Size {
		return nil
	}
	root, err := s.root(ctx, conn, n)
	if err != nil {
		s.dropSigner()
		return nil
	}
	if s.hasLatest && s.latest.Size == n && !bytes.Equal(s.latest.Root, root) {
		return s.fail(fmt.Errorf("trail: postgres: the root of size %d changed since it was signed", n))
	}
	c, err := checkpoint.Sign(s.opts.Signer, n, root)
	if err != nil {
		return s.fail(err)
	}
	_, err = conn.Exec(ctx, "INSERT INTO trail_checkpoints (size, root, signed) VALUES ($1, $2, $3) ON CONFLICT (size) DO NOTHING",
		int64(n), root, c.Signed)
	if err != nil {
		s.dropSigner()
		return nil
	}
	s.latest, s.hasLatest, s.checkpointAt = c, true, time.Now()
	return nil
}

// signerLock reports whether this process holds the signer's lock, trying
// to take it on a connection of its own (the lock lives as long as that
// session) when it does not.
func (s *Store) signerLock(ctx context.Context) (bool, error) {
	if s.signerConn != nil {
		if err := s.signerConn.Ping(ctx); err == nil {
			return true, nil
		}
		s.dropSigner()
	}
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		return false, err
	}
	conn := pc.Hijack() // out of the pool: the lock must not be handed on with it
	var got bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", int64(lockCheckpoint)).Scan(&got); err != nil || !got {
		conn.Close(ctx)
		return false, err
	}
	s.signerConn = conn
	s.opts.Logger.Info("this process signs the log's checkpoints")
	return true, nil
}

// dropSigner gives the signer's lock up by closing its session.
func (s *Store) dropSigner() {
	if s.signerConn != nil {
		s.signerConn.Close(context.Background())
		s.signerConn = nil
	}
}

// Latest returns the latest checkpoint this process knows and when it
// signed it (zero if another process did).
func (s *Store) Latest() (checkpoint.Checkpoint, time.Time, bool) {
	s.cpMu.Lock()
	defer s.cpMu.Unlock()
	return s.latest, s.checkpointAt, s.hasLatest
}

func (s *Store) loadLatest(ctx context.Context) (checkpoint.Checkpoint, bool, error) {
	return s.latestOn(ctx, s.pool)
}

func (s *Store) latestOn(ctx context.Context, q querier) (checkpoint.Checkpoint, bool, error) {
	var size int64
	var root, signed []byte
	err := q.QueryRow(ctx, "SELECT size, root, signed FROM trail_checkpoints ORDER BY size DESC LIMIT 1").Scan(&size, &root, &signed)
	if errors.Is(err, pgx.ErrNoRows) {
		return checkpoint.Checkpoint{}, false, nil
	}
	if err != nil {
		return checkpoint.Checkpoint{}, false, err
	}
	return checkpoint.Checkpoint{Origin: s.opts.Signer.Name(), Size: uint64(size), Root: root, Signed: signed}, true, nil
}
