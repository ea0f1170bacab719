package verify

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/trailhq/trail/event"
)

// Record is one stored record as a Checker takes it: what can be computed
// from the record alone, so that a store can compute it for many records in
// parallel before it feeds them in order.
type Record struct {
	Header event.Header // event.ParseHeader of the record's bytes
	Leaf   event.Hash   // event.LeafHash of the record's bytes
	// More is set when more records of the record's atomic group follow it
	// (a segment frame's flag): a log whose last record has it ends in an
	// incomplete group, a torn write.
	More bool
}

// A Checker runs the sequential checks of a log, whatever stores it: fed the
// records in index order, from 0, it checks that each says its index, that
// every stream's stream_seq runs 1, 2, 3... without a gap or repeat, that
// every stream's first record has no prev and every later one the leaf hash
// of the stream's record before it, and it recomputes the Merkle tree from
// the leaves (a compact range: O(log n) memory) to check the root at every
// signed checkpoint's size and at the trusted checkpoint's. Finish checks
// that no checkpoint covers more records than were fed.
//
// A store (segment files: Dir; a database's rows read in index order)
// verifies the checkpoints' signatures before it makes a Checker (see
// ParseCheckpoint), reads the records, checks each on its own (its framing
// or checksum, and that event.ParseHeader reads it), and then:
//
//   - calls Add with each record, in index order;
//   - calls Damage instead when what it holds at the next index is not a
//     record: damage at the end of the log past the checkpoints is a torn
//     write, tolerated and reported (Report.TornTail), after which nothing
//     more is fed; anywhere else it is an *Error;
//   - calls Finish at the end of the log.
//
// Each returns an *Error naming the first bad index when it finds tampering
// or corruption; after an error the Checker is not to be used again. A
// Checker is not safe for concurrent use.
type Checker struct {
	n       uint64 // records checked so far
	durable uint64 // the largest size a checkpoint vouches for
	streams map[string]*stream
	rng     leafRange
	cps     *cpList
	trusted *Checkpoint // a checkpoint verified earlier; nil once checked
	torn    string
	inGroup bool // the last record said more records of its group follow
}

type stream struct {
	name string // the key it has in Checker.streams
	seq  uint64
	leaf event.Hash
}

// NewChecker returns a Checker for a log whose signed checkpoints, oldest
// first, are checkpoints (their signatures already verified with a trusted
// key: see ParseCheckpoint), and which must extend trusted, a checkpoint
// verified earlier, when it is not nil. It returns an *Error when trusted
// is of another log than the checkpoints, or when a checkpoint of size 0
// does not have the empty tree's root.
func NewChecker(checkpoints []Checkpoint, trusted *Checkpoint) (*Checker, error) {
	roots := make([][]byte, len(checkpoints))
	for k := range checkpoints {
		roots[k] = checkpoints[k].Root[:]
	}
	return newChecker(sliceList(checkpoints, roots), trusted)
}

// newChecker is NewChecker with the checkpoints read one at a time, and
// their roots as signed, which a malformed checkpoint may have of another
// length than a hash.
func newChecker(cps *cpList, trusted *Checkpoint) (*Checker, error) {
	c := &Checker{
		streams: make(map[string]*stream),
		cps:     cps,
	}
	if cps.n > 0 {
		c.durable = cps.latest.Size
	}
	if t := trusted; t != nil {
		if cps.n > 0 && cps.latest.Origin != t.Origin {
			return nil, &Error{Index: 0, Reason: fmt.Sprintf("the log is %q, the trusted checkpoint is of %q", cps.latest.Origin, t.Origin)}
		}
		c.trusted = t
		c.durable = max(c.durable, t.Size)
	}
	if err := c.checkpoints(); err != nil {
		return nil, err
	}
	return c, nil
}

// Next is the index of the record to feed next: the number checked so far.
func (c *Checker) Next() uint64 { return c.n }

// Add checks record Next() against the records before it, and the tree's
// root against the checkpoints of the size it reaches. It keeps nothing of
// r, which the caller may reuse.
func (c *Checker) Add(r *Record) error {
	if err := c.start(r.Header.Index); err != nil {
		return err
	}
	h := &r.Header
	if err := event.ValidateStream(h.Stream); err != nil {
		return &Error{Index: c.n, Reason: err.Error()}
	}
	s := c.streams[h.Stream]
	if s == nil {
		s = &stream{name: h.Stream}
		c.streams[h.Stream] = s
	}
	return c.chain(s, h.Seq, h.Prev, &r.Leaf, r.More)
}

// addView is Add for a record read with event.ParseHeaderView, its stream
// name as bytes, which it copies only for a stream it has not seen: the
// same checks without allocating a record's strings. It keeps nothing of
// streamName, prev or leaf.
func (c *Checker) addView(index uint64, streamName []byte, seq uint64, prev, leaf *event.Hash, more bool) error {
	if err := c.start(index); err != nil {
		return err
	}
	s := c.streams[string(streamName)]
	name := ""
	if s != nil {
		name = s.name
	} else {
		name = string(streamName)
	}
	if err := event.ValidateStream(name); err != nil {
		return &Error{Index: c.n, Reason: err.Error()}
	}
	if s == nil {
		s = &stream{name: name}
		c.streams[name] = s
	}
	return c.chain(s, seq, prev, leaf, more)
}

// start checks that a record fed next says index Next().
func (c *Checker) start(index uint64) error {
	if c.torn != "" {
		return errors.New("verify: a record fed after the log's torn tail")
	}
	if index != c.n {
		return &Error{Index: c.n, Reason: fmt.Sprintf("record says index %d", index)}
	}
	return nil
}

// chain checks record Next(), of stream s, against the stream's record
// before it, appends its leaf to the tree and checks the checkpoints.
func (c *Checker) chain(s *stream, seq uint64, prev, leaf *event.Hash, more bool) error {
	i := c.n
	if seq != s.seq+1 {
		return &Error{Index: i, Reason: fmt.Sprintf("stream %s: stream_seq %d follows %d (gap or repeat)", s.name, seq, s.seq)}
	}
	switch {
	case s.seq == 0 && prev != nil:
		return &Error{Index: i, Reason: fmt.Sprintf("stream %s: first event has a prev", s.name)}
	case s.seq > 0 && (prev == nil || *prev != s.leaf):
		return &Error{Index: i, Reason: fmt.Sprintf("stream %s: prev does not match the leaf hash of stream_seq %d", s.name, s.seq)}
	}
	s.seq, s.leaf = seq, *leaf
	c.rng.append(leaf)
	c.n++
	c.inGroup = more
	return c.checkpoints()
}

// Damage reports that what the store holds at index Next() is not a record:
// where names the place (a segment file's name), why what is wrong. When
// atEnd (nothing follows it in the store) and no checkpoint covers index
// Next(), it is a torn write, which the engine cuts on start: Damage notes
// it for Report.TornTail and returns nil, and nothing more may be fed but
// Finish. Otherwise it returns an *Error.
func (c *Checker) Damage(where, why string, atEnd bool) error {
	if atEnd && c.n >= c.durable {
		c.torn = fmt.Sprintf("%s at index %d: %s (a torn write past the last checkpoint; trail cuts it on start)", where, c.n, why)
		return nil
	}
	return &Error{Index: c.n, Reason: fmt.Sprintf("%s: %s", where, why)}
}

// checkpoints checks every checkpoint whose size the tree has reached, and
// the trusted one.
func (c *Checker) checkpoints() error {
	for l := c.cps; l.ok && l.cur.Size == c.n; l.pop() {
		if !bytes.Equal(c.root(), l.root) {
			return &Error{Index: max(c.n, 1) - 1, Reason: fmt.Sprintf("tree root of size %d does not match signed checkpoint %d", l.cur.Size, l.k)}
		}
	}
	if t := c.trusted; t != nil && t.Size == c.n {
		if !bytes.Equal(c.root(), t.Root[:]) {
			return &Error{Index: max(c.n, 1) - 1, Reason: fmt.Sprintf(
				"tree root of size %d does not match the trusted checkpoint saved earlier: history was rewritten", t.Size)}
		}
		c.trusted = nil
	}
	return nil
}

// root is the root of the tree checked so far.
func (c *Checker) root() []byte {
	return c.rng.root()
}

// Finish ends the log: every checkpoint, and the trusted one, must have
// been reached. The Report counts the records and streams checked and the
// checkpoints, names the latest checkpoint, and notes a torn tail: damage
// passed to Damage, or a last atomic group left incomplete.
func (c *Checker) Finish() (Report, error) {
	if err := c.checkpoints(); err != nil {
		return Report{}, err
	}
	if l := c.cps; l.ok {
		return Report{}, &Error{Index: c.n, Reason: fmt.Sprintf("log has %d records but signed checkpoint %d covers %d (records were removed)", c.n, l.k, l.cur.Size)}
	}
	if t := c.trusted; t != nil {
		return Report{}, &Error{Index: c.n, Reason: fmt.Sprintf(
			"log has %d records but the trusted checkpoint saved earlier covers %d: history was rolled back", c.n, t.Size)}
	}
	if c.inGroup && c.torn == "" {
		c.torn = fmt.Sprintf("index %d: the last atomic batch is incomplete (a torn write; trail cuts it on start)", c.n)
	}
	rep := Report{Events: c.n, Streams: len(c.streams), Checkpoints: c.cps.n, TornTail: c.torn}
	if c.cps.n > 0 {
		rep.Latest = c.cps.latest
	}
	return rep, nil
}
