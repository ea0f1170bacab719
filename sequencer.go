package trail

import (
	"crypto/sha256"
	"fmt"
	"hash"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/trailhq/trail/internal/index"
	"github.com/trailhq/trail/internal/segment"
)

// sequencer is the single goroutine that orders events. For each batch taken
// from the queue it validates and encodes every event, resolves repeated ids,
// assigns index, stream_seq, prev and recorded, appends the leaves to the
// Merkle tree and writes all records with one write. It never fsyncs: the
// syncer does, while the sequencer prepares the next batch.
type sequencer struct {
	l        *Log
	uuid     *uuidGen
	digest   hash.Hash
	heads    map[string]*streamHead
	recent   []*recentGen // ids not yet in the index store, newest last
	last     time.Time    // recorded time of the previous batch
	maxTake  int
	items    []*Pending
	groups   []*group
	buf      []byte // frames of the batch being built
	starts   []int  // offset of each frame in buf
	bodies   []byte // encoded bodies of the batch
	arena    []byte // leaf hashes; the tree keeps slices of it
	recorded []byte
}

// streamHead is the last event of a stream.
type streamHead struct {
	seq, index uint64
	leaf       Hash
}

// recentID remembers an event whose id the index store may not have yet.
type recentID struct {
	r  Receipt
	ev *Event
}

// recentGen is a generation of recent ids, dropped once the index store has
// applied all of them.
type recentGen struct {
	ids map[string]recentID
	max uint64 // highest index in the generation
}

const recentGenSize = 1 << 16

// commit is a written batch on its way to the syncer.
type commit struct {
	file    vfs.File // nil when nothing was written
	items   []*Pending
	groups  []*group
	entries []index.Entry
	end     uint64 // log length once this batch is durable
	events  int    // queue slots to release
}

// prepared is an event validated and encoded, before it is sequenced.
type prepared struct {
	id, stream string
	body       []byte
	hasTime    bool
}

func newSequencer(l *Log) *sequencer {
	return &sequencer{
		l:       l,
		uuid:    newUUIDGen(),
		digest:  sha256.New(),
		heads:   make(map[string]*streamHead),
		maxTake: max(l.cfg.MaxBatchBytes/256, 1),
	}
}

func (s *sequencer) run() {
	defer close(s.l.seqDone)
	defer close(s.l.commits)
	for {
		s.items, s.groups = s.l.q.take(s.items[:0], s.groups[:0], s.maxTake)
		if len(s.groups) == 0 {
			select {
			case <-s.l.q.kick:
				continue
			case <-s.l.closing:
				// The queue is closed: what it still holds is all there is.
				s.items, s.groups = s.l.q.take(s.items[:0], s.groups[:0], s.maxTake)
				if len(s.groups) == 0 {
					return
				}
			}
		}
		s.l.commits <- s.process()
	}
}

// process sequences and writes the batch in s.items.
func (s *sequencer) process() *commit {
	c := &commit{
		items:  append([]*Pending(nil), s.items...),
		groups: append([]*group(nil), s.groups...),
	}
	for _, p := range c.items {
		c.events += p.size()
	}
	if f := s.l.failure.Load(); f != nil {
		failAll(c.items, f)
		return c
	}
	now := s.l.cfg.Now().UTC()
	if now.Before(s.last) {
		now = s.last
	}
	s.last = now
	s.recorded = now.AppendFormat(s.recorded[:0], RecordedLayout)
	recorded := string(s.recorded)
	s.buf, s.starts, s.bodies = s.buf[:0], s.starts[:0], s.bodies[:0]
	s.pruneRecent()
	for _, p := range c.items {
		if p.batch != nil {
			s.addBatch(p, c, now, recorded)
		} else {
			s.addOne(p, c, now, recorded)
		}
	}
	c.end = s.l.segs.Len() + uint64(len(s.starts))
	if len(s.starts) == 0 {
		return c
	}
	err := s.l.tree.Flush()
	if err == nil {
		c.file, err = s.l.segs.Append(s.buf, s.starts)
	}
	if err != nil {
		failAll(c.items, s.l.fail(err))
		c.file, c.entries = nil, nil
	}
	return c
}

// failAll resolves every item not already refused with err.
func failAll(items []*Pending, err error) {
	for _, p := range items {
		if p.err == nil {
			p.err, p.dup = err, false
		}
	}
}

func (s *sequencer) addOne(p *Pending, c *commit, now time.Time, recorded string) {
	given := p.ev.ID != ""
	prep, err := s.prepare(&p.ev, now)
	if err != nil {
		p.err = err
		return
	}
	if given {
		r, dup, err := s.lookupID(&p.ev)
		if err != nil || dup {
			p.r, p.dup, p.err = r, dup, err
			return
		}
	}
	p.r = s.assign(&p.ev, &prep, false, c, recorded)
}

func (s *sequencer) addBatch(p *Pending, c *commit, now time.Time, recorded string) {
	req := p.batch
	preps := make([]prepared, len(req.evs))
	given := make([]bool, len(req.evs))
	for i := range req.evs {
		given[i] = req.evs[i].ID != ""
		prep, err := s.prepare(&req.evs[i], now)
		if err != nil {
			p.err = &BatchError{Index: i, Err: err}
			return
		}
		preps[i] = prep
	}
	req.receipts = make([]Receipt, len(req.evs))
	req.dups = make([]bool, len(req.evs))
	firstOf := make([]int, len(req.evs)) // for a repeat within the batch, its first
	seen := make(map[string]int)
	last := -1
	for i := range req.evs {
		ev := &req.evs[i]
		firstOf[i] = i
		if given[i] {
			if j, ok := seen[ev.ID]; ok {
				if !sameEvent(&req.evs[j], "", ev) {
					p.err = &BatchError{Index: i, Err: fmt.Errorf("%w: id %q repeats event %d of the batch", ErrIDConflict, ev.ID, j)}
					return
				}
				firstOf[i], req.dups[i] = j, true
				continue
			}
			seen[ev.ID] = i
			r, dup, err := s.lookupID(ev)
			if err != nil {
				p.err = &BatchError{Index: i, Err: err}
				return
			}
			if dup {
				req.receipts[i], req.dups[i] = r, true
				continue
			}
		}
		last = i
	}
	for i := range req.evs {
		if firstOf[i] == i && !req.dups[i] {
			req.receipts[i] = s.assign(&req.evs[i], &preps[i], i < last, c, recorded)
		}
	}
	for i, j := range firstOf {
		if j != i {
			req.receipts[i] = req.receipts[j]
		}
	}
}

// prepare validates ev and encodes its body; it assigns an id when absent.
func (s *sequencer) prepare(ev *Event, now time.Time) (prepared, error) {
	if err := ev.Validate(); err != nil {
		return prepared{}, err
	}
	if ev.ID == "" {
		ev.ID = s.uuid.newV7(now)
	}
	start := len(s.bodies)
	var hasTime bool
	s.bodies, hasTime = appendBody(s.bodies, ev)
	body := s.bodies[start:]
	if n := len(`{"id":"","stream":"",}`) + len(ev.ID) + len(ev.Stream) + len(body); n > MaxEventSize {
		return prepared{}, fmt.Errorf("%w: %d bytes as compact JSON; the limit is %d", ErrTooLarge, n, MaxEventSize)
	}
	return prepared{id: ev.ID, stream: ev.Stream, body: body, hasTime: hasTime}, nil
}

// assign sequences one prepared event and appends its frame to the batch.
func (s *sequencer) assign(ev *Event, p *prepared, more bool, c *commit, recorded string) Receipt {
	h := s.head(p.stream)
	n := s.l.segs.Len() + uint64(len(s.starts))
	var prev *Hash
	if h.seq > 0 {
		prev = &h.leaf
	}
	var start int
	s.buf, start = segment.BeginFrame(s.buf)
	s.buf = appendStored(s.buf, p, n, h.seq+1, s.recorded, prev)
	segment.EndFrame(s.buf, start, more)
	s.starts = append(s.starts, start)

	if len(s.arena)+HashSizeBytes > cap(s.arena) {
		s.arena = make([]byte, 0, 64<<10)
	}
	leaf := s.arena[len(s.arena) : len(s.arena)+HashSizeBytes]
	s.arena = s.arena[:len(s.arena)+HashSizeBytes]
	s.digest.Reset()
	s.digest.Write([]byte{0})
	s.digest.Write(s.buf[start+segment.HeaderSize:])
	s.digest.Sum(leaf[:0])
	s.l.tree.Append(leaf)

	h.seq, h.index = h.seq+1, n
	copy(h.leaf[:], leaf)
	r := Receipt{ID: p.id, Index: n, Stream: p.stream, StreamSeq: h.seq, Recorded: recorded, LeafHash: h.leaf}
	s.rememberID(r, ev)
	c.entries = append(c.entries, index.Entry{Index: n, ID: p.id, Stream: p.stream, Seq: h.seq, Leaf: h.leaf})
	return r
}

// HashSizeBytes is the size of a Hash.
const HashSizeBytes = sha256.Size

// head returns the stream's head, loading it from the index store when the
// sequencer has not seen the stream since start. The store is complete for
// such streams: only the sequencer adds events, and recovery replayed the log
// into the store before the sequencer started.
func (s *sequencer) head(stream string) *streamHead {
	if h, ok := s.heads[stream]; ok {
		return h
	}
	h := &streamHead{}
	stored, ok, err := s.l.idx.Head(stream)
	if err != nil {
		// The index store is unreadable: fail closed rather than fork the stream.
		s.l.fail(err)
	} else if ok {
		h.seq, h.index, h.leaf = stored.Seq, stored.Index, stored.LeafHash
	}
	s.heads[stream] = h
	return h
}

func (s *sequencer) rememberID(r Receipt, ev *Event) {
	n := len(s.recent)
	if n == 0 || len(s.recent[n-1].ids) >= recentGenSize {
		s.recent = append(s.recent, &recentGen{ids: make(map[string]recentID)})
		n++
	}
	g := s.recent[n-1]
	g.ids[r.ID] = recentID{r: r, ev: ev}
	g.max = r.Index
}

// pruneRecent drops generations the index store has fully applied.
func (s *sequencer) pruneRecent() {
	applied := s.l.applied.Load()
	k := 0
	for k < len(s.recent)-1 && s.recent[k].max < applied {
		k++
	}
	if k > 0 {
		n := copy(s.recent, s.recent[k:])
		clear(s.recent[n:])
		s.recent = s.recent[:n]
	}
}

// lookupID finds an earlier event with ev's id: first among recent events,
// then in the index store. A stored event with the same content gives its
// receipt (dup); different content is ErrIDConflict.
func (s *sequencer) lookupID(ev *Event) (Receipt, bool, error) {
	for i := len(s.recent) - 1; i >= 0; i-- {
		if e, ok := s.recent[i].ids[ev.ID]; ok {
			if !sameEvent(e.ev, e.r.Recorded, ev) {
				return Receipt{}, false, fmt.Errorf("%w: %q (index %d)", ErrIDConflict, ev.ID, e.r.Index)
			}
			return e.r, true, nil
		}
	}
	i, ok, err := s.l.idx.ID(ev.ID)
	if err != nil || !ok {
		return Receipt{}, false, err
	}
	rec, err := s.l.segs.Read(i)
	if err != nil {
		return Receipt{}, false, fmt.Errorf("read event %d for id %q: %w", i, ev.ID, err)
	}
	st, err := ParseStored(rec)
	if err != nil {
		return Receipt{}, false, fmt.Errorf("event %d: %w", i, err)
	}
	if !sameEvent(&st.Event, "", ev) {
		return Receipt{}, false, fmt.Errorf("%w: %q (index %d)", ErrIDConflict, ev.ID, i)
	}
	r := Receipt{ID: st.ID, Index: st.Index, Stream: st.Stream, StreamSeq: st.StreamSeq, Recorded: st.Recorded, LeafHash: LeafHash(rec)}
	return r, true, nil
}

// sameEvent reports whether ev is the same as the first event with its id
// (equal after parsing). first's time defaults to recorded when it had none;
// an ev without time matches any time.
func sameEvent(first *Event, recorded string, ev *Event) bool {
	a, b := *first, *ev
	if b.rawTime == "" && b.Time.IsZero() {
		a.Time, a.rawTime = time.Time{}, ""
	} else {
		at := a.Time
		if a.rawTime == "" && at.IsZero() && recorded != "" {
			at, _ = time.Parse(RecordedLayout, recorded)
		}
		if !at.Equal(b.Time) {
			return false
		}
		a.Time, a.rawTime, b.Time, b.rawTime = time.Time{}, "", time.Time{}, ""
	}
	return a.ID == b.ID && sameContent(&a, &b)
}
