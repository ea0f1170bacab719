package trail

import (
	"fmt"
	"strings"

	"github.com/cockroachdb/pebble/v2"

	"github.com/trailhq/trail/internal/index"
)

// Query planning for a Scope. The events of the streams a caller may read
// are the union of one posting list per read grant: an exact stream name's
// list, or for "a/*" the list of every event below a (the index keeps one
// per first segment, index.FieldPrefix). A deeper prefix, "a/b/*", takes
// the lists of the streams below it, found among the stream heads, or when
// there are more than maxScopeLegs of them, the list of "a/*", a superset.
// That union is one more leg of the leapfrog join of the filters
// (query.go), so a query reads only records of streams in the scope: a
// reader of one stream among a million other events reads its own stream's
// records and no other.
//
// A break-glass read (Scope.Unreserved) may read every stream but Trail's
// own: its union is one list per first segment of the streams stored (the
// stream "a" and the prefix "a/"), but trail. When there are more than
// maxScopeLegs lists to merge, the query reads every candidate instead and
// drops those outside the scope: that happens only when the scope names
// very many grants or top-level streams, and then most of the log is
// readable and a scan reads little that it does not return.
//
// The plan never widens an answer: every record read is checked against
// the scope (and Query.Readable) before it is returned, whichever plan found
// it; the index only lets the query skip records.

// maxScopeLegs is the most posting lists a scope's union merges. Each is a
// store iterator, and each step of the union looks at all of them.
const maxScopeLegs = 256

// scopeLeg returns the union of the posting lists of the streams in sc, or
// nil when the query should read every candidate and filter instead.
func (l *Log) scopeLeg(snap *pebble.Snapshot, sc *Scope, desc bool) (leg, error) {
	lists, err := l.scopeLists(snap, sc)
	if err != nil || lists == nil {
		return nil, err
	}
	u := &union{desc: desc}
	for _, li := range lists.order {
		it, err := l.idx.Postings(snap, li.f, li.v, desc)
		if err != nil {
			u.Close()
			return nil, fmt.Errorf("trail: query: %w", err)
		}
		u.its = append(u.its, it)
	}
	u.cur = make([]uint64, len(u.its))
	u.state = make([]legState, len(u.its))
	return u, nil
}

// postingLists is a set of posting lists, in the order first added.
type postingLists struct {
	seen  map[postingList]bool
	order []postingList
}

type postingList struct {
	f index.Field
	v string
}

// add adds a list; it returns false when the set has grown past
// maxScopeLegs.
func (ls *postingLists) add(f index.Field, v string) bool {
	if k := (postingList{f, v}); v != "" && !ls.seen[k] {
		ls.seen[k] = true
		ls.order = append(ls.order, k)
	}
	return len(ls.order) <= maxScopeLegs
}

// scopeLists returns the posting lists whose union holds the events of the
// streams in sc, or nil when there are more than maxScopeLegs.
func (l *Log) scopeLists(snap *pebble.Snapshot, sc *Scope) (*postingLists, error) {
	ls := &postingLists{seen: map[postingList]bool{}}
	for _, p := range sc.Patterns {
		prefix, ok := strings.CutSuffix(p, "/*")
		if !ok {
			ls.add(index.FieldStream, p)
			continue
		}
		prefix += "/"
		top := index.IndexedPrefix(prefix)
		if top == prefix || top == "" {
			ls.add(index.FieldPrefix, top)
			continue
		}
		below, err := l.streamsBelow(snap, prefix)
		if err != nil {
			return nil, err
		}
		if below == nil {
			ls.add(index.FieldPrefix, top)
		}
		for _, st := range below {
			ls.add(index.FieldStream, st)
		}
	}
	if sc.Unreserved {
		err := l.idx.TopLevel(snap, func(v string, prefix bool) bool {
			switch {
			case v == "trail" || v == "trail/":
				return true
			case prefix:
				return ls.add(index.FieldPrefix, v)
			default:
				return ls.add(index.FieldStream, v)
			}
		})
		if err != nil {
			return nil, fmt.Errorf("trail: query: %w", err)
		}
	}
	if len(ls.order) > maxScopeLegs {
		return nil, nil
	}
	return ls, nil
}

// streamsBelow returns the streams below a prefix deeper than the index
// keeps prefix lists for, or nil when there are more than maxScopeLegs: the
// query then takes the list of the prefix's first segment, a superset.
func (l *Log) streamsBelow(snap *pebble.Snapshot, prefix string) ([]string, error) {
	below := []string{}
	err := l.idx.Streams(snap, prefix, func(st string) bool {
		below = append(below, st)
		return len(below) <= maxScopeLegs
	})
	if err != nil {
		return nil, fmt.Errorf("trail: query: %w", err)
	}
	if len(below) > maxScopeLegs {
		return nil, nil
	}
	return below, nil
}

// union merges posting lists: Seek answers the first index at or past x
// (backwards with desc) that any of them holds. Each list is sought only
// when x passes the index it last answered, so a page costs about one step
// per event returned, plus one per list.
type union struct {
	its   []*index.Postings
	cur   []uint64 // each list's last answer, when state is legAt
	state []legState
	desc  bool
}

type legState uint8

const (
	legUnsought legState = iota
	legAt                // cur holds the list's answer to the last Seek
	legDone              // nothing left at or past the targets
)

// Seek returns the first index ≥ x (forwards) or the last ≤ x (backwards)
// of any list; targets must be monotonic, as for index.Postings.
func (u *union) Seek(x uint64) (uint64, bool, error) {
	var best uint64
	found := false
	for i, it := range u.its {
		switch u.state[i] {
		case legDone:
			continue
		case legAt:
			if u.desc && u.cur[i] <= x || !u.desc && u.cur[i] >= x {
				break // still the list's answer
			}
			fallthrough
		default:
			v, ok, err := it.Seek(x)
			if err != nil {
				return 0, false, err
			}
			if !ok {
				u.state[i] = legDone
				continue
			}
			u.cur[i], u.state[i] = v, legAt
		}
		if v := u.cur[i]; !found || u.desc && v > best || !u.desc && v < best {
			best, found = v, true
		}
	}
	return best, found, nil
}

// Close releases every list.
func (u *union) Close() error {
	for _, it := range u.its {
		it.Close()
	}
	return nil
}
