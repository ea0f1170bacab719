//go:build !linux

package bench

// RSSWatch follows the peak resident set of processes. Outside Linux there
// is no peak that can be reset for a run (getrusage's ru_maxrss is the
// process's whole life), so it reports none: "n/a".
type RSSWatch struct{}

// WatchRSS starts watching the processes pids (0 for this one).
func WatchRSS(pids ...int) *RSSWatch { return &RSSWatch{} }

// Stop reports that the peak is unknown.
func (w *RSSWatch) Stop() (mb float64, ok bool) { return 0, false }
