package segment

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/trailhq/trail/internal/durable"
)

// Options configure a Log.
type Options struct {
	FS  vfs.FS
	Dir string
	// SegmentSize is the size past which the active segment is sealed and a
	// new one started. A group is never split across segments.
	SegmentSize int64
	// Durable is the number of records known to be durable (for example the
	// size of the latest signed checkpoint). Damage below it is corruption and
	// makes Open fail instead of truncating.
	Durable uint64
	// MaxOpenSealed bounds the sealed segments whose files (the segment and
	// its offset index) stay open between reads; the least recently read are
	// closed. Zero means DefaultMaxOpenSealed.
	MaxOpenSealed int
}

// CorruptError reports damage in a part of the log that must be intact.
type CorruptError struct {
	Segment string
	Offset  int64
	Index   uint64 // the first record that cannot be read
	Err     error
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("segment %s offset %d (record %d): %v", e.Segment, e.Offset, e.Index, e.Err)
}

func (e *CorruptError) Unwrap() error { return e.Err }

// Log is the sequence of segments. Append and Rotate are for one writer
// goroutine; Read, Scan and Len are safe for concurrent use.
//
// The active segment's file stays open; sealed segments' files are opened
// on demand and kept in a bounded cache (see cache).
type Log struct {
	opts  Options
	files cache

	mu   sync.RWMutex
	segs []*seg // ordered by first; the last one is active
	next uint64 // number of records written

	active *files // the active segment's files (writer-owned)
	size   int64  // bytes in the active segment (writer-owned)
	err    error  // sticky write error (writer-owned)
}

type seg struct {
	first  uint64
	name   string
	sealed bool     // guarded by Log.mu
	offs   []uint32 // record offsets of the active segment; guarded by Log.mu
	h      *files   // open files, nil when closed; guarded by cache.mu
}

func segName(first uint64) string { return fmt.Sprintf("%020d.seg", first) }

// Open opens the log in opts.Dir, creating the first segment if there is none,
// and recovers the active segment's tail (see the package comment).
func Open(opts Options) (*Log, error) {
	if opts.SegmentSize <= 0 {
		opts.SegmentSize = 64 << 20
	}
	if opts.MaxOpenSealed <= 0 {
		opts.MaxOpenSealed = DefaultMaxOpenSealed
	}
	l := &Log{opts: opts, files: cache{fs: opts.FS, dir: opts.Dir, max: opts.MaxOpenSealed}}
	names, err := opts.FS.List(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", opts.Dir, err)
	}
	var firsts []uint64
	for _, n := range names {
		if s, ok := strings.CutSuffix(n, ".seg"); ok {
			first, err := strconv.ParseUint(s, 10, 64)
			if err != nil || len(s) != 20 {
				return nil, fmt.Errorf("unexpected file %s in %s", n, opts.Dir)
			}
			firsts = append(firsts, first)
		}
	}
	slices.Sort(firsts)
	if len(firsts) == 0 {
		if err := l.create(0); err != nil {
			return nil, err
		}
		return l, nil
	}
	if firsts[0] != 0 {
		return nil, &CorruptError{Segment: segName(0), Err: errors.New("first segment is missing")}
	}
	for i, first := range firsts[:len(firsts)-1] {
		s := &seg{first: first, name: segName(first), sealed: true}
		l.segs = append(l.segs, s)
		if err := l.checkSealed(s, firsts[i+1]-first); err != nil {
			return nil, err
		}
	}
	s := &seg{first: firsts[len(firsts)-1], name: segName(firsts[len(firsts)-1])}
	f, err := opts.FS.OpenReadWrite(l.path(s.name), vfs.WriteCategoryUnspecified)
	if err != nil {
		return nil, fmt.Errorf("open segment %s: %w", s.name, err)
	}
	l.active = &files{f: f}
	l.active.refs.Store(1)
	s.h = l.active
	l.segs = append(l.segs, s)
	if err := l.recoverActive(); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

func (l *Log) path(name string) string { return l.opts.FS.PathJoin(l.opts.Dir, name) }

// create starts a new active segment whose first record is first.
//
// Order: create the file, then fsync the directory so that its entry survives
// a crash. A crash before the directory sync may lose the empty file, which
// Open handles (the previous segment stays active).
func (l *Log) create(first uint64) error {
	s := &seg{first: first, name: segName(first)}
	f, err := l.opts.FS.Create(l.path(s.name), vfs.WriteCategoryUnspecified)
	if err != nil {
		return fmt.Errorf("create segment %s: %w", s.name, err)
	}
	if err := durable.SyncDir(l.opts.FS, l.opts.Dir); err != nil {
		f.Close()
		return err
	}
	l.active = &files{f: f}
	l.active.refs.Store(1)
	s.h = l.active // not yet visible to readers
	l.mu.Lock()
	l.segs = append(l.segs, s)
	l.mu.Unlock()
	l.size = 0
	return nil
}

// checkSealed checks the length of a sealed segment's offset index (count
// records of four bytes), rebuilding it from the segment when it is missing
// or of the wrong length. It leaves no file open: the cache opens them on
// first read.
func (l *Log) checkSealed(s *seg, count uint64) error {
	idxName := strings.TrimSuffix(s.name, ".seg") + ".idx"
	if st, err := l.opts.FS.Stat(l.path(idxName)); err == nil && uint64(st.Size()) == 4*count {
		return nil
	}
	f, err := l.opts.FS.Open(l.path(s.name))
	if err != nil {
		return fmt.Errorf("open segment %s: %w", s.name, err)
	}
	defer f.Close()
	offs, end, err := scanSegment(f, s.name, chunkFor(l.opts.SegmentSize))
	if err != nil {
		return err
	}
	if uint64(len(offs)) != count {
		return &CorruptError{Segment: s.name, Offset: end, Index: s.first + uint64(len(offs)),
			Err: fmt.Errorf("sealed segment holds %d records, want %d", len(offs), count)}
	}
	idx, err := l.writeIndex(s.name, offs)
	if err != nil {
		return err
	}
	if err := idx.Close(); err != nil {
		return fmt.Errorf("close index of %s: %w", s.name, err)
	}
	return nil
}

// writeIndex writes the offset index of sealed segment name and fsyncs it,
// returning the open file. The index is derived data: a crash that loses or
// tears it is repaired by Open.
func (l *Log) writeIndex(name string, offs []uint32) (vfs.File, error) {
	idxName := strings.TrimSuffix(name, ".seg") + ".idx"
	f, err := l.opts.FS.Create(l.path(idxName), vfs.WriteCategoryUnspecified)
	if err != nil {
		return nil, fmt.Errorf("create index %s: %w", idxName, err)
	}
	buf := make([]byte, 4*len(offs))
	for i, o := range offs {
		binary.LittleEndian.PutUint32(buf[4*i:], o)
	}
	if _, err := f.WriteAt(buf, 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("write index %s: %w", idxName, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("sync index %s: %w", idxName, err)
	}
	return f, nil
}

// scanSegment decodes every intact record of segment file f, stopping at the
// end marker or at the first damage, and returns the offsets of the records
// that form complete groups and the offset where the last such group ends.
// It reads the file in chunks.
func scanSegment(f vfs.File, name string, chunk int) (offs []uint32, end int64, err error) {
	r := frameReader{f: f, name: name, chunk: chunk}
	groupStart := 0
	for {
		off := r.offset()
		_, more, ferr, err := r.next()
		if err != nil {
			return nil, 0, err
		}
		if ferr != nil {
			break
		}
		offs = append(offs, uint32(off))
		if !more {
			groupStart = len(offs)
			end = r.offset()
		}
	}
	return offs[:groupStart], end, nil
}

// recoverActive scans the active segment, cuts a torn tail and makes what is
// left durable.
//
// Order: overwrite the tail with zeros, then fdatasync (always: intact records
// may not have been synced before the crash). A crash before the sync leaves
// either the old tail or zeros; both scan to the same end, so the next Open
// repeats the cut.
func (l *Log) recoverActive() error {
	s, f := l.segs[len(l.segs)-1], l.active.f
	offs, end, err := scanSegment(f, s.name, chunkFor(l.opts.SegmentSize))
	if err != nil {
		return err
	}
	if n := s.first + uint64(len(offs)); n < l.opts.Durable {
		return &CorruptError{Segment: s.name, Offset: end, Index: n,
			Err: fmt.Errorf("record unreadable below the durable size %d", l.opts.Durable)}
	}
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat segment %s: %w", s.name, err)
	}
	if tail := st.Size() - end; tail > 0 {
		buf := make([]byte, tail)
		if _, err := f.ReadAt(buf, end); err == nil && !Zero(buf) {
			clear(buf)
			if _, err := f.WriteAt(buf, end); err != nil {
				return fmt.Errorf("cut torn tail of %s at %d: %w", s.name, end, err)
			}
		}
	}
	// Records written before a crash but never synced may be in the page
	// cache only; the caller treats everything it reads here as durable (it
	// signs a checkpoint over it), so make it so.
	if err := f.SyncData(); err != nil {
		return fmt.Errorf("sync segment %s: %w", s.name, err)
	}
	s.offs = offs
	l.size = end
	l.next = s.first + uint64(len(offs))
	return nil
}

// Len returns the number of records written (not necessarily synced).
func (l *Log) Len() uint64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.next
}

// NeedsRotation reports whether a batch of n bytes must go to a new segment:
// the active one is not empty and would pass the rotation size. The caller
// then makes the active segment durable and calls Rotate before Append.
func (l *Log) NeedsRotation(n int) bool {
	return l.size > 0 && l.size+int64(n) > l.opts.SegmentSize
}

// Append writes a batch of frames built with BeginFrame/EndFrame; starts holds
// the offset of each frame in buf. The last frame must end a group. It returns
// the file to sync to make the batch durable, which stays open until the
// next Rotate (the caller syncs a segment's batches before sealing it). After
// an error the Log accepts no more writes.
func (l *Log) Append(buf []byte, starts []int) (vfs.File, error) {
	if l.err != nil {
		return nil, l.err
	}
	s, f := l.segs[len(l.segs)-1], l.active.f
	if _, err := f.WriteAt(buf, l.size); err != nil {
		l.err = fmt.Errorf("write segment %s at %d: %w", s.name, l.size, err)
		return nil, l.err
	}
	l.mu.Lock()
	for _, st := range starts {
		s.offs = append(s.offs, uint32(l.size)+uint32(st))
	}
	l.next += uint64(len(starts))
	l.mu.Unlock()
	l.size += int64(len(buf))
	return f, nil
}

// Rotate seals the active segment and starts the next. The caller must have
// made every record of the active segment durable (synced), or pass sync to
// have Rotate fdatasync it. The writer never syncs a file whose sync has
// failed: after a failed sync there is no rotation, the engine stops.
//
// Order: (fdatasync the segment,) write and fsync its index, then create the
// next segment and fsync the directory. A crash anywhere leaves a valid
// state: the sealed segment is whole, a torn index is rebuilt, and a lost new
// segment leaves the old one active.
//
// The sealed segment's open files, its index included, move to the cache of
// sealed segments, which may close the least recently read ones.
func (l *Log) Rotate(sync bool) error {
	if l.err != nil {
		return l.err
	}
	s := l.segs[len(l.segs)-1]
	if sync {
		if err := l.active.f.SyncData(); err != nil {
			l.err = fmt.Errorf("sync segment %s: %w", s.name, err)
			return l.err
		}
	}
	idx, err := l.writeIndex(s.name, s.offs)
	if err != nil {
		l.err = err
		return err
	}
	l.mu.Lock()
	evicted := l.files.seal(s, idx)
	s.sealed, s.offs = true, nil
	l.mu.Unlock()
	l.active = nil
	closeAll(evicted) // read-only files: nothing to lose
	if err := l.create(l.next); err != nil {
		l.err = err
		return err
	}
	return nil
}

// SyncActive fdatasyncs the active segment, for a writer that does not sync
// its batches (sync none): every record written before the call is durable
// when it returns, as the segments sealed before it were synced by Rotate.
// It may run beside Append and Rotate. After an error the Log accepts no more
// writes and the file is never synced again.
func (l *Log) SyncActive() error {
	l.mu.RLock()
	if len(l.segs) == 0 {
		l.mu.RUnlock()
		return errClosed
	}
	s := l.segs[len(l.segs)-1]
	h, err := l.files.acquire(s) // open: it was active a moment ago
	l.mu.RUnlock()
	if err != nil {
		return err
	}
	defer l.files.release(h)
	if err := h.f.SyncData(); err != nil {
		return fmt.Errorf("sync segment %s: %w", s.name, err)
	}
	return nil
}

// Read returns a copy of record i.
func (l *Log) Read(i uint64) ([]byte, error) {
	s, h, off, next, err := l.locate(i)
	if err != nil {
		return nil, err
	}
	defer l.files.release(h)
	var hdr [HeaderSize]byte
	if _, err := h.f.ReadAt(hdr[:], off); err != nil {
		return nil, fmt.Errorf("read record %d: %w", i, err)
	}
	n := int64(binary.LittleEndian.Uint32(hdr[:]) &^ moreBit)
	if n == 0 || n > MaxRecordSize || (next >= 0 && off+HeaderSize+n != next) {
		return nil, &CorruptError{Segment: s.name, Offset: off, Index: i, Err: ErrLength}
	}
	buf := make([]byte, HeaderSize+n)
	if _, err := h.f.ReadAt(buf, off); err != nil {
		return nil, fmt.Errorf("read record %d: %w", i, err)
	}
	rec, _, _, err := DecodeFrame(buf)
	if err != nil {
		return nil, &CorruptError{Segment: s.name, Offset: off, Index: i, Err: err}
	}
	return rec, nil
}

// locate finds record i: its segment, the segment's files (acquired: the
// caller releases them), its offset and the next record's offset (-1 when
// unknown).
func (l *Log) locate(i uint64) (*seg, *files, int64, int64, error) {
	l.mu.RLock()
	if len(l.segs) == 0 {
		l.mu.RUnlock()
		return nil, nil, 0, 0, errClosed
	}
	if i >= l.next {
		defer l.mu.RUnlock()
		return nil, nil, 0, 0, fmt.Errorf("record %d: past the end (%d records)", i, l.next)
	}
	s := l.segs[l.find(i)]
	j := i - s.first
	if !s.sealed {
		// The active segment's files are open: acquire only counts a
		// reference, which keeps them open if a Rotate seals s and the
		// cache evicts it before the read is done.
		off, next := int64(s.offs[j]), int64(-1)
		if j+1 < uint64(len(s.offs)) {
			next = int64(s.offs[j+1])
		}
		h, err := l.files.acquire(s)
		l.mu.RUnlock()
		return s, h, off, next, err
	}
	l.mu.RUnlock()
	h, err := l.files.acquire(s)
	if err != nil {
		return nil, nil, 0, 0, err
	}
	var b [8]byte
	n, err := h.idx.ReadAt(b[:], int64(4*j))
	if n < 4 {
		l.files.release(h)
		return nil, nil, 0, 0, fmt.Errorf("read index of %s: %w", s.name, err)
	}
	next := int64(-1)
	if n == 8 {
		next = int64(binary.LittleEndian.Uint32(b[4:]))
	}
	return s, h, int64(binary.LittleEndian.Uint32(b[:])), next, nil
}

// find returns the position in l.segs of the segment holding record i.
// l.mu must be held.
func (l *Log) find(i uint64) int {
	k, _ := slices.BinarySearchFunc(l.segs, i, func(s *seg, i uint64) int {
		if s.first <= i {
			return -1
		}
		return 1
	})
	return k - 1
}

// Scan calls fn for each record from index from up to (not including) to, in
// order, reading each segment sequentially in chunks from the record from
// (found through the offset index). The record slice is valid only during
// the call. Scan holds one segment's files open at a time.
func (l *Log) Scan(from, to uint64, fn func(i uint64, rec []byte) error) error {
	l.mu.RLock()
	if len(l.segs) == 0 {
		l.mu.RUnlock()
		return errClosed
	}
	segs := slices.Clone(l.segs)
	to = min(to, l.next)
	// Where from starts in the active segment, which has no index yet and
	// may be sealed (its offsets dropped) before Scan gets to it.
	activeOff := int64(-1)
	if a := segs[len(segs)-1]; !a.sealed && from > a.first && from < to {
		activeOff = int64(a.offs[from-a.first])
	}
	l.mu.RUnlock()
	r := frameReader{chunk: chunkFor(l.opts.SegmentSize)} // one buffer for every segment
	for k, s := range segs {
		end := to
		off := activeOff
		if k+1 < len(segs) {
			end, off = min(end, segs[k+1].first), -1
		}
		if end <= from || s.first >= to {
			continue
		}
		if err := l.scanRecords(&r, s, max(from, s.first), end, off, fn); err != nil {
			return err
		}
	}
	return nil
}

// scanRecords calls fn for records from to to of segment s. off is the
// offset of record from, or -1 to look it up in the segment's index (s is
// then sealed).
func (l *Log) scanRecords(r *frameReader, s *seg, from, to uint64, off int64, fn func(i uint64, rec []byte) error) error {
	h, err := l.files.acquire(s)
	if err != nil {
		return err
	}
	defer l.files.release(h)
	if from == s.first {
		off = 0
	} else if off < 0 {
		var b [4]byte
		if _, err := h.idx.ReadAt(b[:], int64(4*(from-s.first))); err != nil {
			return fmt.Errorf("read index of %s: %w", s.name, err)
		}
		off = int64(binary.LittleEndian.Uint32(b[:]))
	}
	r.reset(h.f, s.name, off)
	for i := from; i < to; i++ {
		pos := r.offset()
		rec, _, ferr, err := r.next()
		if err != nil {
			return err
		}
		if ferr != nil {
			return &CorruptError{Segment: s.name, Offset: pos, Index: i, Err: ferr}
		}
		if err := fn(i, rec); err != nil {
			return err
		}
	}
	return nil
}

// Close closes every file, except those a concurrent Read or Scan still
// reads: they are closed as it returns. Reads after Close fail.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	err := l.files.close(l.segs)
	l.segs = nil
	return err
}
