package auth

import "time"

// SetClock makes m's pruning use now instead of the time of day.
func (m *MemorySessions) SetClock(now func() time.Time) { m.now = now }

// KeepEnded is how long a MemorySessions remembers an ended session.
const KeepEnded, PruneEvery = keepEnded, pruneEvery
