package segment_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/trailhq/trail/internal/durable"
	"github.com/trailhq/trail/internal/segment"
)

// countFS counts the files open through it (their peak), the opens, and the
// bytes read from them.
type countFS struct {
	vfs.FS
	open, peak, opens, read atomic.Int64
}

type countFile struct {
	vfs.File
	fs     *countFS
	closed atomic.Bool
}

func (fs *countFS) wrap(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	fs.opens.Add(1)
	n := fs.open.Add(1)
	for p := fs.peak.Load(); n > p && !fs.peak.CompareAndSwap(p, n); p = fs.peak.Load() {
	}
	return &countFile{File: f, fs: fs}, nil
}

func (fs *countFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	return fs.wrap(fs.FS.Create(name, c))
}

func (fs *countFS) Open(name string, opts ...vfs.OpenOption) (vfs.File, error) {
	return fs.wrap(fs.FS.Open(name, opts...))
}

func (fs *countFS) OpenReadWrite(name string, c vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	return fs.wrap(fs.FS.OpenReadWrite(name, c, opts...))
}

func (fs *countFS) OpenDir(name string) (vfs.File, error) { return fs.wrap(fs.FS.OpenDir(name)) }

// resetPeak starts a new peak from the files open now.
func (fs *countFS) resetPeak() { fs.peak.Store(fs.open.Load()) }

func (f *countFile) Close() error {
	if f.closed.Swap(true) {
		return errors.New("file closed twice")
	}
	f.fs.open.Add(-1)
	return f.File.Close()
}

func (f *countFile) ReadAt(p []byte, off int64) (int, error) {
	if f.closed.Load() {
		return 0, errors.New("read of a closed file")
	}
	n, err := f.File.ReadAt(p, off)
	f.fs.read.Add(int64(n))
	return n, err
}

// record is the content of record i, of size bytes (at least 16).
func record(i uint64, size int) []byte {
	b := fmt.Appendf(nil, "record %08d ", i)
	return append(b, bytes.Repeat([]byte{byte('a' + i%26)}, size-len(b))...)
}

// appendN appends records [l.Len(), l.Len()+n) of the given size, one group
// each, in batches of up to 2, rotating (with a sync) when a batch does not
// fit the active segment.
func appendN(t testing.TB, l *segment.Log, n, size int) {
	t.Helper()
	for n > 0 {
		var buf []byte
		var starts []int
		for k := 0; k < min(n, 2); k++ {
			starts = append(starts, len(buf))
			buf = segment.AppendFrame(buf, record(l.Len()+uint64(k), size), false)
		}
		if l.NeedsRotation(len(buf)) {
			if err := l.Rotate(true); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := l.Append(buf, starts); err != nil {
			t.Fatal(err)
		}
		n -= len(starts)
	}
}

// newLog writes n records of size bytes into segments of segSize bytes and
// opens the result again through a countFS, with a cache of maxOpen.
func newLog(t testing.TB, n, size int, segSize int64, maxOpen int) (*segment.Log, *countFS) {
	t.Helper()
	mem := vfs.NewMem()
	if err := mem.MkdirAll("log", 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := segment.Open(segment.Options{FS: mem, Dir: "log", SegmentSize: segSize})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, n, size)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	fs := &countFS{FS: mem}
	l, err = segment.Open(segment.Options{FS: fs, Dir: "log", SegmentSize: segSize, MaxOpenSealed: maxOpen, Durable: uint64(n)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Error(err)
		}
		if n := fs.open.Load(); n != 0 {
			t.Errorf("%d files open after Close", n)
		}
	})
	return l, fs
}

func segments(t testing.TB, fs vfs.FS) int {
	t.Helper()
	names, err := fs.List("log")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, name := range names {
		if strings.HasSuffix(name, ".seg") {
			n++
		}
	}
	return n
}

func checkRead(l *segment.Log, i uint64, size int) error {
	rec, err := l.Read(i)
	if err != nil {
		return err
	}
	if want := record(i, size); !bytes.Equal(rec, want) {
		return fmt.Errorf("record %d = %.20q, want %.20q", i, rec, want)
	}
	return nil
}

func checkScan(l *segment.Log, from, to uint64, size int) error {
	next := from
	err := l.Scan(from, to, func(i uint64, rec []byte) error {
		if i != next {
			return fmt.Errorf("scan from %d: record %d after %d", from, i, next-1)
		}
		next++
		if want := record(i, size); !bytes.Equal(rec, want) {
			return fmt.Errorf("scan: record %d = %.20q, want %.20q", i, rec, want)
		}
		return nil
	})
	if err == nil && next != to {
		err = fmt.Errorf("scan [%d, %d) stopped at %d", from, to, next)
	}
	return err
}

// TestOpenFilesBounded reads at random from several goroutines (fewer than
// the cache holds) across many segments, while a writer appends and seals
// more: the files open never pass two per cached segment and the writer's
// few.
func TestOpenFilesBounded(t *testing.T) {
	const (
		size     = 40
		maxOpen  = 8
		readers  = 6
		segSize  = 300
		initial  = 1800 // 6 records of 48 bytes a segment: 300 segments
		appended = 600
	)
	l, fs := newLog(t, initial, size, segSize, maxOpen)
	if n := segments(t, fs); n < 290 {
		t.Fatalf("%d segments, want about 300", n)
	}
	if n := fs.open.Load(); n > 1 {
		t.Fatalf("%d files open after Open, want only the active segment", n)
	}
	fs.resetPeak()
	var wg sync.WaitGroup
	errs := make(chan error, readers+1)
	wg.Go(func() {
		for k := 0; k < appended; k += 12 {
			appendN(t, l, 12, size)
		}
	})
	for g := range readers {
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(g), 1))
			for range 400 {
				n := l.Len()
				from := rnd.Uint64N(n)
				var err error
				if rnd.IntN(4) == 0 {
					err = checkScan(l, from, min(n, from+rnd.Uint64N(40)), size)
				} else {
					err = checkRead(l, from, size)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// The writer holds the active segment, and for a moment the next one
	// and the directory while it syncs it.
	if peak, bound := fs.peak.Load(), int64(2*maxOpen+3); peak > bound {
		t.Errorf("%d files open at the peak, want at most %d", peak, bound)
	}
	if n, bound := fs.open.Load(), int64(2*maxOpen+1); n > bound {
		t.Errorf("%d files open after the reads, want at most %d", n, bound)
	}
	if err := checkScan(l, 0, l.Len(), size); err != nil {
		t.Error(err)
	}
}

// TestEvictionDuringScan evicts the segment a Scan reads, with a cache of
// one, by reading other segments from inside the scan: the scan reads on
// from the files it holds, which are closed once it returns.
func TestEvictionDuringScan(t *testing.T) {
	const size = 40
	l, fs := newLog(t, 120, size, 300, 1)
	from, to := uint64(0), uint64(12) // the first two segments
	next := from
	err := l.Scan(from, to, func(i uint64, rec []byte) error {
		if want := record(i, size); !bytes.Equal(rec, want) {
			return fmt.Errorf("record %d = %.20q, want %.20q", i, rec, want)
		}
		next++
		for _, j := range []uint64{30, 60, 90} {
			if err := checkRead(l, j+i, size); err != nil {
				return err
			}
		}
		// The scanned segment (2 files), the last one read (2), the active (1).
		if n := fs.open.Load(); n > 5 {
			return fmt.Errorf("%d files open during the scan, want at most 5", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if next != to {
		t.Fatalf("scan stopped at %d, want %d", next, to)
	}
	if n := fs.open.Load(); n > 3 {
		t.Errorf("%d files open after the scan, want at most 3 (one cached segment, the active one)", n)
	}
}

// TestEvictionSkipsHeld reads other segments while a Scan holds one, with a
// cache of two: the held segment stays cached, the others take turns.
func TestEvictionSkipsHeld(t *testing.T) {
	const size = 40
	l, fs := newLog(t, 120, size, 300, 2)
	err := l.Scan(0, 6, func(i uint64, rec []byte) error {
		for _, j := range []uint64{30, 60, 90} {
			if err := checkRead(l, j+i, size); err != nil {
				return err
			}
		}
		// The scanned segment, the last one read, the active one.
		if n := fs.open.Load(); n > 5 {
			return fmt.Errorf("%d files open during the scan, want at most 5", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	opens := fs.opens.Load()
	if err := checkRead(l, 5, size); err != nil {
		t.Fatal(err)
	}
	if n := fs.opens.Load() - opens; n != 0 {
		t.Errorf("reading the segment the scan held opened %d files: it was evicted", n)
	}
}

// TestEvictionDuringReads runs readers on different segments with a cache of
// one, so that each evicts the others' files while they read them.
func TestEvictionDuringReads(t *testing.T) {
	const size, readers = 40, 8
	l, _ := newLog(t, 600, size, 300, 1)
	var wg sync.WaitGroup
	errs := make(chan error, readers)
	for g := range readers {
		wg.Go(func() {
			for k := range 300 {
				i := uint64((g*75 + k*7) % 600)
				err := checkRead(l, i, size)
				if err == nil && k%10 == 0 {
					err = checkScan(l, i, min(i+9, 600), size)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestScanFromMiddle scans a few records from the middle of a large segment,
// sealed and active: it reads about what it returns (a chunk at most, plus
// the index) and allocates about a chunk, not the segment.
func TestScanFromMiddle(t *testing.T) {
	const size, n = 1000, 20000 // 20 MB in one segment, then an active one as large
	mem := vfs.NewMem()
	if err := mem.MkdirAll("log", 0o755); err != nil {
		t.Fatal(err)
	}
	fs := &countFS{FS: mem}
	l, err := segment.Open(segment.Options{FS: fs, Dir: "log", SegmentSize: 32 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	appendN(t, l, n, size)
	if err := l.Rotate(true); err != nil {
		t.Fatal(err)
	}
	appendN(t, l, n, size)
	for _, from := range []uint64{n / 2, n + n/2} {
		to := from + 100
		var ms0, ms1 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		read0 := fs.read.Load()
		if err := checkScan(l, from, to, size); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&ms1)
		read := fs.read.Load() - read0
		if limit := int64(1<<20 + 4); read > limit {
			t.Errorf("scan of [%d, %d): read %d bytes, want at most %d (one chunk)", from, to, read, limit)
		}
		if alloc := ms1.TotalAlloc - ms0.TotalAlloc; alloc > 3<<20 {
			t.Errorf("scan of [%d, %d): allocated %d bytes, want about a 1 MiB chunk", from, to, alloc)
		}
	}
	// A whole scan reads each segment about once.
	read0 := fs.read.Load()
	if err := checkScan(l, 0, 2*n, size); err != nil {
		t.Fatal(err)
	}
	if read, total := fs.read.Load()-read0, int64(2*n*(size+segment.HeaderSize)); read > total+2<<20 {
		t.Errorf("scan of the log read %d bytes of %d", read, total)
	}
}

// TestScanLargeRecords scans records larger than the scan's chunk.
func TestScanLargeRecords(t *testing.T) {
	sizes := []int{100, 3 << 20, 200, 1<<20 - 8, 1 << 20, segment.MaxRecordSize, 50}
	mem := vfs.NewMem()
	if err := mem.MkdirAll("log", 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := segment.Open(segment.Options{FS: mem, Dir: "log"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i, size := range sizes {
		buf := segment.AppendFrame(nil, record(uint64(i), size), false)
		if _, err := l.Append(buf, []int{0}); err != nil {
			t.Fatal(err)
		}
	}
	for from := range uint64(len(sizes)) {
		k := from
		err := l.Scan(from, uint64(len(sizes)), func(i uint64, rec []byte) error {
			if i != k || !bytes.Equal(rec, record(i, sizes[i])) {
				return fmt.Errorf("record %d (%d bytes) wrong", i, len(rec))
			}
			k++
			return nil
		})
		if err != nil || k != uint64(len(sizes)) {
			t.Fatalf("scan from %d: stopped at %d: %v", from, k, err)
		}
	}
}

// TestScanCorrupt damages a record of a sealed segment: a scan over it
// reports which, one that starts past it does not read it.
func TestScanCorrupt(t *testing.T) {
	const size = 40
	l, fs := newLog(t, 60, size, 300, 4)
	// Record 8 is the third of the second segment (6 records of 48 bytes).
	f, err := fs.OpenReadWrite(fs.PathJoin("log", "00000000000000000006.seg"), vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("X"), 2*48+20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var ce *segment.CorruptError
	err = l.Scan(0, 60, func(uint64, []byte) error { return nil })
	if !errors.As(err, &ce) || ce.Index != 8 || ce.Offset != 96 || !errors.Is(err, segment.ErrChecksum) {
		t.Errorf("scan over record 8: %v, want a checksum CorruptError at record 8, offset 96", err)
	}
	if err := checkScan(l, 9, 60, size); err != nil {
		t.Errorf("scan past the damage: %v", err)
	}
	if _, err := l.Read(8); !errors.As(err, &ce) || ce.Index != 8 {
		t.Errorf("read of record 8: %v, want a CorruptError", err)
	}
}

// TestOpenRepairs reopens a log with a torn index and a torn active tail:
// the index is rebuilt and closed, the tail cut.
func TestOpenRepairs(t *testing.T) {
	const size = 40
	mem := vfs.NewMem()
	if err := mem.MkdirAll("log", 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := segment.Open(segment.Options{FS: mem, Dir: "log", SegmentSize: 300})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 60, size)
	active := mem.PathJoin("log", fmt.Sprintf("%020d.seg", 54))
	// A torn group: the first record of two, then a partial frame.
	buf := segment.AppendFrame(nil, record(60, size), true)
	buf = append(buf, segment.AppendFrame(nil, record(61, size), false)[:20]...)
	if _, err := l.Append(buf, []int{0}); err != nil {
		t.Fatal(err)
	}
	l.Close()
	idx := mem.PathJoin("log", fmt.Sprintf("%020d.idx", 12))
	data, err := durable.ReadFile(mem, idx)
	if err != nil {
		t.Fatal(err)
	}
	f, err := mem.Create(idx, vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(bytes.Clone(data[:len(data)-3])); err != nil { // Write may scribble on its argument
		t.Fatal(err)
	}
	f.Close()

	fs := &countFS{FS: mem}
	l, err = segment.Open(segment.Options{FS: fs, Dir: "log", SegmentSize: 300, MaxOpenSealed: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if n := fs.open.Load(); n != 1 {
		t.Errorf("%d files open after Open, want only the active segment", n)
	}
	if l.Len() != 60 {
		t.Errorf("Len = %d after cutting the torn group, want 60", l.Len())
	}
	if rebuilt, err := durable.ReadFile(mem, idx); err != nil || !bytes.Equal(rebuilt, data) {
		t.Errorf("rebuilt index %x (%v), want %x", rebuilt, err, data)
	}
	tail, err := durable.ReadFile(mem, active)
	if err != nil {
		t.Fatal(err)
	}
	if end := 6 * (size + segment.HeaderSize); !segment.Zero(tail[end:]) {
		t.Errorf("torn tail past %d not cut: %x", end, tail[end:])
	}
	if err := checkScan(l, 0, 60, size); err != nil {
		t.Error(err)
	}
	for i := range uint64(60) {
		if err := checkRead(l, i, size); err != nil {
			t.Fatal(err)
		}
	}
}

// TestOpenMissingFile names the file a read cannot open.
func TestOpenMissingFile(t *testing.T) {
	l, fs := newLog(t, 60, 40, 300, 2)
	if err := fs.Remove(fs.PathJoin("log", fmt.Sprintf("%020d.seg", 12))); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Read(13); err == nil || !strings.Contains(err.Error(), "00000000000000000012.seg") {
		t.Errorf("read from a removed segment: %v, want an error naming it", err)
	}
}

// BenchmarkRead reads records at random, in parallel, across 300 segments
// that the cache (of the default size) cannot all hold.
func BenchmarkRead(b *testing.B) {
	const size = 40
	l, _ := newLog(b, 1800, size, 300, 0)
	b.RunParallel(func(pb *testing.PB) {
		rnd := rand.New(rand.NewPCG(rand.Uint64(), 1))
		for pb.Next() {
			if _, err := l.Read(rnd.Uint64N(1800)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkReadCached reads records at random from segments the cache
// holds.
func BenchmarkReadCached(b *testing.B) {
	const size = 40
	l, _ := newLog(b, 1800, size, 300, 0)
	b.RunParallel(func(pb *testing.PB) {
		rnd := rand.New(rand.NewPCG(rand.Uint64(), 1))
		for pb.Next() {
			if _, err := l.Read(rnd.Uint64N(6 * 32)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
