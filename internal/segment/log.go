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
type Log struct {
	opts Options

	mu   sync.RWMutex
	segs []*seg // ordered by first; the last one is active
	next uint64 // number of records written

	size int64 // bytes in the active segment (writer-owned)
	err  error // sticky write error (writer-owned)
}

type seg struct {
	first uint64
	name  string
	f     vfs.File
	idx   vfs.File // offset index of a sealed segment; nil while active
	offs  []uint32 // record offsets of the active segment
}

func segName(first uint64) string { return fmt.Sprintf("%020d.seg", first) }

// Open opens the log in opts.Dir, creating the first segment if there is none,
// and recovers the active segment's tail (see the package comment).
func Open(opts Options) (*Log, error) {
	if opts.SegmentSize <= 0 {
		opts.SegmentSize = 64 << 20
	}
	l := &Log{opts: opts}
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
	for i, first := range firsts {
		s := &seg{first: first, name: segName(first)}
		if s.f, err = opts.FS.OpenReadWrite(l.path(s.name), vfs.WriteCategoryUnspecified); err != nil {
			l.Close()
			return nil, fmt.Errorf("open segment: %w", err)
		}
		l.segs = append(l.segs, s)
		if i < len(firsts)-1 {
			if err := l.openSealed(s, firsts[i+1]-first); err != nil {
				l.Close()
				return nil, err
			}
		}
	}
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
	s.f = f
	if err := durable.SyncDir(l.opts.FS, l.opts.Dir); err != nil {
		return err
	}
	l.mu.Lock()
	l.segs = append(l.segs, s)
	l.mu.Unlock()
	l.size = 0
	return nil
}

// openSealed opens a sealed segment's offset index, rebuilding it from the
// segment when it is missing or of the wrong length.
func (l *Log) openSealed(s *seg, count uint64) error {
	idxName := strings.TrimSuffix(s.name, ".seg") + ".idx"
	if st, err := l.opts.FS.Stat(l.path(idxName)); err == nil && uint64(st.Size()) == 4*count {
		f, err := l.opts.FS.Open(l.path(idxName))
		if err != nil {
			return fmt.Errorf("open index %s: %w", idxName, err)
		}
		s.idx = f
		return nil
	}
	offs, end, err := l.scanSegment(s)
	if err != nil {
		return err
	}
	if uint64(len(offs)) != count {
		return &CorruptError{Segment: s.name, Offset: end, Index: s.first + uint64(len(offs)),
			Err: fmt.Errorf("sealed segment holds %d records, want %d", len(offs), count)}
	}
	s.offs = offs
	return l.writeIndex(s)
}

// writeIndex writes a sealed segment's offset index and fsyncs it. The index
// is derived data: a crash that loses or tears it is repaired by Open.
func (l *Log) writeIndex(s *seg) error {
	idxName := strings.TrimSuffix(s.name, ".seg") + ".idx"
	f, err := l.opts.FS.Create(l.path(idxName), vfs.WriteCategoryUnspecified)
	if err != nil {
		return fmt.Errorf("create index %s: %w", idxName, err)
	}
	buf := make([]byte, 4*len(s.offs))
	for i, o := range s.offs {
		binary.LittleEndian.PutUint32(buf[4*i:], o)
	}
	if _, err := f.WriteAt(buf, 0); err != nil {
		f.Close()
		return fmt.Errorf("write index %s: %w", idxName, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync index %s: %w", idxName, err)
	}
	l.mu.Lock()
	s.idx, s.offs = f, nil
	l.mu.Unlock()
	return nil
}

// scanSegment decodes every intact record of s, stopping at the end marker or
// at the first damage, and returns the offsets of the records that form
// complete groups and the offset where the last such group ends.
func (l *Log) scanSegment(s *seg) (offs []uint32, end int64, err error) {
	data, err := durable.ReadAll(s.f)
	if err != nil {
		return nil, 0, fmt.Errorf("read segment %s: %w", s.name, err)
	}
	var pos, groupStart int
	for pos < len(data) {
		_, more, size, err := DecodeFrame(data[pos:])
		if err != nil {
			break
		}
		offs = append(offs, uint32(pos))
		pos += size
		if !more {
			groupStart = len(offs)
			end = int64(pos)
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
	s := l.segs[len(l.segs)-1]
	offs, end, err := l.scanSegment(s)
	if err != nil {
		return err
	}
	if n := s.first + uint64(len(offs)); n < l.opts.Durable {
		return &CorruptError{Segment: s.name, Offset: end, Index: n,
			Err: fmt.Errorf("record unreadable below the durable size %d", l.opts.Durable)}
	}
	st, err := s.f.Stat()
	if err != nil {
		return fmt.Errorf("stat segment %s: %w", s.name, err)
	}
	if tail := st.Size() - end; tail > 0 {
		buf := make([]byte, tail)
		if _, err := s.f.ReadAt(buf, end); err == nil && !Zero(buf) {
			clear(buf)
			if _, err := s.f.WriteAt(buf, end); err != nil {
				return fmt.Errorf("cut torn tail of %s at %d: %w", s.name, end, err)
			}
		}
	}
	// Records written before a crash but never synced may be in the page
	// cache only; the caller treats everything it reads here as durable (it
	// signs a checkpoint over it), so make it so.
	if err := s.f.SyncData(); err != nil {
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
// the file to sync to make the batch durable. After an error the Log accepts
// no more writes.
func (l *Log) Append(buf []byte, starts []int) (vfs.File, error) {
	if l.err != nil {
		return nil, l.err
	}
	s := l.segs[len(l.segs)-1]
	if _, err := s.f.WriteAt(buf, l.size); err != nil {
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
	return s.f, nil
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
func (l *Log) Rotate(sync bool) error {
	if l.err != nil {
		return l.err
	}
	s := l.segs[len(l.segs)-1]
	if sync {
		if err := s.f.SyncData(); err != nil {
			l.err = fmt.Errorf("sync segment %s: %w", s.name, err)
			return l.err
		}
	}
	if err := l.writeIndex(s); err != nil {
		l.err = err
		return err
	}
	if err := l.create(l.next); err != nil {
		l.err = err
		return err
	}
	return nil
}

// SyncActive fdatasyncs the active segment, for a writer that does not sync
// its batches (sync none): every record written before the call is durable
// when it returns, as the segments sealed before it were synced by Rotate.
// It may run beside Append. After an error the Log accepts no more writes
// and the file is never synced again.
func (l *Log) SyncActive() error {
	l.mu.RLock()
	s := l.segs[len(l.segs)-1]
	l.mu.RUnlock()
	if err := s.f.SyncData(); err != nil {
		return fmt.Errorf("sync segment %s: %w", s.name, err)
	}
	return nil
}

// Read returns a copy of record i.
func (l *Log) Read(i uint64) ([]byte, error) {
	l.mu.RLock()
	s, off, next, err := l.locate(i)
	l.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	var hdr [HeaderSize]byte
	if _, err := s.f.ReadAt(hdr[:], off); err != nil {
		return nil, fmt.Errorf("read record %d: %w", i, err)
	}
	n := int64(binary.LittleEndian.Uint32(hdr[:]) &^ moreBit)
	if n == 0 || n > MaxRecordSize || (next >= 0 && off+HeaderSize+n != next) {
		return nil, &CorruptError{Segment: s.name, Offset: off, Index: i, Err: ErrLength}
	}
	buf := make([]byte, HeaderSize+n)
	if _, err := s.f.ReadAt(buf, off); err != nil {
		return nil, fmt.Errorf("read record %d: %w", i, err)
	}
	rec, _, _, err := DecodeFrame(buf)
	if err != nil {
		return nil, &CorruptError{Segment: s.name, Offset: off, Index: i, Err: err}
	}
	return rec, nil
}

// locate finds record i: its segment, its offset and the next record's offset
// (-1 when unknown). l.mu must be held.
func (l *Log) locate(i uint64) (*seg, int64, int64, error) {
	if i >= l.next {
		return nil, 0, 0, fmt.Errorf("record %d: past the end (%d records)", i, l.next)
	}
	k, _ := slices.BinarySearchFunc(l.segs, i, func(s *seg, i uint64) int {
		if s.first <= i {
			return -1
		}
		return 1
	})
	s := l.segs[k-1]
	j := i - s.first
	if s.idx == nil {
		next := int64(-1)
		if j+1 < uint64(len(s.offs)) {
			next = int64(s.offs[j+1])
		}
		return s, int64(s.offs[j]), next, nil
	}
	var b [8]byte
	n, err := s.idx.ReadAt(b[:], int64(4*j))
	if n < 4 {
		return nil, 0, 0, fmt.Errorf("read index of %s: %w", s.name, err)
	}
	next := int64(-1)
	if n == 8 {
		next = int64(binary.LittleEndian.Uint32(b[4:]))
	}
	return s, int64(binary.LittleEndian.Uint32(b[:])), next, nil
}

// Scan calls fn for each record from index from up to (not including) to, in
// order, reading each segment sequentially. The record slice is valid only
// during the call.
func (l *Log) Scan(from, to uint64, fn func(i uint64, rec []byte) error) error {
	l.mu.RLock()
	segs := slices.Clone(l.segs)
	if to > l.next {
		to = l.next
	}
	l.mu.RUnlock()
	for k, s := range segs {
		end := to
		if k+1 < len(segs) {
			end = min(end, segs[k+1].first)
		}
		if end <= from || s.first >= to {
			continue
		}
		if err := scanRecords(s, from, end, fn); err != nil {
			return err
		}
	}
	return nil
}

func scanRecords(s *seg, from, to uint64, fn func(i uint64, rec []byte) error) error {
	data, err := durable.ReadAll(s.f)
	if err != nil {
		return fmt.Errorf("read segment %s: %w", s.name, err)
	}
	pos := 0
	for i := s.first; i < to; i++ {
		rec, _, size, err := DecodeFrame(data[pos:])
		if err != nil {
			return &CorruptError{Segment: s.name, Offset: int64(pos), Index: i, Err: err}
		}
		if i >= from {
			if err := fn(i, rec); err != nil {
				return err
			}
		}
		pos += size
	}
	return nil
}

// Close closes every file.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var errs []error
	for _, s := range l.segs {
		if s.f != nil {
			errs = append(errs, s.f.Close())
		}
		if s.idx != nil {
			errs = append(errs, s.idx.Close())
		}
	}
	l.segs = nil
	return errors.Join(errs...)
}
