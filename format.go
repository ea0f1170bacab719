package trail

import "github.com/trailhq/trail/internal/datadir"

// A data directory is stamped with the format of its stored records (see
// internal/datadir): a directory in another format is refused, never read.
const DataFormat = datadir.DataFormat

// ErrFormat: the data directory is in a format this build does not read.
var ErrFormat = datadir.ErrFormat

// FormatError says which format a data directory has and which this build
// needs. It matches ErrFormat.
type FormatError = datadir.FormatError
