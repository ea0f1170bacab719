package trail

import "github.com/trailhq/trail/internal/datadir"

// A data directory is stamped with the format of its stored records (see
// package internal/datadir); a directory in another format is refused by
// Open and Verify, never read.

// DataFormat is the format of the data directories this build reads and
// writes.
const DataFormat = datadir.DataFormat

// ErrFormat: the data directory is in a format this build does not read.
var ErrFormat = datadir.ErrFormat

// FormatError says which format a data directory has and which this build
// needs. It matches ErrFormat.
type FormatError = datadir.FormatError
