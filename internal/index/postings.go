package index

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	"github.com/cockroachdb/pebble/v2"
)

// Postings. For each query field and value, the indexes of the events that
// have it are kept in chunks: one key per field, value and Apply call (at most
// chunkEvents events), holding the delta-encoded indexes of that call's events
// with the value. Keys sort by field, value, then the chunk's first index, so
// a value's chunks are in log order and hold disjoint, increasing ranges.
// A chunk per Apply call, rather than a key per event, makes indexing cost
// about one Pebble key per distinct value per batch: under load, far fewer
// keys than events.
//
// Key: 'x' field uvarint(len(v)) v first(8 bytes big-endian), where v is the
// value, or 0xff and its SHA-256 when longer than maxValueKey bytes.
// Value: one uvarint delta per index, each from the one before (the first
// from first itself, so 0).

// Field names a query field.
type Field byte

// The fields with postings.
const (
	FieldStream  Field = 's'
	FieldPatient Field = 'p'
	FieldActor   Field = 'a'
	FieldType    Field = 't'
	FieldAction  Field = 'c'
	FieldOutcome Field = 'o'
	// FieldPrefix holds, for a stream "a/b", the value "a/": the events of
	// every stream below a first segment, which a read grant "a/*" names,
	// in one list. Only the first segment gets one (maxPrefixDepth), so an
	// event costs one posting more, and a batch one key per distinct first
	// segment; a grant of a deeper prefix is planned from the streams below
	// it (Streams), or from its first segment's list, a superset.
	FieldPrefix Field = '/'
)

// maxPrefixDepth is how many prefixes of a stream get a FieldPrefix posting.
// Deeper ones would cost a key per distinct prefix per batch (a thousand
// more keys for a batch over a thousand patients' patient/<id>/labs) for
// grants that are rare and can be planned from the stream heads.
const maxPrefixDepth = 1

// chunkEvents bounds the events one chunk may span, so that decoding a chunk
// to find one index stays cheap.
const chunkEvents = 4096

const maxValueKey = 128

func (e *Entry) field(f Field) string {
	switch f {
	case FieldStream:
		return e.Stream
	case FieldPatient:
		return e.Patient
	case FieldActor:
		return e.Actor
	case FieldType:
		return e.Type
	case FieldAction:
		return e.Action
	case FieldOutcome:
		return e.Outcome
	}
	return ""
}

var fields = [...]Field{FieldStream, FieldPatient, FieldActor, FieldType, FieldAction, FieldOutcome, FieldPrefix}

// Prefixes returns the prefixes of stream that get a FieldPrefix posting:
// each of its first maxPrefixDepth segments that another one follows, with
// the segments before it and a trailing '/'.
func Prefixes(stream string) []string {
	var out []string
	for i := 0; i < len(stream) && len(out) < maxPrefixDepth; i++ {
		if stream[i] == '/' {
			out = append(out, stream[:i+1])
		}
	}
	return out
}

// IndexedPrefix returns the longest prefix with a FieldPrefix posting that
// prefix (ending in '/') starts with: prefix itself when it is shallow
// enough, otherwise its ancestor at maxPrefixDepth, whose postings are a
// superset ("" when prefix has no '/').
func IndexedPrefix(prefix string) string {
	ps := Prefixes(prefix)
	if len(ps) == 0 {
		return ""
	}
	return ps[len(ps)-1]
}

// valuePrefix is the key prefix of all chunks of field f with value v.
func valuePrefix(dst []byte, f Field, v string) []byte {
	dst = append(dst, prefixPost, byte(f))
	if len(v) > maxValueKey {
		sum := sha256.Sum256([]byte(v))
		dst = binary.AppendUvarint(dst, uint64(1+len(sum)))
		dst = append(dst, 0xff)
		return append(dst, sum[:]...)
	}
	dst = binary.AppendUvarint(dst, uint64(len(v)))
	return append(dst, v...)
}

// addPostings adds the chunks of entries to w.
func addPostings(w *sortedWrites, entries []Entry) {
	type list struct {
		first, last uint64
		val         []byte
	}
	for len(entries) > 0 {
		n := min(len(entries), chunkEvents)
		chunk := entries[:n]
		entries = entries[n:]
		for _, f := range fields {
			lists := make(map[string]*list)
			var order []string
			add := func(v string, i uint64) {
				l, ok := lists[v]
				if !ok {
					l = &list{first: i, last: i}
					lists[v] = l
					order = append(order, v)
				}
				l.val = binary.AppendUvarint(l.val, i-l.last)
				l.last = i
			}
			for i := range chunk {
				e := &chunk[i]
				if f == FieldPrefix {
					for j, depth := 0, 0; j < len(e.Stream) && depth < maxPrefixDepth; j++ {
						if e.Stream[j] == '/' {
							add(e.Stream[:j+1], e.Index)
							depth++
						}
					}
				} else if v := e.field(f); v != "" {
					add(v, e.Index)
				}
			}
			for _, v := range order {
				l := lists[v]
				k := valuePrefix(nil, f, v)
				w.add(binary.BigEndian.AppendUint64(k, l.first), l.val)
			}
		}
	}
}

// Postings iterates the indexes of the events whose field f is v, in log
// order or backwards. Targets of Seek must be monotonic in the direction of
// iteration (non-decreasing forwards, non-increasing backwards).
type Postings struct {
	it     *pebble.Iterator
	prefix []byte
	key    []byte
	desc   bool
	chunk  []uint64 // the current chunk's indexes, ascending
	loaded bool
}

// Postings returns an iterator over field f's value v, reading the snapshot
// snap. Close it when done.
func (s *Store) Postings(snap *pebble.Snapshot, f Field, v string, desc bool) (*Postings, error) {
	prefix := valuePrefix(nil, f, v)
	upper := slices.Clone(prefix)
	upper = binary.BigEndian.AppendUint64(upper, ^uint64(0))
	upper = append(upper, 0)
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: upper})
	if err != nil {
		return nil, fmt.Errorf("index: postings: %w", err)
	}
	return &Postings{it: it, prefix: prefix, desc: desc}, nil
}

// Close releases the iterator.
func (p *Postings) Close() error { return p.it.Close() }

// Seek returns the first index ≥ x (forwards) or the last ≤ x (backwards),
// and false when there is none.
func (p *Postings) Seek(x uint64) (uint64, bool, error) {
	if p.loaded && len(p.chunk) > 0 {
		c := p.chunk
		if !p.desc && c[len(c)-1] >= x {
			i, _ := slices.BinarySearch(c, x)
			return c[i], true, nil
		}
		if p.desc && c[0] <= x {
			i, found := slices.BinarySearch(c, x)
			if !found {
				i--
			}
			return c[i], true, nil
		}
	}
	if p.loaded {
		// Targets move in one direction, usually by little: the adjacent
		// chunk most often holds the answer, and stepping to it costs far
		// less than seeking from the top of the store.
		if v, ok, done, err := p.step(x); done || err != nil {
			return v, ok, err
		}
	}
	// The chunk starting at or before x, if any, may hold the answer.
	p.key = binary.BigEndian.AppendUint64(append(p.key[:0], p.prefix...), x)
	p.key = append(p.key, 0) // just past x's own key
	ok := p.it.SeekLT(p.key)
	if ok {
		if err := p.load(); err != nil {
			return 0, false, err
		}
		c := p.chunk
		i, found := slices.BinarySearch(c, x)
		if p.desc {
			if !found {
				i-- // c[0] ≤ x by the seek, so i ≥ 0
			}
			return c[i], true, nil
		}
		if i < len(c) {
			return c[i], true, nil
		}
		ok = p.it.Next() // the next chunk starts after x
	} else if !p.desc {
		ok = p.it.First() // every chunk starts after x
	}
	if ok && !p.desc {
		if err := p.load(); err != nil {
			return 0, false, err
		}
		return p.chunk[0], true, nil
	}
	if err := p.it.Error(); err != nil {
		return 0, false, fmt.Errorf("index: postings: %w", err)
	}
	return 0, false, nil
}

// step moves to the chunk after (before, backwards) the current one, whose
// every index is below (above) x, and answers from it when it can; done is
// false when the answer lies further.
func (p *Postings) step(x uint64) (v uint64, ok, done bool, err error) {
	var more bool
	if p.desc {
		more = p.it.Prev()
	} else {
		more = p.it.Next()
	}
	if !more {
		// No chunk beyond the current one: nothing at or past x.
		if err := p.it.Error(); err != nil {
			return 0, false, true, fmt.Errorf("index: postings: %w", err)
		}
		p.loaded = false
		return 0, false, true, nil
	}
	if err := p.load(); err != nil {
		return 0, false, true, err
	}
	c := p.chunk
	i, found := slices.BinarySearch(c, x)
	if p.desc {
		if c[0] > x {
			return 0, false, false, nil
		}
		if !found {
			i--
		}
		return c[i], true, true, nil
	}
	if i == len(c) {
		return 0, false, false, nil
	}
	return c[i], true, true, nil
}

// load decodes the chunk at the iterator.
func (p *Postings) load() error {
	k := p.it.Key()
	if len(k) != len(p.prefix)+8 || !bytes.HasPrefix(k, p.prefix) {
		return fmt.Errorf("index: postings key %x is not in the layout", k)
	}
	first := binary.BigEndian.Uint64(k[len(p.prefix):])
	v, err := p.it.ValueAndErr()
	if err != nil {
		return fmt.Errorf("index: postings: %w", err)
	}
	p.chunk = p.chunk[:0]
	cur := first
	for len(v) > 0 {
		d, n := binary.Uvarint(v)
		if n <= 0 {
			return fmt.Errorf("index: postings chunk %x is damaged", k)
		}
		v = v[n:]
		cur += d
		p.chunk = append(p.chunk, cur)
	}
	if len(p.chunk) == 0 || p.chunk[0] != first {
		return fmt.Errorf("index: postings chunk %x is damaged", k)
	}
	p.loaded = true
	return nil
}

// Snapshot returns a consistent view of the store and how many log records
// it reflects. Close it when done.
func (s *Store) Snapshot() (*pebble.Snapshot, uint64, error) {
	snap := s.db.NewSnapshot()
	v, closer, err := snap.Get([]byte(keyApplied))
	if err == pebble.ErrNotFound {
		return snap, 0, nil
	}
	if err != nil {
		snap.Close()
		return nil, 0, fmt.Errorf("index: applied: %w", err)
	}
	n := binary.BigEndian.Uint64(v)
	closer.Close()
	return snap, n, nil
}

// TopLevel calls fn, in key order, with the first segment of the streams in
// snap: seg itself (prefix false) for a stream without '/', and "seg/"
// (prefix true) once for all the streams below seg. It costs one seek per
// distinct first segment, however many streams lie below it. It stops when
// fn returns false.
func (s *Store) TopLevel(snap *pebble.Snapshot, fn func(v string, prefix bool) bool) error {
	it, err := snap.NewIter(&pebble.IterOptions{
		LowerBound: []byte{prefixStream, '/'},
		UpperBound: []byte{prefixStream, '/' + 1},
	})
	if err != nil {
		return fmt.Errorf("index: streams: %w", err)
	}
	defer it.Close()
	for ok := it.First(); ok; {
		seg, _, below := strings.Cut(string(it.Key()[2:]), "/")
		if !below {
			if !fn(seg, false) {
				return nil
			}
			ok = it.Next()
			continue
		}
		if !fn(seg+"/", true) {
			return nil
		}
		// '0' follows '/': past every stream below seg.
		ok = it.SeekGE(key(prefixStream, seg+"0"))
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("index: streams: %w", err)
	}
	return nil
}

// Streams calls fn, in key order, with each stream in snap whose name starts
// with prefix, until fn returns false.
func (s *Store) Streams(snap *pebble.Snapshot, prefix string, fn func(stream string) bool) error {
	lower := key(prefixStream, prefix)
	upper := append(slices.Clone(lower), 0xff)
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return fmt.Errorf("index: streams: %w", err)
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		if !fn(string(it.Key()[2:])) {
			return nil
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("index: streams: %w", err)
	}
	return nil
}
