package principals

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trailhq/trail/auth"
)

// Sessions keeps the console's sessions in the database (package postgres
// makes the tables: migrations/0003_console_sessions.sql), so that every
// process sharing it honours a sign-in made at any of them. Rows are only
// inserted: a session, its uses, its end.
type Sessions struct{ src *Source }

var _ auth.SessionStore = Sessions{}

// Sessions returns the console's sessions kept with these principals.
func (p *Source) Sessions() Sessions { return Sessions{src: p} }

// lockSessions serialises sign-ins, which count live sessions (the first
// 8 bytes of "trail-se"), held for a sign-in's transaction.
const lockSessions = 0x747261696c2d7365

// Create implements auth.SessionStore.
func (s Sessions) Create(ctx context.Context, ses *auth.Session, lim auth.SessionLimits) error {
	err := pgx.BeginFunc(ctx, s.src.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(lockSessions)); err != nil {
			return err
		}
		now := ses.Created
		rows, err := tx.Query(ctx, `SELECT s.key, s.principal = $3 FROM trail_console_sessions s
			WHERE s.created > $1
			  AND NOT EXISTS (SELECT 1 FROM trail_console_session_ends e WHERE e.key = s.key)
			  AND greatest(s.created, (SELECT max(u.at) FROM trail_console_session_uses u WHERE u.key = s.key)) > $2
			ORDER BY s.created`, now.Add(-lim.MaxAge), now.Add(-lim.Idle), ses.Principal)
		if err != nil {
			return err
		}
		var mine [][]byte
		live := 0
		for rows.Next() {
			var key []byte
			var own bool
			if err := rows.Scan(&key, &own); err != nil {
				return err
			}
			live++
			if own {
				mine = append(mine, key)
			}
		}
		if err := rows.Err(); err != nil {
			return err
		}
		for _, key := range mine[:max(0, len(mine)-lim.PerPrincipal+1)] {
			if _, err := tx.Exec(ctx, `INSERT INTO trail_console_session_ends (key, why, at) VALUES ($1, 'replaced', $2)
				ON CONFLICT (key) DO NOTHING`, key, now); err != nil {
				return err
			}
			live--
		}
		if live >= lim.Max {
			return auth.ErrTooManySessions
		}
		_, err = tx.Exec(ctx, `INSERT INTO trail_console_sessions (key, principal, kind, credential, via, created)
			VALUES ($1, $2, $3, $4, $5, $6)`, ses.Key[:], ses.Principal, string(ses.Kind), ses.Credential, ses.Via, ses.Created)
		return err
	})
	if err != nil && !errors.Is(err, auth.ErrTooManySessions) {
		return fmt.Errorf("console sessions in %s: %w", s.src.where, err)
	}
	return err
}

// Lookup implements auth.SessionStore.
func (s Sessions) Lookup(ctx context.Context, key [32]byte) (*auth.Session, auth.SessionState, error) {
	ses := &auth.Session{Key: key}
	var st auth.SessionState
	var kind string
	var why *string
	var endedAt *time.Time
	err := s.src.pool.QueryRow(ctx, `SELECT s.principal, s.kind, s.credential, s.via, s.created,
			greatest(s.created, (SELECT max(u.at) FROM trail_console_session_uses u WHERE u.key = s.key)), e.why, e.at
		FROM trail_console_sessions s LEFT JOIN trail_console_session_ends e ON e.key = s.key
		WHERE s.key = $1`, key[:]).Scan(&ses.Principal, &kind, &ses.Credential, &ses.Via, &ses.Created, &st.Last, &why, &endedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, st, nil
	}
	if err != nil {
		return nil, st, fmt.Errorf("console sessions in %s: %w", s.src.where, err)
	}
	ses.Kind = auth.SessionCredential(kind)
	if why != nil {
		st.Ended, st.EndedAt = *why, *endedAt
	}
	return ses, st, nil
}

// Touch implements auth.SessionStore.
func (s Sessions) Touch(ctx context.Context, key [32]byte, at time.Time) error {
	if _, err := s.src.pool.Exec(ctx, "INSERT INTO trail_console_session_uses (key, at) VALUES ($1, $2)", key[:], at); err != nil {
		return fmt.Errorf("console sessions in %s: %w", s.src.where, err)
	}
	return nil
}

// End implements auth.SessionStore.
func (s Sessions) End(ctx context.Context, key [32]byte, why string, at time.Time) error {
	_, err := s.src.pool.Exec(ctx, `INSERT INTO trail_console_session_ends (key, why, at)
		SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM trail_console_sessions WHERE key = $1)
		ON CONFLICT (key) DO NOTHING`, key[:], why, at)
	if err != nil {
		return fmt.Errorf("console sessions in %s: %w", s.src.where, err)
	}
	return nil
}

// Claim implements auth.SessionStore: a row of trail_console_sign_ins,
// whose primary key makes the first claim the only one.
func (s Sessions) Claim(ctx context.Context, key [32]byte, at time.Time) (bool, error) {
	tag, err := s.src.pool.Exec(ctx, "INSERT INTO trail_console_sign_ins (key, at) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING", key[:], at)
	if err != nil {
		return false, fmt.Errorf("console sessions in %s: %w", s.src.where, err)
	}
	return tag.RowsAffected() == 1, nil
}
