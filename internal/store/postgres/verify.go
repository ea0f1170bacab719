package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/trailhq/trail/event"
	"github.com/trailhq/trail/verify"
)

// VerifyOptions tune Verify.
type VerifyOptions struct {
	// VerifierKey, when set, is the only key the checkpoints may be signed
	// with; empty trusts the key the database records (trail_log), which
	// cannot detect a history rebuilt under a new key.
	VerifierKey string
	// Trusted, when set, is a checkpoint verified earlier: the log must
	// extend it.
	Trusted *verify.Checkpoint
	// Progress, if set, is called now and then with records done and total.
	Progress func(done, total int64)
}

// Verify checks a log in PostgreSQL as verify.Dir checks a data directory,
// trusting nothing the database says but what the verifier key signed: every
// record's layout and leaf hash (recomputed from its bytes, not read from
// the leaf column), its index, every stream's gap-free stream_seq and prev
// chain, the Merkle tree recomputed from the records, and every signed
// checkpoint's signature and root. It reads the records in index order in
// one REPEATABLE READ transaction, so appends may go on meanwhile.
func Verify(ctx context.Context, url string, opts VerifyOptions) (verify.Report, error) {
	var rep verify.Report
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return rep, fmt.Errorf("trail: postgres: %w", err)
	}
	defer conn.Close(context.Background())
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return rep, fmt.Errorf("trail: postgres: %w", err)
	}
	defer tx.Rollback(context.Background())
	vkey := strings.TrimSpace(opts.VerifierKey)
	if vkey == "" {
		if err := tx.QueryRow(ctx, "SELECT verifier_key FROM trail_log").Scan(&vkey); err != nil {
			return rep, fmt.Errorf("trail: postgres: not a Trail log: %w", err)
		}
	}
	var cps []verify.Checkpoint
	rows, err := tx.Query(ctx, "SELECT size, signed FROM trail_checkpoints ORDER BY size")
	if err != nil {
		return rep, fmt.Errorf("trail: postgres: %w", err)
	}
	for rows.Next() {
		var size int64
		var signed []byte
		if err := rows.Scan(&size, &signed); err != nil {
			rows.Close()
			return rep, fmt.Errorf("trail: postgres: %w", err)
		}
		c, err := verify.ParseCheckpoint(signed, vkey)
		if err != nil {
			rows.Close()
			return rep, &verify.Error{Index: 0, Reason: fmt.Sprintf("checkpoint of size %d is not signed by the trusted key: %v", size, err)}
		}
		if c.Size != uint64(size) {
			rows.Close()
			return rep, &verify.Error{Index: 0, Reason: fmt.Sprintf("checkpoint row of size %d holds a checkpoint of size %d", size, c.Size)}
		}
		cps = append(cps, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return rep, fmt.Errorf("trail: postgres: %w", err)
	}
	if opts.VerifierKey != "" && len(cps) == 0 {
		return rep, &verify.Error{Index: 0, Reason: "no checkpoint signed by the trusted key vouches for the log (they were removed)"}
	}
	var total int64
	if err := tx.QueryRow(ctx, "SELECT count(*) FROM trail_events").Scan(&total); err != nil {
		return rep, fmt.Errorf("trail: postgres: %w", err)
	}
	ch, err := verify.NewChecker(cps, opts.Trusted)
	if err != nil {
		return rep, err
	}
	rows, err = tx.Query(ctx, "SELECT idx, more, record FROM trail_events ORDER BY idx")
	if err != nil {
		return rep, fmt.Errorf("trail: postgres: %w", err)
	}
	defer rows.Close()
	var done int64
	for rows.Next() {
		var idx int64
		var more bool
		var rec []byte
		if err := rows.Scan(&idx, &more, &rec); err != nil {
			return rep, fmt.Errorf("trail: postgres: %w", err)
		}
		if uint64(idx) != ch.Next() {
			return rep, &verify.Error{Index: ch.Next(), Reason: fmt.Sprintf("the next row is index %d (records missing)", idx)}
		}
		h, err := event.ParseHeader(rec)
		if err != nil {
			return rep, &verify.Error{Index: uint64(idx), Reason: "not in Trail's stored layout"}
		}
		if err := ch.Add(&verify.Record{Header: h, Leaf: event.LeafHash(rec), More: more}); err != nil {
			return rep, err
		}
		if done++; opts.Progress != nil && done%65536 == 0 {
			opts.Progress(done, total)
		}
	}
	if err := rows.Err(); err != nil {
		return rep, fmt.Errorf("trail: postgres: %w", err)
	}
	return ch.Finish()
}
