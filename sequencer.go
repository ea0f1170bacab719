package trail

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"github.com/trailhq/trail/event"
	"hash"
	"hash/maphash"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/trailhq/trail/internal/store"

	"github.com/trailhq/trail/internal/index"
	"github.com/trailhq/trail/internal/segment"
)

// sequencer is the single goroutine that orders events. For each batch taken
// from the queue it prepares the events not yet prepared (prepare.go), then,
// in order, resolves repeated ids and assigns index, stream_seq and
// recorded, reserving each record's room in the batch; the records are then
// written and hashed on two goroutines (materialize), and the store writes
// the whole batch with one write. It never fsyncs: the syncer does, while
// the sequencer builds the next batch.
type sequencer struct {
	l        *Log
	digests  [2]hash.Hash // one per goroutine writing records
	jobs     []recordJob  // the batch's records, in log order
	done     int          // jobs[:done] are written and hashed
	c        *commit      // the commit being built
	seed     maphash.Seed
	heads    map[string]*streamHead // bounded: trimHeads
	trimAt   int                    // len(heads) at which trimHeads next runs…
	trimMore uint64                 // …or when applied has moved from this
	wrote    uint64                 // the end of the last batch this sequencer wrote
	recent   []*recentGen           // ids the index store may not have yet, newest last
	last     time.Time              // recorded time of the previous batch
	maxBytes int                    // Config.MaxBatchBytes: the bytes of records a batch takes
	items    []*Pending
	groups   []*group
	batch    store.Batch   // the batch being built
	batcher  store.Batcher // the store, when it looks ids and heads up a batch at a time
	headErr  error         // a stream head the store could not read in this batch
	bodies   []byte        // bodies prepared by the sequencer goroutine
	bodies2  []byte        // bodies prepared by the second preparing goroutine
	preps    []prepared    // the batch's prepared events, one per item
	arena    []byte        // leaf hashes; the store keeps slices of them
	recorded []byte
	salts    [saltBlock]byte // random bytes; those from saltPos on are unused
	saltPos  int
}

// streamHead is the last event of a stream.
type streamHead struct {
	seq, index uint64
	leaf       Hash // when job is 0
	job        int  // when not 0, the leaf is that of jobs[job-1], not yet hashed
	used       bool // used since trimHeads last passed it
}

// recordJob is a record of the batch being built: sequenced, with its room
// in the batch reserved, waiting to be written and hashed (materialize).
type recordJob struct {
	p          *prepared
	start, end int // the frame: batch.Buf[start:end]
	index, seq uint64
	more       bool
	prevJob    int  // when not 0, prev is the leaf of jobs[prevJob-1]…
	hasPrev    bool // …else prev, when hasPrev
	prev       Hash
	salt       [saltBytes]byte
	leaf       []byte // its slot in the arena
	entry      int    // its index entry, in c.entries
	receipt    *Receipt
	head       *streamHead
	worker     int
}

// parallelRecords is how many records a batch needs for materialize to
// write and hash them on two goroutines rather than one.
var parallelRecords = 256 // a variable for tests

// recentGen is a generation of ids the index store may not have yet, keyed by
// a hash of the id (id → index). A hash shared by two ids sends the later id
// to overflow. A generation is dropped once the store has applied all of it.
type recentGen struct {
	ids      map[uint64]uint64
	overflow map[string]uint64
	max      uint64 // highest index in the generation
}

const recentGenSize = 1 << 16

// commit is a written batch on its way to the syncer.
type commit struct {
	written store.Commit // nil when nothing was written
	items   []*Pending
	groups  []*group
	entries []index.Entry
	end     uint64 // log length once this batch is durable
	events  int    // queue slots to release
}

func newSequencer(l *Log) *sequencer {
	s := &sequencer{
		l:        l,
		digests:  [2]hash.Hash{sha256.New(), sha256.New()},
		seed:     maphash.MakeSeed(),
		heads:    make(map[string]*streamHead),
		maxBytes: l.cfg.MaxBatchBytes,
	}
	s.batcher, _ = l.st.(store.Batcher)
	return s
}

func (s *sequencer) run() {
	defer close(s.l.seqDone)
	defer close(s.l.commits)
	for {
		var n int
		s.items, s.groups, n = s.l.q.take(s.items[:0], s.groups[:0], s.maxBytes)
		if len(s.groups) == 0 {
			select {
			case <-s.l.q.kick:
				continue
			case <-s.l.closing:
				// The queue is closed: what it still holds is all there is.
				s.items, s.groups, n = s.l.q.take(s.items[:0], s.groups[:0], s.maxBytes)
				if len(s.groups) == 0 {
					return
				}
			}
		}
		s.trimHeads() // may wait for the index store: before Begin's lock
		// Begin may wait for this process's previous batch to be made
		// durable (a store several processes write serialises their
		// batches), so it comes before seqBusy: the syncer must not wait
		// for this batch meanwhile. What arrived while it waited joins the
		// batch: one transaction for all of it, not one each.
		begun, err := s.l.st.Begin(context.Background())
		if err == nil && n < s.maxBytes {
			var more int
			s.items, s.groups, more = s.l.q.topUp(s.items, s.groups, s.maxBytes-n)
			n += more
		}
		s.l.seqBusy.Store(true)
		c := s.process(begun, err, n)
		s.l.headsCached.Store(int64(len(s.heads)))
		s.l.seqBusy.Store(false)
		s.l.commits <- c
	}
}

// forget drops what the sequencer cached of the log, which another process
// (or a batch whose outcome is unknown) changed: stream heads and recent
// ids are read from the store again, and recorded times go on from the
// log's last one.
func (s *sequencer) forget(b store.Begun) {
	clear(s.heads)
	clear(s.recent)
	s.recent = s.recent[:0]
	s.catchUpClock(b.LastRecorded)
}

// catchUpClock moves recorded times on to the log's last one, which another
// process may have written: they never go back.
func (s *sequencer) catchUpClock(lastRecorded string) {
	if t, err := time.Parse(RecordedLayout, lastRecorded); err == nil && t.After(s.last) {
		s.last = t
	}
}

// moved takes in what other processes appended since this one's previous
// batch: the heads of the streams they moved, and the log's last recorded
// time.
func (s *sequencer) moved(b store.Begun) {
	for stream, h := range b.Moved {
		if cur, ok := s.heads[stream]; ok {
			cur.seq, cur.index, cur.leaf = h.Seq, h.Index, h.LeafHash
		}
	}
	s.catchUpClock(b.LastRecorded)
}

// resumeClock starts recorded times at the last stored one, so that they
// never decrease along the log even if the clock went back across a restart:
// queries bound time by binary search on it.
func (s *sequencer) resumeClock() error {
	n := s.l.st.Len()
	if n == 0 {
		return nil
	}
	rec, err := s.l.st.Read(n - 1)
	if err != nil {
		return fmt.Errorf("trail: read last record: %w", err)
	}
	h, err := event.ParseHeader(rec)
	if err != nil {
		return fmt.Errorf("trail: last record %d: %w (run trail verify)", n-1, err)
	}
	t, err := time.Parse(RecordedLayout, h.Recorded)
	if err != nil {
		return fmt.Errorf("trail: last record %d: recorded: %w", n-1, err)
	}
	s.last = t
	return nil
}

// process sequences and writes the batch in s.items, begun in the store;
// size is its records' estimated bytes.
func (s *sequencer) process(begun store.Begun, berr error, size int) *commit {
	c := &commit{
		items:  append([]*Pending(nil), s.items...),
		groups: append([]*group(nil), s.groups...),
	}
	for _, p := range c.items {
		c.events += p.size()
	}
	if berr != nil {
		failAll(c.items, s.l.storeFailed(berr))
		return c
	}
	if f := s.l.failure.Load(); f != nil {
		s.l.st.Abort()
		failAll(c.items, f)
		return c
	}
	if begun.Changed {
		s.forget(begun)
	} else if begun.Moved != nil {
		s.moved(begun)
	}
	now := s.l.cfg.Now().UTC()
	if now.Before(s.last) {
		now = s.last
	}
	s.last = now
	s.recorded = now.AppendFormat(s.recorded[:0], RecordedLayout)
	recorded := string(s.recorded)
	s.pruneRecent()
	s.prepareAll(c.items)
	if s.batcher != nil {
		if err := s.prefetch(c.items); err != nil {
			s.l.st.Abort()
			failAll(c.items, s.l.storeFailed(err))
			return c
		}
	}
	s.batch.Reset(s.l.st.Len())
	s.batch.Buf = slices.Grow(s.batch.Buf, size+size/8) // room reserved once, not grown record by record
	s.resetJobs()
	s.c = c
	defer func() { s.c = nil }()
	c.entries = make([]index.Entry, 0, c.events)
	for i, p := range c.items {
		if p.batch != nil {
			s.addBatch(p, c, recorded, now)
		} else {
			s.addOne(p, &s.preps[i], c, recorded, now)
		}
	}
	c.end = s.batch.First + uint64(s.batch.Len())
	if err := s.headErr; err != nil {
		s.headErr = nil
		s.l.st.Abort()
		s.forget(store.Begun{}) // the batch's heads were cached, and it is not stored
		failAll(c.items, s.l.storeFailed(err))
		c.entries = nil
		return c
	}
	if s.batch.Len() == 0 {
		s.l.st.Abort()
		return c
	}
	s.materialize()
	s.batch.Entries = c.entries
	var err error
	if s.l.st.NeedsDurable(&s.batch) {
		err = s.awaitDurable()
	}
	if err == nil {
		c.written, err = s.l.st.Write(&s.batch)
		if err == nil {
			s.wrote = c.end
			if testHookWrite != nil {
				testHookWrite(&s.batch)
			}
		}
	} else {
		s.l.st.Abort()
	}
	if err != nil {
		// The batch is not stored: what the sequencer cached of it is
		// wrong.
		s.forget(store.Begun{})
		failAll(c.items, s.l.storeFailed(err))
		c.written, c.entries = nil, nil
	}
	return c
}

// awaitDurable waits until everything written is durable, for a batch the
// store can only write then (the files store seals a full segment only once
// the syncer has synced all of it, so that only the syncer ever syncs a
// segment and a failed fsync is never retried on the same file).
func (s *sequencer) awaitDurable() error {
	// The syncer may be waiting for the batch being built (seqBusy); hand it
	// an empty batch first, so that it syncs what is written instead of
	// waiting for this batch while this batch waits for it.
	s.l.seqBusy.Store(false)
	s.l.commits <- &commit{end: s.l.st.Len()}
	err := s.l.durable.await(s.l.st.Len(), s.l.Err)
	s.l.seqBusy.Store(true)
	return err
}

// failAll resolves every item not already refused with err.
func failAll(items []*Pending, err error) {
	for _, p := range items {
		if p.err == nil {
			p.err, p.dup = err, false
		}
	}
}

func (s *sequencer) addOne(p *Pending, prep *prepared, c *commit, recorded string, now time.Time) {
	if prep.err != nil {
		p.err = prep.err
		return
	}
	if prep.given {
		r, dup, err := s.lookupID(&p.ev, prep.stored)
		if err != nil || dup {
			p.r, p.dup, p.err = r, dup, err
			return
		}
	}
	s.assign(prep, false, &p.r, recorded, now)
}

// addBatch sequences an atomic batch: every event is checked (validity, ids)
// before any is assigned, so a refusal stores nothing.
func (s *sequencer) addBatch(p *Pending, c *commit, recorded string, now time.Time) {
	req := p.batch
	for i := range req.preps {
		if err := req.preps[i].err; err != nil {
			p.err = &BatchError{Index: i, Err: err}
			return
		}
	}
	n := len(req.evs)
	req.receipts, req.dups = make([]Receipt, n), make([]bool, n)
	firstOf := make([]int, n) // for a repeat within the batch, its first
	var seen map[string]int
	last := -1
	for i := range req.evs {
		ev, prep := &req.evs[i], &req.preps[i]
		firstOf[i] = i
		if prep.given {
			if j, ok := seen[ev.ID]; ok {
				if req.dups[j] {
					// The first copy resent a stored event: so must this one.
					r, dup, err := s.lookupID(ev, prep.stored)
					if err == nil && !dup {
						err = fmt.Errorf("%w: id %q", ErrIDConflict, ev.ID)
					}
					if err != nil {
						p.err = &BatchError{Index: i, Err: err}
						return
					}
					req.receipts[i], req.dups[i] = r, true
					continue
				}
				if !event.Same(&req.evs[j], ev) {
					p.err = &BatchError{Index: i, Err: fmt.Errorf("%w: id %q repeats event %d of the batch", ErrIDConflict, ev.ID, j)}
					return
				}
				firstOf[i], req.dups[i] = j, true
				continue
			}
			if seen == nil {
				seen = make(map[string]int)
			}
			seen[ev.ID] = i
			r, dup, err := s.lookupID(ev, prep.stored)
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
	repeats := false
	for i := range req.evs {
		if firstOf[i] == i && !req.dups[i] {
			s.assign(&req.preps[i], i < last, &req.receipts[i], recorded, now)
		}
		repeats = repeats || firstOf[i] != i
	}
	if repeats {
		s.materialize() // the receipts copied below need their leaf hashes
	}
	for i, j := range firstOf {
		if j != i {
			req.receipts[i] = req.receipts[j]
		}
	}
}

// assign sequences one prepared event: it takes the stream's head, gives
// the event its index, stream_seq and id, and reserves its record's room in
// the batch; materialize writes and hashes the record, and fills in the
// leaf hash of the receipt it sets (rc), of the index entry and of the
// head. more marks a record followed by more of its atomic batch.
func (s *sequencer) assign(p *prepared, more bool, rc *Receipt, recorded string, now time.Time) {
	h := s.head(p.Stream)
	n := s.batch.First + uint64(s.batch.Len())
	if !p.given {
		p.ID = store.GeneratedID(now, n)
	}
	s.jobs = append(s.jobs, recordJob{p: p, index: n, seq: h.seq + 1, more: more, receipt: rc, head: h})
	j := &s.jobs[len(s.jobs)-1]
	if h.seq > 0 {
		j.hasPrev = true
		if j.prevJob = h.job; j.prevJob == 0 {
			j.prev = h.leaf
		}
	}
	copy(j.salt[:], s.salt())

	b := &s.batch
	j.start = b.Begin()
	size := event.StoredLen(&p.Encoded, n, j.seq, len(s.recorded), j.hasPrev)
	b.Buf = slices.Grow(b.Buf, size)[:len(b.Buf)+size] // every byte is written by materialize
	j.end = len(b.Buf)

	if len(s.arena)+sha256.Size > cap(s.arena) {
		s.arena = make([]byte, 0, 64<<10)
	}
	j.leaf = s.arena[len(s.arena) : len(s.arena)+sha256.Size]
	s.arena = s.arena[:len(s.arena)+sha256.Size]
	b.Leaves = append(b.Leaves, j.leaf)

	h.seq, h.index, h.job = j.seq, n, len(s.jobs)
	if p.given {
		s.rememberID(p.ID, n)
	}
	e := p.entry
	e.Index, e.ID, e.Given, e.Stream, e.Seq = n, p.ID, p.given, p.Stream, j.seq
	j.entry = len(s.c.entries)
	s.c.entries = append(s.c.entries, e)
	*rc = Receipt{ID: p.ID, Index: n, Stream: p.Stream, StreamSeq: j.seq, Recorded: recorded}
}

// materialize writes and hashes the records assigned since it last ran,
// then fills in their leaf hashes where assign left them out. Records of
// different streams do not depend on each other, and a record depends on
// the previous record of its stream only through prev, its leaf hash: so a
// record goes to the goroutine of the previous record of its stream in the
// batch, if any, and otherwise to the one with less to do; each goroutine
// takes its records in log order.
func (s *sequencer) materialize() {
	jobs := s.jobs[s.done:]
	if len(jobs) == 0 {
		return
	}
	if len(jobs) < parallelRecords {
		for i := range jobs {
			s.write(&jobs[i], s.digests[0])
		}
	} else {
		var load [2]int
		for i := range jobs {
			j := &jobs[i]
			if j.prevJob > s.done {
				j.worker = s.jobs[j.prevJob-1].worker
			} else if load[1] < load[0] {
				j.worker = 1
			} else {
				j.worker = 0
			}
			load[j.worker] += j.end - j.start
		}
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.writeAll(jobs, 1)
		}()
		s.writeAll(jobs, 0)
		wg.Wait()
	}
	for i := range jobs {
		j := &jobs[i]
		leaf := Hash(j.leaf)
		s.c.entries[j.entry].Leaf = leaf
		j.receipt.LeafHash = leaf
		if j.head.job == s.done+i+1 {
			j.head.leaf, j.head.job = leaf, 0
		}
	}
	s.done = len(s.jobs)
}

// writeAll writes the records of jobs that go to goroutine w, in order.
func (s *sequencer) writeAll(jobs []recordJob, w int) {
	for i := range jobs {
		if jobs[i].worker == w {
			s.write(&jobs[i], s.digests[w])
		}
	}
}

// write writes a record into the room assign reserved, frames it and hashes
// it into its leaf slot.
func (s *sequencer) write(j *recordJob, digest hash.Hash) {
	var prev *Hash
	if j.prevJob != 0 {
		j.prev = Hash(s.jobs[j.prevJob-1].leaf) // written before j: same goroutine or an earlier run
	}
	if j.hasPrev {
		prev = &j.prev
	}
	buf := s.batch.Buf[:j.end]
	body := buf[j.start+segment.HeaderSize : j.start+segment.HeaderSize : j.end]
	rec := event.AppendStored(body, &j.p.Encoded, j.index, j.seq, s.recorded, j.salt[:], prev)
	if len(rec) != cap(body) || &rec[0] != &buf[j.start+segment.HeaderSize] {
		panic(fmt.Sprintf("trail: record %d is %d bytes, %d reserved", j.index, len(rec), cap(body)))
	}
	segment.EndFrame(buf, j.start, j.more)
	digest.Reset()
	digest.Write([]byte{0})
	digest.Write(rec)
	digest.Sum(j.leaf[:0])
}

// resetJobs empties jobs for the next batch, keeping its memory.
func (s *sequencer) resetJobs() {
	clear(s.jobs)
	s.jobs, s.done = s.jobs[:0], 0
}

// testHookWrite, when set (by tests, before the log opens), sees each batch
// the sequencer has written.
var testHookWrite func(*store.Batch)

// saltBlock is how many random bytes the sequencer reads at once: salts for
// 256 records in one call to crypto/rand.
const saltBlock = 256 * saltBytes

const saltBytes = event.SaltLen / 2

// salt returns the next record's 16 random bytes.
func (s *sequencer) salt() []byte {
	if s.saltPos == 0 || s.saltPos == len(s.salts) {
		rand.Read(s.salts[:]) // never fails (crypto/rand crashes the program instead)
		s.saltPos = 0
	}
	b := s.salts[s.saltPos : s.saltPos+saltBytes]
	s.saltPos += saltBytes
	return b
}

// head returns the stream's head, loading it from the index store when the
// sequencer has not seen the stream since start. The store is complete for
// such streams: only the sequencer adds events, and recovery replayed the log
// into the store before the sequencer started.
func (s *sequencer) head(stream string) *streamHead {
	if h, ok := s.heads[stream]; ok {
		h.used = true
		return h
	}
	h := &streamHead{}
	stored, ok, err := s.l.st.Head(stream)
	if err != nil {
		// The store cannot say where the stream is: the batch is not
		// written (process), rather than fork the stream.
		if s.headErr == nil {
			s.headErr = err
		}
		return h
	} else if ok {
		h.seq, h.index, h.leaf = stored.Seq, stored.Index, stored.LeafHash
	}
	// A copy of the name: the fast decoder's strings share one copy of the
	// event's JSON, which the map would otherwise keep alive.
	s.heads[strings.Clone(stream)] = h
	return h
}

// trimHeads keeps the cached stream heads near cfg.MaxStreamHeads. It drops
// heads not used since its previous pass (a clock: a pass clears the mark of
// the heads it keeps), but never one whose event the index store may not
// have applied yet, since head would then read an older head from the store
// and fork the stream. Go's map iteration starts at a random place, so
// successive passes visit the heads in different orders. Each call looks at
// a bounded number of heads, so that a cache full of heads the store lacks
// costs each batch little; once the cache holds half as many again as the
// limit, the sequencer waits for the index store to catch up (backpressure:
// memory stays bounded by the configuration, not by the indexer's lag).
func (s *sequencer) trimHeads() {
	limit := s.l.cfg.MaxStreamHeads
	if len(s.heads) <= limit {
		return
	}
	applied := s.l.applied.load()
	if len(s.heads) > limit+limit/2 && applied < s.wrote {
		if s.awaitApplied() != nil {
			return // the engine failed; the batch will say why
		}
		applied = s.l.applied.load()
	} else if len(s.heads) < s.trimAt && applied == s.trimMore {
		return // nothing new to drop since the last pass
	}
	target := limit - limit/8
	budget := 2*(len(s.heads)-target) + 1024
	for pass := 0; pass < 2 && len(s.heads) > target && budget > 0; pass++ {
		for stream, h := range s.heads {
			if len(s.heads) <= target || budget == 0 {
				break
			}
			budget--
			if h.seq > 0 && h.index >= applied {
				continue // the index store may not have it yet
			}
			if h.used {
				h.used = false
				continue
			}
			delete(s.heads, stream)
		}
	}
	s.trimAt, s.trimMore = len(s.heads)+limit/8, applied
}

// awaitApplied waits until the index store has applied every batch this
// sequencer wrote. (Not the store's length: in a database other processes
// append too, and this process's indexer never applies their events.)
func (s *sequencer) awaitApplied() error {
	end := s.wrote
	// The syncer may be waiting for a batch from the sequencer (seqBusy is
	// clear here, but gather may have seen it set): an empty batch moves it
	// on to sync what is written and hand it to the indexer.
	s.l.commits <- &commit{end: end}
	return s.l.waitApplied(context.Background(), end)
}

func (s *sequencer) rememberID(id string, index uint64) {
	n := len(s.recent)
	if n == 0 || len(s.recent[n-1].ids) >= recentGenSize {
		s.recent = append(s.recent, &recentGen{ids: make(map[uint64]uint64, recentGenSize)})
		n++
	}
	g := s.recent[n-1]
	k := maphash.String(s.seed, id)
	if _, taken := g.ids[k]; taken {
		if g.overflow == nil {
			g.overflow = make(map[string]uint64)
		}
		g.overflow[id] = index
	} else {
		g.ids[k] = index
	}
	g.max = index
}

// pruneRecent drops generations the index store has fully applied.
func (s *sequencer) pruneRecent() {
	applied := s.l.applied.load()
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

// lookupID finds an earlier event with ev's id: the event an id in the
// assigned form names (uuid.go), a recent event with a client-chosen id, or
// stored (found in the index store by prepareAll; -1 if not). The same
// content gives the first receipt (dup); different content is ErrIDConflict.
func (s *sequencer) lookupID(ev *Event, stored int64) (Receipt, bool, error) {
	if i, ok := store.DecodeGeneratedID(ev.ID); ok {
		end := s.batch.First + uint64(s.batch.Len())
		if i >= end && i-end < store.ReservedAhead {
			return Receipt{}, false, &ValidationError{Field: "id", Reason: fmt.Sprintf("%q is in the form of the ids Trail assigns and names an event not yet stored; choose another id", ev.ID)}
		}
		if i < end {
			if r, dup, err := s.compareStored(ev, i); err != nil || dup {
				return r, dup, err
			}
		}
	}
	k := maphash.String(s.seed, ev.ID)
	for g := len(s.recent) - 1; g >= 0; g-- {
		gen := s.recent[g]
		if i, ok := gen.ids[k]; ok {
			r, dup, err := s.compareStored(ev, i)
			if err != nil || dup {
				return r, dup, err
			}
			if i, ok := gen.overflow[ev.ID]; ok {
				return s.compareStored(ev, i)
			}
		}
	}
	if stored >= 0 {
		return s.compareStored(ev, uint64(stored))
	}
	return Receipt{}, false, nil
}

// compareStored compares ev with stored event i. It reports dup when i has
// ev's id and content, ErrIDConflict when it has ev's id and other content,
// and neither when i has another id (a hash collision in the recent set).
func (s *sequencer) compareStored(ev *Event, i uint64) (Receipt, bool, error) {
	rec, err := s.record(i)
	if err != nil {
		return Receipt{}, false, fmt.Errorf("read event %d for id %q: %w", i, ev.ID, err)
	}
	st, err := ParseStored(rec)
	if err != nil {
		return Receipt{}, false, fmt.Errorf("event %d: %w", i, err)
	}
	if st.ID != ev.ID {
		return Receipt{}, false, nil
	}
	if !event.Same(&st.Event, ev) {
		return Receipt{}, false, fmt.Errorf("%w: %q (index %d)", ErrIDConflict, ev.ID, i)
	}
	r := Receipt{ID: st.ID, Index: st.Index, Stream: st.Stream, StreamSeq: st.StreamSeq, Recorded: st.Recorded, LeafHash: LeafHash(rec)}
	return r, true, nil
}

// record returns the stored bytes of event i, which may still be in the batch
// being built.
func (s *sequencer) record(i uint64) ([]byte, error) {
	if i < s.batch.First {
		return s.l.st.Read(i)
	}
	if i-s.batch.First >= uint64(s.done) {
		s.materialize() // an id repeated within the batch: compare with the record
	}
	return s.batch.RecordAt(i)
}
