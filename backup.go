package trail

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/trailhq/trail/internal/backup"
	"github.com/trailhq/trail/verify"
)

// ErrNoBackup: the log is not kept in a data directory, so Backup cannot
// copy it; a log in PostgreSQL is backed up with the database (pg_dump).
var ErrNoBackup = errors.New("trail: the log is kept in PostgreSQL, not in a data directory: back it up with pg_dump")

// BackupOptions tune Backup.
type BackupOptions struct {
	// Checkpoint, when set, is the checkpoint to take the backup up to, one
	// the log signed (as Checkpoint returned it), rather than the latest.
	Checkpoint *Checkpoint
	// Secrets includes the signing key (checkpoint.key) and the admin token.
	// Without them the backup is restored with the signing key given apart
	// (trail restore --signing-key), and the restored server makes a new
	// admin token.
	Secrets bool
}

// Backup writes to w a tar archive of a consistent copy of the data
// directory up to its latest signed checkpoint, while appends go on: the
// segment files cut to the events the checkpoint covers, the checkpoints
// up to it, the verifier key, the principals, and a manifest (BACKUP) last.
// It returns the checkpoint the backup is taken up to. The derived files
// (tree, indexes) are not copied: they are rebuilt from the events when the
// backup is restored. A log kept in PostgreSQL returns ErrNoBackup.
func (l *Log) Backup(ctx context.Context, w io.Writer, opts BackupOptions) (Checkpoint, error) {
	if l.dir == "" {
		return Checkpoint{}, ErrNoBackup
	}
	fs := l.cfg.FS
	if fs == nil {
		fs = vfs.Default
	}
	bo := backup.Options{VerifierKey: l.VerifierKey(), NoKey: !opts.Secrets, NoAdminToken: !opts.Secrets}
	if opts.Checkpoint != nil {
		bo.Checkpoint = opts.Checkpoint.Signed
	}
	tw := backup.NewTarWriter(w)
	m, err := backup.Snapshot(ctx, fs, l.dir, bo, tw)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("trail: backup: %w", err)
	}
	if err := tw.Close(); err != nil {
		return Checkpoint{}, fmt.Errorf("trail: backup: %w", err)
	}
	return verify.ParseCheckpoint([]byte(m.Checkpoint), l.VerifierKey())
}
