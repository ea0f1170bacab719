package trail

import "github.com/trailhq/trail/internal/store"

// Scope describes the streams a caller may read, as its read grants name
// them, so that a query can find those streams' events through the index
// instead of reading every event and dropping the others (store.Scope).
type Scope = store.Scope

// MatchStream reports whether stream matches one of the grant patterns: an
// exact name, or a prefix ending in "/*" that matches every stream below it
// (not the prefix itself).
func MatchStream(patterns []string, stream string) bool { return store.MatchStream(patterns, stream) }
