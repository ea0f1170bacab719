// Package datadir tells a Trail data directory from any other directory,
// checks that nobody but its owner may use one, names the files and
// directories it holds, and reads and stamps its data format (FORMAT).
//
// A Trail data directory is a directory that holds checkpoint.vkey, the
// checkpoint verifier key: trail.Open writes it on first start before it
// stores anything else (the lock file aside), keeps it for the directory's
// life, and the contract names it, so no other software leaves one. A
// directory without it is refused by "trail serve" unless it is empty (a
// fresh volume's lost+found aside) and by "trail token" always, so that
// neither takes over another program's files nor writes tokens no server
// reads.
package datadir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/trailhq/trail/internal/checkpoint"
)

// Marker is the file whose presence makes a directory a Trail data directory.
const Marker = checkpoint.VerifierFile

// State is what a path holds.
type State int

const (
	Missing State = iota // nothing: trail serve creates it
	Empty                // an empty directory: trail serve takes it
	Data                 // a Trail data directory
)

// Errors callers branch on.
var (
	ErrNotData = errors.New("not a Trail data directory")
	ErrShared  = errors.New("others may read or write the data directory")
)

// Inspect tells what dir is. A path that is not a directory, or a non-empty
// directory without the marker, is an error wrapping ErrNotData.
func Inspect(dir string) (State, error) {
	st, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return Missing, nil
	}
	if err != nil {
		return 0, err
	}
	if !st.IsDir() {
		return 0, fmt.Errorf("%s: %w: it is a file, not a directory", dir, ErrNotData)
	}
	if m, err := os.Lstat(filepath.Join(dir, Marker)); err == nil && m.Mode().IsRegular() {
		return Data, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	for _, e := range entries {
		if e.Name() != "lost+found" {
			return 0, fmt.Errorf("%s: %w: it is not empty and holds no %s (found %s)", dir, ErrNotData, Marker, e.Name())
		}
	}
	return Empty, nil
}

// CheckPrivate returns an error wrapping ErrShared when the group or others
// have any permission on dir: its files name every principal and its
// directory entries could be replaced.
func CheckPrivate(dir string) error {
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if mode := st.Mode().Perm(); mode&0o077 != 0 {
		return fmt.Errorf("%s (mode %04o): %w; run chmod 700 %s", dir, mode, ErrShared, dir)
	}
	return nil
}
