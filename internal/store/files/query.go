package files

import (
	"context"
	"fmt"
	"strings"

	"github.com/cockroachdb/pebble/v2"

	"github.com/trailhq/trail/internal/index"
	"github.com/trailhq/trail/internal/store"
)

// Query planning for a Scope. The events of the streams a caller may read
// are the union of one posting list per read grant: an exact stream name's
// list, or for "a/*" the list of every event below a (the index keeps one
// per first segment, index.FieldPrefix). A deeper prefix, "a/b/*", takes
// the lists of the streams below it, found among the stream heads, or when
// there are more than MaxScopeLegs of them, the list of "a/*", a superset.
// That union is one more leg of the leapfrog join of the filters
// (candidates), so a query reads only records of streams in the scope: a
// reader of one stream among a million other events reads its own stream's
// records and no other.
//
// A break-glass read (Scope.Unreserved) may read every stream but Trail's
// own: its union is one list per first segment of the streams stored (the
// stream "a" and the prefix "a/"), but trail. When there are more than
// MaxScopeLegs lists to merge, the query reads every candidate instead and
// drops those outside the scope: that happens only when the scope names
// very many grants or top-level streams, and then most of the log is
// readable and a scan reads little that it does not return.
//
// The plan never widens an answer: every record read is checked against
// the scope (and Query.Readable) before it is returned, whichever plan found
// it; the index only lets the query skip records.

// MaxScopeLegs is the most posting lists a scope's union merges. Each is a
// store iterator, and each step of the union looks at all of them.
const MaxScopeLegs = 256

// scopeLeg returns the union of the posting lists of the streams in sc, or
// nil when the query should read every candidate and filter instead.
func (s *Store) scopeLeg(snap *pebble.Snapshot, sc *store.Scope, desc bool) (leg, error) {
	lists, err := s.scopeLists(snap, sc)
	if err != nil || lists == nil {
		return nil, err
	}
	u := &union{desc: desc}
	for _, li := range lists.order {
		it, err := s.idx.Postings(snap, li.f, li.v, desc)
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
// MaxScopeLegs.
func (ls *postingLists) add(f index.Field, v string) bool {
	if k := (postingList{f, v}); v != "" && !ls.seen[k] {
		ls.seen[k] = true
		ls.order = append(ls.order, k)
	}
	return len(ls.order) <= MaxScopeLegs
}

// scopeLists returns the posting lists whose union holds the events of the
// streams in sc, or nil when there are more than MaxScopeLegs.
func (s *Store) scopeLists(snap *pebble.Snapshot, sc *store.Scope) (*postingLists, error) {
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
		below, err := s.streamsBelow(snap, prefix)
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
		err := s.idx.TopLevel(snap, func(v string, prefix bool) bool {
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
	if len(ls.order) > MaxScopeLegs {
		return nil, nil
	}
	return ls, nil
}

// streamsBelow returns the streams below a prefix deeper than the index
// keeps prefix lists for, or nil when there are more than MaxScopeLegs: the
// query then takes the list of the prefix's first segment, a superset.
func (s *Store) streamsBelow(snap *pebble.Snapshot, prefix string) ([]string, error) {
	below := []string{}
	err := s.idx.Streams(snap, prefix, func(st string) bool {
		below = append(below, st)
		return len(below) <= MaxScopeLegs
	})
	if err != nil {
		return nil, fmt.Errorf("trail: query: %w", err)
	}
	if len(below) > MaxScopeLegs {
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

// candidates returns a function yielding, in the query's direction, the
// indexes in [lo, hi) that match every filter of q: a leapfrog join of the
// filters' posting lists and of the scope's (queryplan.go), or every index
// when there is none of either.
func (s *Store) candidates(ctx context.Context, snap *pebble.Snapshot, q store.Filter, lo, hi uint64) (func() (uint64, bool, error), func(), error) {
	type filter struct {
		f index.Field
		v string
	}
	var fs []filter
	for _, f := range []filter{
		{index.FieldStream, q.Stream}, {index.FieldPatient, q.Patient}, {index.FieldActor, q.Actor},
		{index.FieldType, q.Type}, {index.FieldAction, q.Action}, {index.FieldOutcome, q.Outcome},
	} {
		if f.v != "" {
			fs = append(fs, f)
		}
	}
	var legs []leg
	closeAll := func() {
		for _, it := range legs {
			it.Close()
		}
	}
	for _, f := range fs {
		it, err := s.idx.Postings(snap, f.f, f.v, q.Desc)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("trail: query: %w", err)
		}
		legs = append(legs, it)
	}
	if q.Scope != nil && q.Stream == "" {
		u, err := s.scopeLeg(snap, q.Scope, q.Desc)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		if u != nil {
			legs = append(legs, u)
		}
	}
	x, done := lo, lo >= hi
	if q.Desc {
		x = hi - 1
	}
	next := func() (uint64, bool, error) {
		if done {
			return 0, false, nil
		}
		i, ok, err := leapfrog(ctx, legs, x, q.Desc)
		if err != nil || !ok || i < lo || i >= hi {
			done = true
			return 0, false, err
		}
		if q.Desc {
			done = i == 0
			x = i - 1
		} else {
			x = i + 1
		}
		return i, true, nil
	}
	return next, closeAll, nil
}

// leg is one list of a leapfrog join: a posting list, or a union of them.
type leg interface {
	Seek(x uint64) (uint64, bool, error)
	Close() error
}

var (
	_ leg = (*index.Postings)(nil)
	_ leg = (*union)(nil)
)

// leapfrog returns the first index at or past x (backwards with desc) that
// every leg holds; with no legs, x itself. Legs that share few indexes make
// it seek many times: it watches ctx as it goes.
func leapfrog(ctx context.Context, legs []leg, x uint64, desc bool) (uint64, bool, error) {
	seeks := 0
	for agreed := 0; agreed < len(legs); {
		for _, it := range legs {
			if seeks++; seeks%(16*ctxEvery) == 0 {
				if err := ctx.Err(); err != nil {
					return 0, false, err
				}
			}
			v, ok, err := it.Seek(x)
			if err != nil || !ok {
				return 0, false, err
			}
			if v != x {
				x, agreed = v, 0
				break
			}
			agreed++
		}
	}
	return x, true, nil
}

// ctxEvery is how many steps a loop takes between looks at its context.
const ctxEvery = 64

// Snapshot fixes the indexes for one query.
func (s *Store) Snapshot() (store.Snapshot, error) {
	snap, end, err := s.idx.Snapshot()
	if err != nil {
		return nil, err
	}
	return &snapshot{s: s, snap: snap, end: end}, nil
}

type snapshot struct {
	s     *Store
	snap  *pebble.Snapshot
	end   uint64
	close []func()
}

func (sn *snapshot) End() uint64 { return sn.end }

// Candidates returns the indexes in [lo, hi) matching f: a leapfrog join of
// the filters' posting lists and of the scope's, or every index when there
// is none of either.
func (sn *snapshot) Candidates(ctx context.Context, f store.Filter, lo, hi uint64) (func() (uint64, bool, error), error) {
	next, closeAll, err := sn.s.candidates(ctx, sn.snap, f, lo, hi)
	if err != nil {
		return nil, err
	}
	sn.close = append(sn.close, closeAll)
	return next, nil
}

// Close releases the iterators and the snapshot.
func (sn *snapshot) Close() error {
	for _, c := range sn.close {
		c()
	}
	return sn.snap.Close()
}
