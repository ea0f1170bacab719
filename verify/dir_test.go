package verify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/trailhq/trail/event"
	"github.com/trailhq/trail/internal/checkpoint"
	"github.com/trailhq/trail/internal/datadir"
	"github.com/trailhq/trail/internal/segment"
)

// testDir is a data directory written as the engine writes one: records
// over a few streams in segment files, a signed checkpoint at the end of
// each segment.
type testDir struct {
	fs     vfs.FS
	segs   []string // segment file paths
	frames [][2]int // per record: its segment and the offset of its frame
}

// writeDir writes n records, perSeg to a segment, over streams streams.
// Every bigEvery-th record, if bigEvery > 0, is large (20 KiB), larger than
// the smallest chunks the tests read in.
func writeDir(t testing.TB, n, perSeg, streams, bigEvery int) *testDir {
	t.Helper()
	fs := vfs.NewMem()
	if err := datadir.StampFormat(fs, ""); err != nil {
		t.Fatal(err)
	}
	if err := fs.MkdirAll(datadir.LogDir, 0o755); err != nil {
		t.Fatal(err)
	}
	cps, err := checkpoint.Open(fs, "", "example.com/verify-test")
	if err != nil {
		t.Fatal(err)
	}
	defer cps.Close()
	d := &testDir{fs: fs}
	var hashes [][]byte
	var seg []byte
	for i, rec := range chainedRecords(t, n, streams, bigEvery) {
		leaf := event.LeafHash(rec)
		hashes = append(hashes, leaf[:])
		d.frames = append(d.frames, [2]int{len(d.segs), len(seg)})
		seg = segment.AppendFrame(seg, rec, false)
		if (i+1)%perSeg == 0 || i == n-1 {
			d.writeSegment(t, i-i%perSeg, seg)
			seg = seg[:0]
			if _, err := cps.Add(uint64(i+1), rootOf(hashes)); err != nil {
				t.Fatal(err)
			}
		}
	}
	return d
}

// chainedRecords makes n stored records over streams streams, in the
// engine's layout, each stream's chained by prev; every bigEvery-th record,
// if bigEvery > 0, is large (20 KiB).
func chainedRecords(t testing.TB, n, streams, bigEvery int) [][]byte {
	t.Helper()
	seqs := make([]uint64, streams)
	leaves := make([]event.Hash, streams)
	recs := make([][]byte, n)
	for i := range recs {
		st := i % streams
		ev := event.Event{ID: fmt.Sprintf("ev-%d", i), Stream: fmt.Sprintf("patient/%d", st), Type: "patient-record.read",
			Action: "R", Actor: event.Actor{ID: "dr.smith"}}
		if bigEvery > 0 && i%bigEvery == 0 {
			ev.OutcomeDesc = strings.Repeat("x", 20<<10)
		}
		e, _, err := event.Encode(&ev, nil)
		if err != nil {
			t.Fatal(err)
		}
		var prev *event.Hash
		if seqs[st] > 0 {
			prev = &leaves[st]
		}
		salt := bytes.Repeat([]byte{byte(i)}, 16)
		recs[i] = event.AppendStored(nil, &e, uint64(i), seqs[st]+1, []byte("2026-01-02T03:04:05.000000000Z"), salt, prev)
		seqs[st], leaves[st] = seqs[st]+1, event.LeafHash(recs[i])
	}
	return recs
}

// writeSegment writes a segment file of records from first on, ending, as
// the engine's do, in zeros.
func (d *testDir) writeSegment(t testing.TB, first int, frames []byte) {
	t.Helper()
	path := d.fs.PathJoin(datadir.LogDir, fmt.Sprintf("%020d.seg", first))
	f, err := d.fs.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(append(frames, make([]byte, 4096)...)); err != nil {
		t.Fatal(err)
	}
	d.segs = append(d.segs, path)
}

// damage changes record i's bytes with edit, and fixes its frame's CRC if
// fixCRC.
func (d *testDir) damage(t testing.TB, i int, fixCRC bool, edit func(rec []byte)) {
	t.Helper()
	where := d.frames[i]
	f, err := d.fs.OpenReadWrite(d.segs[where[0]], vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, st.Size())
	if _, err := f.ReadAt(data, 0); err != nil {
		t.Fatal(err)
	}
	rec, more, size, err := segment.DecodeFrame(data[where[1]:])
	if err != nil {
		t.Fatal(err)
	}
	edited := bytes.Clone(rec)
	edit(edited)
	frame := segment.AppendFrame(nil, edited, more)
	if !fixCRC {
		frame = append(bytes.Clone(data[where[1]:where[1]+segment.HeaderSize]), edited...)
	}
	if len(frame) != size {
		t.Fatalf("record %d: edited frame is %d bytes, was %d", i, len(frame), size)
	}
	if _, err := f.WriteAt(frame, int64(where[1])); err != nil {
		t.Fatal(err)
	}
}

// flipLast changes a record's last content byte before its closing brace.
func flipLast(rec []byte) { rec[len(rec)-3] ^= 1 }

// flipID changes a record's id, which only its leaf hash covers.
func flipID(rec []byte) { rec[len(`{"id":"`)] ^= 1 }

// sayIndex adds one to the first digit of a record's index (not a 9).
func sayIndex(rec []byte) { rec[bytes.Index(rec, []byte(`"index":`))+len(`"index":`)]++ }

// TestDirFirstDamage damages several records far apart, in different
// segments and batches, and checks that Dir names the first, whatever the
// chunk size and the number of workers, run after run: a worker that finds
// a later record bad first must not win over an earlier error found by the
// Checker or by another worker.
func TestDirFirstDamage(t *testing.T) {
	const n, perSeg = 3000, 700
	tests := []struct {
		name    string
		damage  func(t *testing.T, d *testDir)
		wantErr string
	}{
		{"none", func(*testing.T, *testDir) {}, ""},
		{"two bad CRCs", func(t *testing.T, d *testDir) {
			d.damage(t, 2500, false, flipLast)
			d.damage(t, 410, false, flipLast)
		}, "index 410: 00000000000000000000.seg: record unreadable: record checksum mismatch"},
		{"bad CRC after a wrong index", func(t *testing.T, d *testDir) {
			d.damage(t, 1234, true, sayIndex)
			d.damage(t, 1300, false, flipLast)
			d.damage(t, 2900, false, flipLast)
		}, "index 1234: record says index 2234"},
		{"bad CRC after a broken chain", func(t *testing.T, d *testDir) {
			d.damage(t, 1500, true, flipID)
			d.damage(t, 2990, false, flipLast)
		}, "index 1505: stream patient/0: prev does not match the leaf hash of stream_seq 301"},
		{"bad layout after a bad CRC", func(t *testing.T, d *testDir) {
			d.damage(t, 2000, false, flipLast)
			d.damage(t, 2100, true, func(rec []byte) { rec[0] = '[' })
		}, "index 2000: 00000000000000001400.seg: record unreadable: record checksum mismatch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := writeDir(t, n, perSeg, 5, 97)
			tt.damage(t, d)
			for run := range 5 {
				for _, p := range []struct{ chunk, workers int }{{chunkSize, 1}, {chunkSize, 4}, {4 << 10, 1}, {4 << 10, 3}, {1 << 10, 8}} {
					rep, err := checkDir(context.Background(), "", Options{FS: d.fs}, p.chunk, p.workers)
					got := ""
					if err != nil {
						got = err.Error()
					}
					if got != tt.wantErr {
						t.Fatalf("run %d, chunk %d, %d workers: error %q, want %q", run, p.chunk, p.workers, got, tt.wantErr)
					}
					if err == nil && (rep.Events != n || rep.Streams != 5 || rep.Checkpoints != (n+perSeg-1)/perSeg) {
						t.Fatalf("run %d, chunk %d, %d workers: report %+v", run, p.chunk, p.workers, rep)
					}
				}
			}
		})
	}
}

// TestDirCancel checks that Dir stops, its goroutines with it, when its
// context is cancelled.
func TestDirCancel(t *testing.T) {
	d := writeDir(t, 2000, 500, 3, 97)
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	_, err := checkDir(ctx, "", Options{FS: d.fs, Progress: func(done, total int64) {
		if calls++; calls == 1 {
			cancel()
		}
	}}, 4<<10, 2)
	if err != context.Canceled {
		t.Fatalf("error %v, want %v", err, context.Canceled)
	}
}

// BenchmarkVerifyDir verifies a data directory of 100,000 small records (a
// read event with no details) in memory, with the default chunk size and GOMAXPROCS workers,
// and reports records verified a second.
func BenchmarkVerifyDir(b *testing.B) {
	const n = 100_000
	d := writeDir(b, n, 25_000, 1000, 0)
	for b.Loop() {
		rep, err := Dir(context.Background(), "", Options{FS: d.fs})
		if err != nil || rep.Events != n {
			b.Fatalf("%+v, %v", rep, err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkVerifyDataDir verifies the data directory named by
// $TRAIL_VERIFY_BENCH_DIR (such as one written by trail bench --embedded), on
// disk, and reports records verified a second; it is skipped when unset.
func BenchmarkVerifyDataDir(b *testing.B) {
	dir := os.Getenv("TRAIL_VERIFY_BENCH_DIR")
	if dir == "" {
		b.Skip("TRAIL_VERIFY_BENCH_DIR is not set")
	}
	var events uint64
	for b.Loop() {
		rep, err := Dir(context.Background(), dir, Options{})
		if err != nil {
			b.Fatal(err)
		}
		events += rep.Events
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}

// TestDirRecordAllocs checks that Dir's work on a record allocates nothing
// once its stream is known: a worker's checkFrame and the Checker's addView.
func TestDirRecordAllocs(t *testing.T) {
	recs := chainedRecords(t, 3000, 3, 0)
	frames := make([][]byte, len(recs))
	for i, rec := range recs {
		frames[i] = segment.AppendFrame(nil, rec, false)
	}
	d := sha256.New()
	var sum []byte
	results := make([]checked, len(frames))
	i := 0
	if n := testing.AllocsPerRun(len(frames)-1, func() {
		sum = checkFrame(&results[i], frames[i], false, d, sum)
		i++
	}); n != 0 {
		t.Fatalf("checkFrame allocates %v times a record", n)
	}
	c, err := NewChecker(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	i = 0
	feedOne := func() {
		r := &results[i]
		var prev *event.Hash
		if r.hasPrev {
			prev = &r.prev
		}
		if r.err != "" {
			t.Fatalf("record %d: %s", i, r.err)
		}
		if err := c.addView(r.index, r.stream, r.seq, prev, &r.leaf, r.more); err != nil {
			t.Fatal(err)
		}
		i++
	}
	for range 3 { // the streams' first records
		feedOne()
	}
	if n := testing.AllocsPerRun(len(frames)-4, feedOne); n != 0 {
		t.Fatalf("addView allocates %v times a record", n)
	}
	if rep, err := c.Finish(); err != nil || rep.Events != uint64(len(frames)) || rep.Streams != 3 {
		t.Fatalf("%+v, %v", rep, err)
	}
}
