//go:build !linux

package server

import "errors"

// diskSpace is measured on Linux only.
func diskSpace(dir string) (free, total uint64, err error) {
	return 0, 0, errors.New("disk space is measured on Linux only")
}
