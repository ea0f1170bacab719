package store

import (
	"fmt"
	"strings"

	"github.com/trailhq/trail/event"
)

// Scope describes the streams a caller may read, as its read grants name
// them, so that a query can find those streams' events through the index
// instead of reading every event and dropping the others: the cost of a
// query follows what the caller may read, not the size of the log.
//
// A Scope only ever narrows a query. Every event a query returns is in its
// Scope (and accepted by its Readable, when set), whichever plan found it.
type Scope struct {
	// Patterns are stream names, or prefixes ending in "/*" that match every
	// stream below the prefix (not the prefix itself): "patient/*" matches
	// "patient/1" and "patient/1/labs", not "patient".
	Patterns []string
	// Unreserved adds every stream outside Trail's own (trail/…), as a
	// break-glass read sees them.
	Unreserved bool
}

func (s *Scope) String() string {
	return fmt.Sprintf("scope{%q unreserved=%v}", s.Patterns, s.Unreserved)
}

// Match reports whether stream is in the scope.
func (s *Scope) Match(stream string) bool {
	return s.Unreserved && !event.IsReservedStream(stream) || MatchStream(s.Patterns, stream)
}

// MatchStream reports whether stream matches one of the grant patterns: an
// exact name, or a prefix ending in "/*" that matches every stream below it
// (not the prefix itself).
func MatchStream(patterns []string, stream string) bool {
	for _, p := range patterns {
		if prefix, ok := strings.CutSuffix(p, "/*"); ok {
			if len(stream) > len(prefix)+1 && stream[len(prefix)] == '/' && strings.HasPrefix(stream, prefix) {
				return true
			}
		} else if p == stream {
			return true
		}
	}
	return false
}
