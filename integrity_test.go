package trail

// Integrity on read and at start (DESIGN.md, Hardening: "Integrity on
// read"; issue 8, "A forged record is served as genuine"): a record whose
// bytes are changed on disk with its frame checksum fixed is never returned
// as genuine, and a forged record past the latest checkpoint stops Open
// before a checkpoint is signed over it.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/trailhq/trail/internal/tamper"
)

// forgeRecord changes one letter of record i's type in the log on fs and
// fixes its frame checksum, as someone with the disk but not the signing
// key would: the frame reads as whole, only the hashes can tell.
func forgeRecord(t *testing.T, fs vfs.FS, dir string, i uint64) {
	t.Helper()
	if _, err := tamper.Record(fs, dir, i); err != nil {
		t.Fatal(err)
	}
}

// wantIntegrity checks that err is an *IntegrityError naming index.
func wantIntegrity(t *testing.T, what string, err error, index uint64) {
	t.Helper()
	var ie *IntegrityError
	if !errors.As(err, &ie) || !errors.Is(err, ErrIntegrity) {
		t.Errorf("%s: %v; want an *IntegrityError naming event %d", what, err, index)
		return
	}
	if ie.Index != index {
		t.Errorf("%s: %v names event %d, want %d", what, err, ie.Index, index)
	}
}

func TestReadForgedRecord(t *testing.T) {
	mem := vfs.NewMem()
	const dir = "/data"
	ctx := context.Background()
	cfg := Config{FS: mem, SegmentSize: 4096, CheckpointInterval: time.Hour}
	l := openFilesTest(t, dir, cfg)
	for i := 0; i < 60; i++ {
		if _, err := l.Append(ctx, testEvent(fmt.Sprintf("patient/%d", i%3), i)); err != nil {
			t.Fatal(err)
		}
	}
	closeQ(t, l)
	const forged = 31 // in patient/1, in a sealed segment
	forgeRecord(t, mem, dir, forged)

	// The record is below the signed checkpoint and the tree is intact:
	// the engine opens and serves everything else.
	l = openFilesTest(t, dir, cfg)
	defer closeQ(t, l)
	_, err := l.Read(forged)
	wantIntegrity(t, "Read of the forged record", err, forged)
	for _, i := range []uint64{0, forged - 1, forged + 1, 59} {
		if _, err := l.Read(i); err != nil {
			t.Errorf("Read(%d) beside the forged record: %v", i, err)
		}
	}
	_, err = l.Query(ctx, Query{Stream: "patient/1", Limit: 100})
	wantIntegrity(t, "Query of the forged record's stream", err, forged)
	_, err = l.Query(ctx, Query{Limit: 1000})
	wantIntegrity(t, "Query of everything", err, forged)
	_, err = l.Query(ctx, Query{Limit: 1000, Desc: true})
	wantIntegrity(t, "Query of everything backwards", err, forged)
	after := uint64(forged + 1)
	if res, err := l.Query(ctx, Query{After: &after, Limit: 1000}); err != nil || len(res.Events) != 60-forged-2 {
		t.Errorf("Query of the events after the forged one: %d events, %v", len(res.Events), err)
	}
	if res, err := l.Query(ctx, Query{Stream: "patient/0", Limit: 100}); err != nil || len(res.Events) != 20 {
		t.Errorf("Query of another stream: %d events, %v; want 20", len(res.Events), err)
	}
	// Appends go on, and so do reads of new records (their leaves are
	// still buffered in the tree).
	r, err := l.Append(ctx, testEvent("patient/1", 60))
	if err != nil {
		t.Fatalf("Append after the forged read: %v", err)
	}
	if rec, err := l.Read(r.Index); err != nil || LeafHash(rec) != r.LeafHash {
		t.Errorf("Read of the new event: %v", err)
	}
}

// TestOpenRefusesForgedUnsignedRecord: records past the latest checkpoint
// (a crash came before the next one) are checked against the tree's leaves
// at start; a forged one refuses to open, naming its index, instead of being
// signed into the next checkpoint.
func TestOpenRefusesForgedUnsignedRecord(t *testing.T) {
	mem := vfs.NewCrashableMem()
	const dir = "/data"
	durableDir(t, mem, dir)
	ctx := context.Background()
	cfg := Config{FS: mem, SegmentSize: 4096, CheckpointInterval: time.Hour}
	l := openFilesTest(t, dir, cfg)
	for i := 0; i < 40; i++ {
		if _, err := l.Append(ctx, testEvent(fmt.Sprintf("patient/%d", i%3), i)); err != nil {
			t.Fatal(err)
		}
	}
	// A proof makes the tree write its hashes, as the engine does when
	// enough are buffered; no checkpoint covers the records yet.
	if _, err := l.Root(l.Size()); err != nil {
		t.Fatal(err)
	}
	if cp := l.Checkpoint(); cp.Size != 0 {
		t.Fatalf("checkpoint of %d events; the test wants none past 0", cp.Size)
	}
	// The process dies: what it wrote stays in the page cache.
	crashed := func() *vfs.MemFS {
		return mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 100, RNG: rand.New(rand.NewPCG(1, 2))})
	}
	whole, forgedFS := crashed(), crashed()
	closeQ(t, l)

	cfg.FS = whole
	l = openFilesTest(t, dir, cfg)
	if l.Size() != 40 {
		t.Errorf("after the crash: %d events, want 40", l.Size())
	}
	closeQ(t, l)

	const forged = 17
	forgeRecord(t, forgedFS, dir, forged)
	cfg.FS = forgedFS
	l, err := Open(dir, cfg)
	if err == nil {
		closeQ(t, l)
		t.Fatalf("Open of a log with record %d forged past the latest checkpoint succeeded", forged)
	}
	wantIntegrity(t, "Open", err, forged)
	if !strings.Contains(err.Error(), fmt.Sprint("event ", forged)) {
		t.Errorf("Open: %q does not name event %d", err, forged)
	}
}
