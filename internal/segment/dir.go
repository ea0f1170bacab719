package segment

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// MkdirDurable creates dir and any missing parents, and fsyncs the parent of
// each directory it created, so that a power loss cannot take the new
// directory (and what is later written and synced inside it) away.
//
// Order: create the directories top-down, then fsync each created one's
// parent, top-down. A crash before the syncs may lose some of the new
// directories, but nothing was acknowledged in them yet.
func MkdirDurable(fs vfs.FS, dir string) error {
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
		if err := syncDir(fs, fs.PathDir(missing[i])); err != nil {
			return err
		}
	}
	return nil
}
