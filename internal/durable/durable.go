// Package durable holds the file operations whose crash behaviour Trail
// relies on: making a new directory survive a power loss, replacing a file
// atomically, writing a secret file that nobody else can read at any moment,
// and reading whole files through the engine's file system seam.
// Each function says in which order it calls the file system and what a crash
// between two calls leaves behind.
package durable

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// SyncDir fsyncs a directory, making the entries created or renamed in it
// durable.
func SyncDir(fs vfs.FS, dir string) error {
	d, err := fs.OpenDir(dir)
	if err != nil {
		return fmt.Errorf("open directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// MkdirAll creates dir and any missing parents, and fsyncs the parent of each
// directory it created, so that a power loss cannot take the new directory
// (and what is later written and synced inside it) away.
//
// Order: create the directories, then fsync each created one's parent,
// top-down. A crash before the syncs may lose some of the new directories,
// but nothing was stored in them yet.
func MkdirAll(fs vfs.FS, dir string) error {
	var missing []string
	for d := dir; ; d = fs.PathDir(d) {
		if _, err := fs.Stat(d); err == nil {
			break
		}
		missing = append(missing, d)
		if fs.PathDir(d) == d {
			break
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if err := fs.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := SyncDir(fs, fs.PathDir(missing[i])); err != nil {
			return err
		}
	}
	return nil
}

// WriteFile replaces dir/name with data: write name.tmp, fsync it, rename it
// over name, fsync dir. A crash leaves the old or the new file, never a mix.
// private restricts the file to its owner (mode 0600) from its first byte:
// on the OS file system it is written by WritePrivate; other file systems of
// the seam (tests' in-memory ones) have no modes.
func WriteFile(fs vfs.FS, dir, name string, data []byte, private bool) error {
	if private && vfs.Root(fs) == vfs.Default {
		return WritePrivate(dir, name, data, 0o600, nil)
	}
	tmp := fs.PathJoin(dir, name+".tmp")
	f, err := fs.Create(tmp, vfs.WriteCategoryUnspecified)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := fs.Rename(tmp, fs.PathJoin(dir, name)); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return SyncDir(fs, dir)
}

// ReadAll reads the whole of an open file.
func ReadAll(f vfs.File) ([]byte, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	data := make([]byte, st.Size())
	n, err := f.ReadAt(data, 0)
	if n == len(data) {
		err = nil
	}
	return data[:n], err
}

// ReadFile reads the whole of a named file.
func ReadFile(fs vfs.FS, name string) ([]byte, error) {
	f, err := fs.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadAll(f)
}
