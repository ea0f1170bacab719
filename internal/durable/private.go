package durable

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// Owner is a file's owning user and group.
type Owner struct{ UID, GID int }

// WritePrivate replaces dir/name with data on the OS file system, never
// letting anyone but perm allows read a byte of it: the temporary file is
// created with O_EXCL and mode 0600, given owner (when not nil) and perm
// before the first byte is written, so there is no moment at which a
// broader mode applies, as there would be with a chmod after the fact.
//
// Order: remove a name.tmp left by a crash, create name.tmp (O_CREATE|O_EXCL,
// 0600), fchown, fchmod, write, fsync, close, rename over name, fsync dir. A
// crash before the rename leaves the old file and a stray name.tmp, which the
// next write removes; after it, the new file. Callers serialise writers of
// one file (a lock or the data directory's LOCK), so the removal of name.tmp
// is never another writer's file; O_EXCL makes sure of it.
func WritePrivate(dir, name string, data []byte, perm os.FileMode, owner *Owner) (err error) {
	tmp := filepath.Join(dir, name+".tmp")
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale %s: %w", tmp, err)
	}
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if owner != nil {
		if err := chown(f, *owner); err != nil {
			return err
		}
	}
	if err := f.Chmod(perm.Perm()); err != nil {
		return fmt.Errorf("chmod %s: %w", tmp, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// chown gives f owner unless it has it already (only root may give a file
// to another user).
func chown(f *os.File, owner Owner) error {
	if st, err := f.Stat(); err == nil {
		if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) == owner.UID && int(sys.Gid) == owner.GID {
			return nil
		}
	}
	if err := f.Chown(owner.UID, owner.GID); err != nil {
		return fmt.Errorf("give %s to uid %d gid %d: %w", f.Name(), owner.UID, owner.GID, err)
	}
	return nil
}

// OwnerOf returns the owner of a file or directory.
func OwnerOf(st os.FileInfo) (Owner, bool) {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return Owner{}, false
	}
	return Owner{UID: int(sys.Uid), GID: int(sys.Gid)}, true
}
