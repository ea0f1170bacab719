package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"

	"github.com/trailhq/trail/internal/checkpoint"
	"github.com/trailhq/trail/internal/store/files"
	"github.com/trailhq/trail/verify"
)

// RestoreOptions tune Restore.
type RestoreOptions struct {
	// VerifierKey: see CheckOptions.
	VerifierKey string
	// SigningKey is the log's signing key (the content of its
	// checkpoint.key), for a backup taken without it; it must pair with the
	// backup's verifier key.
	SigningKey []byte
	// Logger receives the engine's logs while the derived files are
	// rebuilt; nil discards them.
	Logger *slog.Logger
}

// ErrNoKey: the backup holds no signing key and none was given.
var ErrNoKey = errors.New("the backup holds no signing key")

// Restore makes the new data directory to from the backup in from, which
// a server can then serve and append to: it copies the files the manifest
// lists into a temporary directory beside to (mode 0700; secrets 0600,
// other files 0644), checks the copy (Check), adds the signing key when
// given, opens it once as a data directory so that the Merkle tree, the
// segments' offset indexes and the index store are rebuilt from the
// records, and renames it to to, which must not exist or be empty.
//
// Order: copy and fsync each file, check, open and close, fsync the
// directory, rename, fsync the parent. A crash before the rename leaves a
// temporary directory ".NAME.restore-XXXX" and no to.
func Restore(ctx context.Context, from, to string, opts RestoreOptions) (m *Manifest, rep verify.Report, err error) {
	to = filepath.Clean(to)
	if err := checkTarget(to); err != nil {
		return nil, rep, err
	}
	if m, err = readManifest(from); err != nil {
		return nil, rep, err
	}
	if !m.Has(checkpoint.KeyFile) && opts.SigningKey == nil {
		return nil, rep, fmt.Errorf("%w (it was taken with --no-key, or from a server): give the log's signing key, "+
			"a copy of the original data directory's %s (trail restore --signing-key FILE)", ErrNoKey, checkpoint.KeyFile)
	}
	tmp, err := tempBeside(to, "restore")
	if err != nil {
		return nil, rep, err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	for _, f := range append(m.Files, File{Name: ManifestFile}) {
		if err := copyInto(from, tmp, f.Name); err != nil {
			return nil, rep, err
		}
	}
	// Check what was copied, not the source, which could change meanwhile.
	if m, rep, err = Check(ctx, tmp, CheckOptions{VerifierKey: opts.VerifierKey}); err != nil {
		return nil, rep, err
	}
	if err := os.Remove(filepath.Join(tmp, ManifestFile)); err != nil {
		return nil, rep, err
	}
	if opts.SigningKey != nil {
		if err := installKey(tmp, opts.SigningKey); err != nil {
			return nil, rep, err
		}
	}
	if err := rebuild(tmp, m.Size, opts.Logger); err != nil {
		return nil, rep, err
	}
	if err := syncDir(tmp); err != nil {
		return nil, rep, err
	}
	if err := renameDir(tmp, to); err != nil {
		return nil, rep, fmt.Errorf("%s: %w", to, err)
	}
	return m, rep, syncDir(filepath.Dir(to))
}

// copyInto copies the backup file name from one directory to another.
func copyInto(from, to, name string) error {
	src := filepath.Join(from, filepath.FromSlash(name))
	f, err := os.OpenFile(src, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if errors.Is(err, os.ErrNotExist) {
		return invalidf("%s is missing", name)
	}
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrInvalid, name, err) // a link, among others
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return invalidf("%s is not a regular file", name)
	}
	perm := os.FileMode(0o644)
	if secret(name) {
		perm = 0o600
	}
	dst := filepath.Join(to, filepath.FromSlash(name))
	if err := writeFile(dst, perm, st.Size(), f); err != nil {
		return err
	}
	if d := filepath.Dir(dst); d != to {
		return syncDir(d)
	}
	return nil
}

// installKey writes the signing key, mode 0600, after checking it is the
// log's.
func installKey(dir string, skey []byte) error {
	vkey, err := os.ReadFile(filepath.Join(dir, checkpoint.VerifierFile))
	if err != nil {
		return err
	}
	if err := pairs(skey, vkey); err != nil {
		return err
	}
	p := filepath.Join(dir, checkpoint.KeyFile)
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return writeFile(p, 0o600, int64(len(skey)), bytes.NewReader(skey))
}

// rebuild opens dir as a data directory, which rebuilds its derived files
// from the records (recovery finds no tree, offset index or index store),
// and checks that it holds the size records the backup's checkpoint covers.
func rebuild(dir string, size uint64, logger *slog.Logger) error {
	st, _, err := files.Open(files.Options{Dir: dir, Logger: logger})
	if err != nil {
		return fmt.Errorf("open the restored data directory: %w", err)
	}
	n := st.Len()
	latest, _, _ := st.Latest()
	if err := st.Close(); err != nil {
		return err
	}
	if n != size || latest.Size != size {
		return fmt.Errorf("the restored data directory opens with %d records and a checkpoint of %d, want %d", n, latest.Size, size)
	}
	return nil
}
