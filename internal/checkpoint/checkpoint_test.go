package checkpoint

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"golang.org/x/mod/sumdb/note"

	"github.com/trailhq/trail/internal/durable"
	"github.com/trailhq/trail/internal/segment"
)

const testOrigin = "example.com/log"

// testFS wraps a file system: it counts the bytes read, can discard what is
// written to the checkpoints log, and can call a hook before every change.
type testFS struct {
	vfs.FS
	read       atomic.Int64
	discardLog bool
	before     func() // before each write, sync, create and rename
}

type testFile struct {
	vfs.File
	fs      *testFS
	discard bool
}

func (fs *testFS) hook() {
	if fs.before != nil {
		fs.before()
	}
}

func (fs *testFS) wrap(f vfs.File, name string, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return &testFile{File: f, fs: fs, discard: fs.discardLog && fs.PathBase(name) == LogFile}, nil
}

func (fs *testFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	fs.hook()
	f, err := fs.FS.Create(name, c)
	return fs.wrap(f, name, err)
}

func (fs *testFS) Open(name string, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := fs.FS.Open(name, opts...)
	return fs.wrap(f, name, err)
}

func (fs *testFS) OpenReadWrite(name string, c vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	fs.hook()
	f, err := fs.FS.OpenReadWrite(name, c, opts...)
	return fs.wrap(f, name, err)
}

func (fs *testFS) OpenDir(name string) (vfs.File, error) {
	f, err := fs.FS.OpenDir(name)
	return fs.wrap(f, name, err)
}

func (fs *testFS) Rename(from, to string) error {
	fs.hook()
	return fs.FS.Rename(from, to)
}

func (f *testFile) Read(p []byte) (int, error) {
	n, err := f.File.Read(p)
	f.fs.read.Add(int64(n))
	return n, err
}

func (f *testFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.File.ReadAt(p, off)
	f.fs.read.Add(int64(n))
	return n, err
}

func (f *testFile) Write(p []byte) (int, error) {
	f.fs.hook()
	return f.File.Write(p)
}

func (f *testFile) WriteAt(p []byte, off int64) (int, error) {
	f.fs.hook()
	if f.discard {
		return len(p), nil
	}
	return f.File.WriteAt(p, off)
}

func (f *testFile) Sync() error     { f.fs.hook(); return f.File.Sync() }
func (f *testFile) SyncData() error { f.fs.hook(); return f.File.SyncData() }

func root(size uint64) []byte {
	h := sha256.Sum256(binary.BigEndian.AppendUint64(nil, size))
	return h[:]
}

func mustOpen(t testing.TB, fs vfs.FS) *Store {
	t.Helper()
	s, err := Open(fs, "", testOrigin)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

// fill adds checkpoints of sizes from+1 to to, and returns the last.
func fill(t testing.TB, s *Store, from, to uint64) Checkpoint {
	t.Helper()
	var c Checkpoint
	for size := from + 1; size <= to; size++ {
		var err error
		if c, err = s.Add(size, root(size)); err != nil {
			t.Fatalf("Add(%d): %v", size, err)
		}
	}
	return c
}

func reopen(t testing.TB, fs vfs.FS, s *Store) *Store {
	t.Helper()
	if s != nil {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return mustOpen(t, fs)
}

func wantLatest(t testing.TB, s *Store, want Checkpoint) {
	t.Helper()
	got, ok := s.Latest()
	if !ok || got.Size != want.Size || !bytes.Equal(got.Root, want.Root) || !bytes.Equal(got.Signed, want.Signed) {
		t.Fatalf("Latest = size %d (ok %v), want size %d\ngot:\n%s\nwant:\n%s", got.Size, ok, want.Size, got.Signed, want.Signed)
	}
}

func fileSize(t testing.TB, fs vfs.FS, name string) int64 {
	t.Helper()
	st, err := fs.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// appendBytes and the other writers here pass copies: Pebble's in-memory
// file system scribbles over the buffers it was given in race builds.
func appendBytes(t testing.TB, fs vfs.FS, name string, b []byte) {
	t.Helper()
	f, err := fs.OpenReadWrite(name, vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	if _, err := f.WriteAt(bytes.Clone(b), st.Size()); err != nil {
		t.Fatal(err)
	}
}

func writeAt(t testing.TB, fs vfs.FS, name string, b []byte, off int64) {
	t.Helper()
	f, err := fs.OpenReadWrite(name, vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(bytes.Clone(b), off); err != nil {
		t.Fatal(err)
	}
}

func TestEmpty(t *testing.T) {
	fs := vfs.NewMem()
	s := mustOpen(t, fs)
	if c, ok := s.Latest(); ok {
		t.Fatalf("new store has latest %d", c.Size)
	}
	s = reopen(t, fs, s)
	if _, ok := s.Latest(); ok {
		t.Fatal("reopened empty store has a latest")
	}
	c := fill(t, s, 0, 1)
	wantLatest(t, reopen(t, fs, s), c)
}

// TestMemoryBounded fails when the store keeps every checkpoint it added or
// read: 10,000 of them take some 4 MB.
func TestMemoryBounded(t *testing.T) {
	const n = 10000
	fs := &testFS{FS: vfs.NewMem(), discardLog: true}
	s := mustOpen(t, fs)
	before := heap()
	fill(t, s, 0, n)
	if grew := heap() - before; grew > 512<<10 {
		t.Errorf("adding %d checkpoints grew the heap by %d bytes, want it bounded", n, grew)
	}
	runtime.KeepAlive(s)

	// Open of a log of n checkpoints.
	mem := vfs.NewMem()
	s = mustOpen(t, mem)
	last := fill(t, s, 0, n)
	s.Close()
	before = heap()
	s = mustOpen(t, mem)
	if grew := heap() - before; grew > 512<<10 {
		t.Errorf("opening %d checkpoints grew the heap by %d bytes, want it bounded", n, grew)
	}
	wantLatest(t, s, last)
}

func heap() int64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// TestOpenReadsTail fails when Open reads the whole log when the latest
// file names its last frame, and checks the fallback reads it all.
func TestOpenReadsTail(t *testing.T) {
	fs := &testFS{FS: vfs.NewMem()}
	s := mustOpen(t, fs)
	last := fill(t, s, 0, 2000) // some 350 KB
	s.Close()
	size := fileSize(t, fs, LogFile)

	fs.read.Store(0)
	s = mustOpen(t, fs)
	wantLatest(t, s, last)
	if got := fs.read.Load(); got > tailWindow+4<<10 {
		t.Errorf("Open read %d bytes of a %d-byte log, want at most the tail window", got, size)
	}

	if err := fs.Remove(LatestFile); err != nil {
		t.Fatal(err)
	}
	fs.read.Store(0)
	s = reopen(t, fs, s)
	wantLatest(t, s, last)
	if got := fs.read.Load(); got < size {
		t.Errorf("Open without %s read %d bytes of a %d-byte log, want all", LatestFile, got, size)
	}
	s.Close()
}

func TestReopen(t *testing.T) {
	for _, tc := range []struct {
		name string
		// edit changes the directory after checkpoints 1..10 were added;
		// older holds checkpoints 1..9.
		edit func(t *testing.T, fs vfs.FS, older []Checkpoint)
	}{
		{"clean", func(*testing.T, vfs.FS, []Checkpoint) {}},
		{"crash before the latest file is replaced", func(t *testing.T, fs vfs.FS, older []Checkpoint) {
			writeLatest(t, fs, older[8].Signed)
		}},
		{"latest file stale by several", func(t *testing.T, fs vfs.FS, older []Checkpoint) {
			writeLatest(t, fs, older[2].Signed)
		}},
		{"latest file missing", func(t *testing.T, fs vfs.FS, _ []Checkpoint) {
			if err := fs.Remove(LatestFile); err != nil {
				t.Fatal(err)
			}
		}},
		{"latest file empty", func(t *testing.T, fs vfs.FS, _ []Checkpoint) {
			writeLatest(t, fs, nil)
		}},
		{"latest file garbage", func(t *testing.T, fs vfs.FS, _ []Checkpoint) {
			writeLatest(t, fs, []byte("not a note\n"))
		}},
		{"latest file not in the log", func(t *testing.T, fs vfs.FS, older []Checkpoint) {
			// Signed by the right key, never appended: Add cannot leave
			// this behind, so it is tampering; the log is the record.
			c, _ := Sign(keySigner(t, fs), 999, root(999))
			writeLatest(t, fs, c.Signed)
		}},
		{"torn last frame", func(t *testing.T, fs vfs.FS, older []Checkpoint) {
			frame := segment.AppendFrame(nil, older[0].Signed, false)
			appendBytes(t, fs, LogFile, frame[:len(frame)/2])
		}},
		{"torn header", func(t *testing.T, fs vfs.FS, older []Checkpoint) {
			appendBytes(t, fs, LogFile, []byte{1, 2, 3})
		}},
		{"torn last frame, latest file missing", func(t *testing.T, fs vfs.FS, older []Checkpoint) {
			frame := segment.AppendFrame(nil, older[0].Signed, false)
			appendBytes(t, fs, LogFile, frame[:len(frame)-1])
			fs.Remove(LatestFile)
		}},
		{"zeros after the last frame", func(t *testing.T, fs vfs.FS, older []Checkpoint) {
			appendBytes(t, fs, LogFile, make([]byte, 1000))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := vfs.NewMem()
			s := mustOpen(t, fs)
			var older []Checkpoint
			for size := uint64(1); size < 10; size++ {
				older = append(older, fill(t, s, size-1, size))
			}
			last := fill(t, s, 9, 10)
			s.Close()
			tc.edit(t, fs, older)
			s = mustOpen(t, fs)
			wantLatest(t, s, last)
			// Appending after a cut tail leaves a log that reads back whole.
			next := fill(t, s, 10, 11)
			s = reopen(t, fs, s)
			wantLatest(t, s, next)
			s.Close()
			if n := countAll(t, fs); n != 11 {
				t.Errorf("Each read %d checkpoints, want 11", n)
			}
		})
	}
}

func writeLatest(t testing.TB, fs vfs.FS, signed []byte) {
	t.Helper()
	if err := durable.WriteFile(fs, "", LatestFile, bytes.Clone(signed), false); err != nil {
		t.Fatal(err)
	}
}

func countAll(t testing.TB, fs vfs.FS) int {
	t.Helper()
	v, err := ReadVerifier(fs, "")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	var prev uint64
	if err := Each(fs, "", v, func(i int, c Checkpoint) error {
		if i != n || c.Size < prev {
			t.Fatalf("Each: checkpoint %d is number %d of size %d after %d", n, i, c.Size, prev)
		}
		n, prev = n+1, c.Size
		return nil
	}); err != nil {
		t.Fatalf("Each: %v", err)
	}
	return n
}

func keySigner(t testing.TB, fs vfs.FS) note.Signer {
	t.Helper()
	s := &Store{fs: fs, dir: ""}
	if err := s.loadKeys(""); err != nil {
		t.Fatal(err)
	}
	return s.signer
}

// TestDamage checks what Open and Each say of damage that is not a torn
// last write.
func TestDamage(t *testing.T) {
	setup := func(t *testing.T) (vfs.FS, []int64) {
		fs := vfs.NewMem()
		s := mustOpen(t, fs)
		var offs []int64
		for size := uint64(1); size <= 10; size++ {
			offs = append(offs, s.logSize)
			fill(t, s, size-1, size)
		}
		s.Close()
		return fs, offs
	}
	each := func(fs vfs.FS) error {
		v, err := ReadVerifier(fs, "")
		if err != nil {
			return err
		}
		return Each(fs, "", v, func(int, Checkpoint) error { return nil })
	}

	t.Run("middle", func(t *testing.T) {
		fs, offs := setup(t)
		writeAt(t, fs, LogFile, []byte{0xff}, offs[4]+segment.HeaderSize+3)
		// Open reads from the latest frame on: the damage before it is
		// trail verify's to find.
		wantLatest(t, mustOpen(t, fs), Checkpoint{Size: 10, Root: root(10), Signed: latestNote(t, fs)})
		err := each(fs)
		if err == nil || !strings.Contains(err.Error(), "checkpoint 4 at offset") || !strings.Contains(err.Error(), "more data follows") {
			t.Fatalf("Each = %v, want checkpoint 4 damaged and more data follows", err)
		}
		fs.Remove(LatestFile)
		if _, err := Open(fs, "", testOrigin); err == nil || !strings.Contains(err.Error(), "checkpoint 4 at offset") {
			t.Fatalf("Open without %s = %v, want checkpoint 4 damaged", LatestFile, err)
		}
	})
	t.Run("after the latest", func(t *testing.T) {
		fs, offs := setup(t)
		// A crash before the replace, then damage, then more data: Open must
		// not cut it nor append after it.
		writeLatest(t, fs, nthNote(t, fs, offs, 7))
		writeAt(t, fs, LogFile, []byte{0xff}, offs[8]+segment.HeaderSize+3)
		if _, err := Open(fs, "", testOrigin); err == nil || !strings.Contains(err.Error(), "more data follows") {
			t.Fatalf("Open = %v, want damage followed by data", err)
		}
	})
	t.Run("size decreases", func(t *testing.T) {
		fs := vfs.NewMem()
		s := mustOpen(t, fs)
		fill(t, s, 4, 5)
		if _, err := s.Add(3, root(3)); err == nil {
			t.Fatal("Add of a size below the latest succeeded")
		}
		s.Close()
		// Written behind Add's back: Open, which reads from the latest
		// frame, takes it; Each and a full read refuse it.
		c, err := Sign(keySigner(t, fs), 3, root(3))
		if err != nil {
			t.Fatal(err)
		}
		appendBytes(t, fs, LogFile, segment.AppendFrame(nil, c.Signed, false))
		writeLatest(t, fs, c.Signed)
		wantLatest(t, mustOpen(t, fs), c)
		if err := each(fs); err == nil || !strings.Contains(err.Error(), "checkpoint 1 at offset") || !strings.Contains(err.Error(), "below the previous") {
			t.Fatalf("Each = %v, want checkpoint 1 below the previous", err)
		}
		fs.Remove(LatestFile)
		if _, err := Open(fs, "", testOrigin); err == nil || !strings.Contains(err.Error(), "below the previous") {
			t.Fatalf("Open without %s = %v, want a size below the previous", LatestFile, err)
		}
	})
	t.Run("torn tail", func(t *testing.T) {
		fs, _ := setup(t)
		appendBytes(t, fs, LogFile, []byte{9, 9, 9, 9, 9, 9, 9, 9, 9, 9})
		if err := each(fs); err != nil {
			t.Fatalf("Each of a log with a torn tail: %v", err)
		}
	})
	t.Run("length out of range", func(t *testing.T) {
		fs, offs := setup(t)
		writeAt(t, fs, LogFile, []byte{0xff, 0xff, 0xff, 0x7f}, offs[2])
		if err := each(fs); err != nil {
			t.Fatalf("Each with a length past the end (torn): %v", err)
		}
		writeAt(t, fs, LogFile, []byte{0x10, 0, 0, 0}, offs[2])
		if err := each(fs); err == nil || !strings.Contains(err.Error(), "checkpoint 2 at offset") {
			t.Fatalf("Each = %v, want checkpoint 2 damaged", err)
		}
	})
}

func latestNote(t testing.TB, fs vfs.FS) []byte {
	t.Helper()
	b, err := durable.ReadFile(fs, LatestFile)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// nthNote is the signed note of checkpoint k, whose frame starts at offs[k].
func nthNote(t testing.TB, fs vfs.FS, offs []int64, k int) []byte {
	t.Helper()
	f, err := fs.Open(LogFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.NewSectionReader(f, offs[k], offs[k+1]-offs[k]))
	if err != nil {
		t.Fatal(err)
	}
	rec, _, _, err := segment.DecodeFrame(b)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// TestCrash crashes at every write, sync, create and rename of a run of
// Adds, keeping a random part of what was not synced, and reopens: the
// latest is a checkpoint that was signed, at least as new as every one
// whose Add returned, and the store appends after it so that it reads back.
func TestCrash(t *testing.T) {
	const k = 12
	seeds := 3
	if testing.Short() {
		seeds = 1
	}
	for seed := range uint64(seeds) {
		mem := vfs.NewCrashableMem()
		fs := &testFS{FS: mem}
		rng := rand.New(rand.NewPCG(seed, 7))
		type crash struct {
			fs    *vfs.MemFS
			acked uint64 // the size of the last checkpoint whose Add returned
		}
		var crashes []crash
		var acked uint64
		s := mustOpen(t, fs)
		fs.before = func() {
			pct := rng.IntN(101)
			crashes = append(crashes, crash{mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: pct, RNG: rng}), acked})
		}
		signed := map[string]bool{}
		for size := uint64(1); size <= k; size++ {
			c := fill(t, s, size-1, size)
			signed[string(c.Signed)] = true
			acked = size
		}
		fs.before = nil
		s.Close()
		for i, cr := range crashes {
			s, err := Open(cr.fs, "", testOrigin)
			if err != nil {
				t.Fatalf("seed %d crash %d (after size %d): Open: %v", seed, i, cr.acked, err)
			}
			c, ok := s.Latest()
			switch {
			case cr.acked > 0 && (!ok || c.Size < cr.acked):
				t.Fatalf("seed %d crash %d: latest size %d (ok %v), but Add of size %d returned", seed, i, c.Size, ok, cr.acked)
			case ok && !signed[string(c.Signed)]:
				t.Fatalf("seed %d crash %d: latest size %d was never signed:\n%s", seed, i, c.Size, c.Signed)
			}
			next := fill(t, s, k, k+1)
			s = reopen(t, cr.fs, s)
			wantLatest(t, s, next)
			s.Close()
			countAll(t, cr.fs)
		}
		if len(crashes) < k*4 {
			t.Fatalf("only %d crash points", len(crashes))
		}
	}
}
