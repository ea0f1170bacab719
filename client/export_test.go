package client

import "github.com/cockroachdb/pebble/v2/vfs"

// WithSpoolFS keeps the spool on fs (a crashable in-memory file system in
// the power-loss tests).
func WithSpoolFS(fs vfs.FS) Option { return func(c *config) { c.spoolFS = fs } }

// WithSpoolSegment starts a new spool file after n bytes, so that tests
// cross file boundaries with few events.
func WithSpoolSegment(n int64) Option { return func(c *config) { c.spoolSegment = n } }

// MinSpool is the smallest spool WithSpool takes.
const MinSpool = minSpool
