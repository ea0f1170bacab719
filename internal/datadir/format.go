package datadir

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/trailhq/trail/internal/durable"
)

// Layout of a data directory, besides the checkpoint files (package
// checkpoint) and FormatFile.
const (
	LockFile = "LOCK"  // held while the engine has the directory open
	LogDir   = "log"   // the log's segment files
	TreeDir  = "tree"  // the Merkle tree's hashes
	IndexDir = "index" // the index store, derived from the log
)

// A data directory is stamped with the format of its stored records in the
// file FORMAT, written when the directory is created, after the verifier
// key (which marks a Trail data directory) and before the log.
// A directory in another format is refused, never read: its records would
// hash the same but read differently (format 1 had no salt).
//
// Formats:
//   - 1: the first edition; no FORMAT file.
//   - 2: every record carries a salt (second edition).
const (
	// FormatFile holds the data format, a decimal number and a newline.
	FormatFile = "FORMAT"
	// DataFormat is the format of the data directories this build reads and
	// writes.
	DataFormat = 2
)

// ErrFormat: the data directory is in a format this build does not read.
var ErrFormat = errors.New("trail: data directory in another format")

// FormatError says which format a data directory has and which this build
// needs. It matches ErrFormat.
type FormatError struct {
	Dir  string
	Have int // 0 when the stamp cannot be read
	Want int
}

func (e *FormatError) Error() string {
	have := "an unreadable format stamp"
	if e.Have > 0 {
		have = fmt.Sprintf("format %d", e.Have)
	}
	return fmt.Sprintf("trail: data directory %s is in %s; this build reads format %d only "+
		"(there is no migration: use a new data directory, or the Trail release that wrote it)", e.Dir, have, e.Want)
}

func (e *FormatError) Unwrap() error { return ErrFormat }

// ReadFormat returns the format of the data directory dir: the number in
// FORMAT, 1 for a directory that holds a log but no FORMAT (the first
// edition), and 0 for a directory without a log (new, or holding only keys
// made ahead of the first start).
func ReadFormat(fs vfs.FS, dir string) (int, error) {
	b, err := durable.ReadFile(fs, fs.PathJoin(dir, FormatFile))
	if err == nil {
		n, perr := strconv.Atoi(strings.TrimSpace(string(b)))
		if perr != nil || n < 1 {
			return 0, &FormatError{Dir: dir, Want: DataFormat}
		}
		return n, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("trail: read %s: %w", fs.PathJoin(dir, FormatFile), err)
	}
	if _, err := fs.Stat(fs.PathJoin(dir, LogDir)); err == nil {
		return 1, nil
	}
	return 0, nil
}

// CheckFormat refuses a data directory in another format than DataFormat.
// A directory that holds no Trail data yet is fine.
func CheckFormat(fs vfs.FS, dir string) error {
	n, err := ReadFormat(fs, dir)
	if err != nil {
		return err
	}
	if n != 0 && n != DataFormat {
		return &FormatError{Dir: dir, Have: n, Want: DataFormat}
	}
	return nil
}

// StampFormat checks dir's format and stamps a directory without a log with
// DataFormat: write FORMAT.tmp, fsync, rename to FORMAT, fsync dir
// (durable.WriteFile). A crash before the rename leaves a directory without
// a log and without a stamp, which the next start stamps.
func StampFormat(fs vfs.FS, dir string) error {
	n, err := ReadFormat(fs, dir)
	switch {
	case err != nil:
		return err
	case n == DataFormat:
		return nil
	case n != 0:
		return &FormatError{Dir: dir, Have: n, Want: DataFormat}
	}
	if err := durable.WriteFile(fs, dir, FormatFile, []byte(strconv.Itoa(DataFormat)+"\n"), false); err != nil {
		return fmt.Errorf("trail: stamp the data format: %w", err)
	}
	return nil
}
