package backup

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"github.com/trailhq/trail/internal/datadir"
	"github.com/trailhq/trail/verify"
)

// Writer takes the files of a backup, one after the other, the manifest
// last. name is slash-separated; r yields exactly size bytes.
type Writer interface {
	File(name string, size int64, r io.Reader) error
}

// ErrTarget: the directory a backup or restore is to be written to exists
// and is not empty.
var ErrTarget = errors.New("target exists and is not empty")

// Dir is a Writer into a new directory: the files go into a temporary
// directory beside it (".NAME.partial-XXXX", mode 0700), each created
// with O_EXCL, mode 0600, and fsynced. The manifest is kept in memory:
// Check checks the files against it, and Commit writes it and renames the
// directory into place. So a backup stopped before Commit leaves a
// directory without a manifest, which Check and Restore refuse.
type Dir struct {
	target, tmp string
	manifest    []byte
}

// NewDir starts a backup into target, which must not exist or be an
// empty directory.
func NewDir(target string) (*Dir, error) {
	target = filepath.Clean(target)
	if err := checkTarget(target); err != nil {
		return nil, err
	}
	tmp, err := tempBeside(target, "partial")
	if err != nil {
		return nil, err
	}
	return &Dir{target: target, tmp: tmp}, nil
}

// Path is the temporary directory the files are written to.
func (d *Dir) Path() string { return d.tmp }

// File writes one file of the backup.
func (d *Dir) File(name string, size int64, r io.Reader) error {
	if name == ManifestFile {
		b, err := io.ReadAll(io.LimitReader(r, size))
		if err == nil && int64(len(b)) != size {
			err = io.ErrUnexpectedEOF
		}
		d.manifest = b
		return err
	}
	if !validName(name) {
		return fmt.Errorf("backup file %q: not a file of a data directory", name)
	}
	return writeFile(filepath.Join(d.tmp, filepath.FromSlash(name)), 0o600, size, r)
}

// Check checks the files written against the manifest (see the package
// function Check) before Commit.
func (d *Dir) Check(ctx context.Context, opts CheckOptions) (*Manifest, verify.Report, error) {
	if d.manifest == nil {
		return nil, verify.Report{}, invalidf("the backup has no manifest yet")
	}
	m, err := parseManifest(d.manifest)
	if err != nil {
		return nil, verify.Report{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return checkContents(ctx, d.tmp, m, opts)
}

// Commit makes the backup whole under its target's name.
//
// Order: write and fsync the manifest (each other file was fsynced when
// written), fsync the log directory and the temporary one, rename the
// temporary directory to the target (over an empty directory, which rename
// replaces), fsync the parent. A crash before the manifest is written
// leaves a temporary directory that Check refuses; after it, one that is
// whole (and was checked) under a temporary name; after the rename, the
// backup.
func (d *Dir) Commit() error {
	if d.manifest == nil {
		return errors.New("backup: commit before the manifest was written")
	}
	if err := writeFile(filepath.Join(d.tmp, ManifestFile), 0o600, int64(len(d.manifest)), bytes.NewReader(d.manifest)); err != nil {
		return err
	}
	for _, dir := range []string{filepath.Join(d.tmp, datadir.LogDir), d.tmp} {
		if err := syncDir(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if err := renameDir(d.tmp, d.target); err != nil {
		if errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST) {
			return fmt.Errorf("%s: %w (something was written there during the backup)", d.target, ErrTarget)
		}
		return fmt.Errorf("rename %s to %s: %w", d.tmp, d.target, err)
	}
	return syncDir(filepath.Dir(d.target))
}

// Abort removes the temporary directory.
func (d *Dir) Abort() error { return os.RemoveAll(d.tmp) }

// checkTarget refuses a target that exists and is not an empty directory.
func checkTarget(target string) error {
	st, err := os.Stat(target)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("%s: %w (it is a file)", target, ErrTarget)
	}
	entries, err := os.ReadDir(target)
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		return fmt.Errorf("%s: %w (it holds %s)", target, ErrTarget, entries[0].Name())
	}
	return nil
}

// tempBeside makes a new directory, mode 0700, beside target: its parent
// must exist, and the rename into place stays on one file system.
func tempBeside(target, what string) (string, error) {
	var b [4]byte
	rand.Read(b[:])
	tmp := filepath.Join(filepath.Dir(target), "."+filepath.Base(target)+"."+what+"-"+hex.EncodeToString(b[:]))
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return "", fmt.Errorf("create %s: %w", tmp, err)
	}
	return tmp, nil
}

// writeFile creates path (and its directory, 0700) with perm from its
// first byte, copies exactly size bytes of r into it and fsyncs it.
func writeFile(path string, perm os.FileMode, size int64, r io.Reader) (err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_CLOEXEC, perm)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	if err := f.Chmod(perm); err != nil { // the umask may have narrowed it; never widened
		return err
	}
	n, err := io.CopyN(f, r, size)
	if err != nil {
		return fmt.Errorf("write %s: %d of %d bytes: %w", path, n, size, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// renameDir renames the directory old to new, which may be an empty
// directory: rename(2) replaces it atomically, where os.Rename refuses.
func renameDir(old, new string) error {
	if err := syscall.Rename(old, new); err != nil {
		return &os.LinkError{Op: "rename", Old: old, New: new, Err: err}
	}
	return nil
}
