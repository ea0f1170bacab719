package server

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// diskSpace returns the space available to the server and the total size
// of the file system holding dir.
func diskSpace(dir string) (free, total uint64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	// Block counts are in fragments (f_frsize), which equal f_bsize on
	// common Linux file systems but not on all.
	return st.Bavail * uint64(st.Frsize), st.Blocks * uint64(st.Frsize), nil
}
