package trail_test

// Tamper-evidence: a data directory built by the engine is altered in
// different ways, each on a fresh copy, and trail.Verify (and the trail
// verify command) must name the first bad index.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/trailhq/trail"
)

const (
	tamperPhases   = 3   // opens of the engine, each ending with Close
	tamperPerPhase = 100 // events per phase
)

var tamperStreams = []string{"patient/1", "patient/2", "patient/3", "auth/login", "orders/x-7"}

func writeTamperBase(dir string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := trail.Config{SegmentSize: 4096, CheckpointInterval: time.Hour}
	n := 0
	for phase := 0; phase < tamperPhases; phase++ {
		l, err := trail.Open(dir, cfg)
		if err != nil {
			return err
		}
		for k := 0; k < tamperPerPhase; {
			size := min(1+n%7, tamperPerPhase-k) // batches of 1-7 events
			evs := make([]trail.Event, size)
			for i := range evs {
				evs[i] = trail.Event{
					Stream:  tamperStreams[(n*7+n/3)%len(tamperStreams)],
					Type:    "patient-record.read",
					Action:  "R",
					Actor:   trail.Actor{ID: fmt.Sprintf("dr-%d", n%4), Address: "10.0.0.1"},
					Patient: strconv.Itoa(n % 9),
					Details: json.RawMessage(fmt.Sprintf(`{"n":%d}`, n)),
				}
				n++
			}
			if size == 1 {
				_, err = l.Append(ctx, evs[0])
			} else {
				_, err = l.AppendBatch(ctx, evs)
			}
			if err != nil {
				l.Close(ctx)
				return err
			}
			k += size
		}
		if err := l.Close(ctx); err != nil {
			return err
		}
	}
	return nil
}

// ---- the on-disk layout, read independently of the engine ----

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// frameCRC is the CRC of a frame: CRC-32C over the first four header bytes
// and the record.
func frameCRC(hdr, rec []byte) uint32 {
	return crc32.Update(crc32.Update(0, crcTable, hdr[:4]), crcTable, rec)
}

// loc is where record Index lies: its segment file and frame offset.
type loc struct {
	Index     uint64
	Path      string
	Off       int // of the frame header
	Len       int // of the record
	Stream    string
	StreamSeq uint64
	First     uint64 // first index of its segment
}

func segFiles(t *testing.T, dir string) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "log", "*.seg"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no segments in %s: %v", dir, err)
	}
	slices.Sort(paths)
	return paths
}

// layout lists every record of dir's log in order.
func layout(t *testing.T, dir string) []loc {
	t.Helper()
	var out []loc
	for _, p := range segFiles(t, dir) {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		first, err := strconv.ParseUint(strings.TrimSuffix(filepath.Base(p), ".seg"), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; off+8 <= len(data); {
			word := binary.LittleEndian.Uint32(data[off:])
			if word == 0 {
				break
			}
			n := int(word &^ (1 << 31))
			rec := data[off+8 : off+8+n]
			if frameCRC(data[off:], rec) != binary.LittleEndian.Uint32(data[off+4:]) {
				t.Fatalf("%s offset %d: bad CRC in the untampered log", p, off)
			}
			var h struct {
				Index     uint64 `json:"index"`
				Stream    string `json:"stream"`
				StreamSeq uint64 `json:"stream_seq"`
			}
			if err := json.Unmarshal(rec, &h); err != nil {
				t.Fatalf("%s offset %d: %v", p, off, err)
			}
			if h.Index != uint64(len(out)) {
				t.Fatalf("%s offset %d: index %d, want %d", p, off, h.Index, len(out))
			}
			out = append(out, loc{Index: h.Index, Path: p, Off: off, Len: n, Stream: h.Stream, StreamSeq: h.StreamSeq, First: first})
			off += 8 + n
		}
	}
	return out
}

func readRecord(t *testing.T, l loc) []byte {
	t.Helper()
	data, err := os.ReadFile(l.Path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Clone(data[l.Off+8 : l.Off+8+l.Len])
}

// writeRecord replaces record l with rec (of the same length), fixing the
// frame's CRC when fixCRC is set.
func writeRecord(t *testing.T, l loc, rec []byte, fixCRC bool) {
	t.Helper()
	if len(rec) != l.Len {
		t.Fatalf("writeRecord: %d bytes for a %d-byte record", len(rec), l.Len)
	}
	data, err := os.ReadFile(l.Path)
	if err != nil {
		t.Fatal(err)
	}
	copy(data[l.Off+8:], rec)
	if fixCRC {
		binary.LittleEndian.PutUint32(data[l.Off+4:], frameCRC(data[l.Off:], rec))
	}
	if err := os.WriteFile(l.Path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// frame returns the whole frame bytes of record l.
func frame(t *testing.T, l loc) []byte {
	t.Helper()
	data, err := os.ReadFile(l.Path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Clone(data[l.Off : l.Off+8+l.Len])
}

// leafOf is the RFC 6962 leaf hash, computed here.
func leafOf(rec []byte) trail.Hash { return trail.LeafHash(rec) }

// changeTypeByte changes one letter inside the "type" value: the JSON stays
// valid and in Trail's layout, only the content (and so the hash) changes.
func changeTypeByte(t *testing.T, rec []byte) []byte {
	t.Helper()
	i := bytes.Index(rec, []byte(`"type":"`))
	if i < 0 {
		t.Fatalf("no type in %s", rec)
	}
	out := bytes.Clone(rec)
	out[i+len(`"type":"`)] ^= 0x01 // 'p' ↔ 'q'
	return out
}

// ---- copies ----

func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "data")
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o600)
	})
	if err != nil {
		t.Fatalf("copy %s: %v", src, err)
	}
	return dst
}

// cpInfo is one signed checkpoint in DIR/checkpoints: its frame offset and
// its note.
type cpInfo struct {
	Off  int
	Note []byte
	Size uint64
}

func checkpointsOf(t *testing.T, dir string) []cpInfo {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "checkpoints"))
	if err != nil {
		t.Fatal(err)
	}
	var out []cpInfo
	for off := 0; off+8 <= len(data); {
		n := int(binary.LittleEndian.Uint32(data[off:]) &^ (1 << 31))
		if n == 0 {
			break
		}
		msg := data[off+8 : off+8+n]
		lines := strings.SplitN(string(msg), "\n", 3)
		size, err := strconv.ParseUint(lines[1], 10, 64)
		if err != nil {
			t.Fatalf("checkpoint at %d: %v: %q", off, err, msg)
		}
		out = append(out, cpInfo{Off: off, Note: bytes.Clone(msg), Size: size})
		off += 8 + n
	}
	return out
}

// writeCheckpoint replaces checkpoint c's note (same length).
func writeCheckpoint(t *testing.T, dir string, c cpInfo, msg []byte, fixCRC bool) {
	t.Helper()
	p := filepath.Join(dir, "checkpoints")
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(msg) != len(c.Note) {
		t.Fatalf("checkpoint note of %d bytes for %d", len(msg), len(c.Note))
	}
	copy(data[c.Off+8:], msg)
	if fixCRC {
		binary.LittleEndian.PutUint32(data[c.Off+4:], frameCRC(data[c.Off:], msg))
	}
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// firstCPAfter returns the smallest checkpoint size greater than i.
func firstCPAfter(cps []cpInfo, i uint64) uint64 {
	for _, c := range cps {
		if c.Size > i {
			return c.Size
		}
	}
	return 0
}

// nextInStream returns the index of the next event of l's stream after l.
func nextInStream(locs []loc, i uint64) (uint64, bool) {
	for _, l := range locs[i+1:] {
		if l.Stream == locs[i].Stream {
			return l.Index, true
		}
	}
	return 0, false
}

// ---- the checks ----

func verifyBoth(t *testing.T, dir string) []error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var errs []error
	for _, checkJSON := range []bool{false, true} {
		_, err := trail.Verify(ctx, dir, trail.VerifyOptions{CheckJSON: checkJSON})
		errs = append(errs, err)
	}
	return errs
}

// wantBad checks that Verify finds tampering and names an index in
// [lo, hi].
func wantBad(t *testing.T, dir string, lo, hi uint64) {
	t.Helper()
	for k, err := range verifyBoth(t, dir) {
		var ve *trail.VerifyError
		if !errors.As(err, &ve) {
			t.Errorf("Verify (CheckJSON %v) of a tampered directory: %v (%T), want a *trail.VerifyError", k == 1, err, err)
			continue
		}
		t.Logf("CheckJSON %v: %v", k == 1, ve)
		if ve.Index < lo || ve.Index > hi {
			if lo == hi {
				t.Errorf("Verify (CheckJSON %v): %v; want the first bad index %d", k == 1, ve, lo)
			} else {
				t.Errorf("Verify (CheckJSON %v): %v; want an index in [%d, %d]", k == 1, ve, lo, hi)
			}
		}
	}
}

func wantBadAt(t *testing.T, dir string, index uint64) {
	t.Helper()
	wantBad(t, dir, index, index)
}

func tamperUntampered(t *testing.T, base string) {
	dir := copyDir(t, base)
	locs := layout(t, dir)
	if len(locs) != tamperPhases*tamperPerPhase {
		t.Fatalf("base has %d records, want %d", len(locs), tamperPhases*tamperPerPhase)
	}
	if n := len(segFiles(t, dir)); n < 5 {
		t.Fatalf("base has %d segments; want several", n)
	}
	cps := checkpointsOf(t, dir)
	var sizes []uint64
	for _, c := range cps {
		sizes = append(sizes, c.Size)
	}
	if !slices.Equal(sizes, []uint64{0, 100, 200, 300}) {
		t.Fatalf("checkpoint sizes %v, want [0 100 200 300]", sizes)
	}
	for _, checkJSON := range []bool{false, true} {
		rep, err := trail.Verify(context.Background(), dir, trail.VerifyOptions{CheckJSON: checkJSON})
		if err != nil {
			t.Fatalf("Verify of the untampered directory: %v", err)
		}
		if rep.Events != 300 || rep.Streams != len(tamperStreams) || rep.Checkpoints != 4 || rep.TornTail != "" {
			t.Fatalf("Verify of the untampered directory: %+v", rep)
		}
	}
}

// pick returns a record in the middle of a middle segment that has a later
// event in its stream.
func pick(t *testing.T, locs []loc, near uint64) loc {
	t.Helper()
	for i := near; i < uint64(len(locs)); i++ {
		if _, ok := nextInStream(locs, i); ok && locs[i].Off > 0 {
			return locs[i]
		}
	}
	t.Fatalf("no record to tamper near %d", near)
	return loc{}
}

// (a) One byte of a stored event changed, with the frame CRC fixed: only the
// hashes can tell.
func tamperByteFixedCRC(t *testing.T, base string) {
	for _, near := range []uint64{0, 57, 150, 233} {
		t.Run(fmt.Sprint("content near ", near), func(t *testing.T) {
			dir := copyDir(t, base)
			locs := layout(t, dir)
			cps := checkpointsOf(t, dir)
			l := pick(t, locs, near)
			writeRecord(t, l, changeTypeByte(t, readRecord(t, l)), true)
			// The record itself still looks whole; the change shows at the
			// next event of its stream (its prev) or at the next checkpoint
			// (the root), whichever comes first, and never before l.
			j, _ := nextInStream(locs, l.Index)
			wantBad(t, dir, l.Index, min(j, firstCPAfter(cps, l.Index)-1))
		})
	}
	header := []struct {
		name   string
		member string
	}{{"index", `"index":`}, {"stream_seq", `"stream_seq":`}, {"prev", `"prev":"`}, {"stream", `"stream":"`}}
	for _, h := range header {
		t.Run(h.name, func(t *testing.T) {
			dir := copyDir(t, base)
			locs := layout(t, dir)
			l := pick(t, locs, 120)
			rec := readRecord(t, l)
			i := bytes.Index(rec, []byte(h.member))
			if i < 0 {
				t.Fatalf("no %s in %s", h.member, rec)
			}
			k := i + len(h.member)
			switch {
			case rec[k] >= '0' && rec[k] <= '8':
				rec[k]++
			case rec[k] == '9':
				rec[k] = '8'
			case rec[k] >= 'a' && rec[k] <= 'e':
				rec[k]++
			default:
				rec[k] ^= 0x01
			}
			writeRecord(t, l, rec, true)
			wantBadAt(t, dir, l.Index)
		})
	}
}

// (b) One byte changed without fixing the CRC: the record is unreadable.
func tamperByteBadCRC(t *testing.T, base string) {
	for _, which := range []string{"first", "middle", "last of a segment", "last"} {
		t.Run(which, func(t *testing.T) {
			dir := copyDir(t, base)
			locs := layout(t, dir)
			var l loc
			switch which {
			case "first":
				l = locs[0]
			case "middle":
				l = locs[141]
			case "last of a segment":
				for i := 100; ; i++ {
					if locs[i+1].First != locs[i].First {
						l = locs[i]
						break
					}
				}
			case "last":
				l = locs[len(locs)-1]
			}
			rec := readRecord(t, l)
			rec[len(rec)/2] ^= 0x20
			writeRecord(t, l, rec, false)
			wantBadAt(t, dir, l.Index)
		})
	}
}

// (c) The log cut below the last signed checkpoint.
func tamperTruncate(t *testing.T, base string) {
	t.Run("last segment removed", func(t *testing.T) {
		dir := copyDir(t, base)
		locs := layout(t, dir)
		segs := segFiles(t, dir)
		if err := os.Remove(segs[len(segs)-1]); err != nil {
			t.Fatal(err)
		}
		wantBadAt(t, dir, locs[len(locs)-1].First)
	})
	t.Run("last segment emptied", func(t *testing.T) {
		dir := copyDir(t, base)
		locs := layout(t, dir)
		segs := segFiles(t, dir)
		if err := os.Truncate(segs[len(segs)-1], 0); err != nil {
			t.Fatal(err)
		}
		wantBadAt(t, dir, locs[len(locs)-1].First)
	})
	for _, cut := range []string{"inside a record", "between records", "inside a header"} {
		for _, which := range []string{"last", "middle"} {
			t.Run(which+" segment cut "+cut, func(t *testing.T) {
				dir := copyDir(t, base)
				locs := layout(t, dir)
				var l loc // the first record lost
				if which == "last" {
					l = locs[len(locs)-2]
					if l.Off == 0 {
						l = locs[len(locs)-1]
					}
				} else {
					l = pick(t, locs, 130)
				}
				size := int64(l.Off)
				switch cut {
				case "inside a record":
					size += 8 + int64(l.Len)/2
				case "inside a header":
					size += 5
				}
				if err := os.Truncate(l.Path, size); err != nil {
					t.Fatal(err)
				}
				wantBadAt(t, dir, l.Index)
			})
		}
	}
}

// (d) Two whole records swapped, nothing else changed.
func tamperSwap(t *testing.T, base string) {
	for _, gap := range []uint64{1, 3} {
		t.Run(fmt.Sprint("gap ", gap), func(t *testing.T) {
			dir := copyDir(t, base)
			locs := layout(t, dir)
			var a, b loc
			for i := uint64(150); ; i++ {
				if locs[i].Path == locs[i+gap].Path {
					a, b = locs[i], locs[i+gap]
					break
				}
			}
			data, err := os.ReadFile(a.Path)
			if err != nil {
				t.Fatal(err)
			}
			fa, fb := frame(t, a), frame(t, b)
			var out []byte
			out = append(out, data[:a.Off]...)
			out = append(out, fb...)
			out = append(out, data[a.Off+len(fa):b.Off]...)
			out = append(out, fa...)
			out = append(out, data[b.Off+len(fb):]...)
			if err := os.WriteFile(a.Path, out, 0o600); err != nil {
				t.Fatal(err)
			}
			wantBadAt(t, dir, a.Index)
		})
	}
}

// (e) A middle segment deleted.
func tamperDeleteSegment(t *testing.T, base string) {
	for _, k := range []int{0, 1, -1} {
		t.Run(fmt.Sprint("segment ", k), func(t *testing.T) {
			dir := copyDir(t, base)
			locs := layout(t, dir)
			segs := segFiles(t, dir)
			if k < 0 {
				k = len(segs) / 2
			}
			var first uint64
			for _, l := range locs {
				if l.Path == segs[k] {
					first = l.First
					break
				}
			}
			if err := os.Remove(segs[k]); err != nil {
				t.Fatal(err)
			}
			os.Remove(strings.TrimSuffix(segs[k], ".seg") + ".idx")
			wantBadAt(t, dir, first)
		})
	}
}

// (f) A signed checkpoint altered.
func tamperCheckpoint(t *testing.T, base string) {
	// Any index: a checkpoint that does not verify is named as tampering.
	anyIndex := uint64(1<<63 - 1)
	t.Run("root changed, CRC fixed", func(t *testing.T) {
		dir := copyDir(t, base)
		cps := checkpointsOf(t, dir)
		c := cps[2]
		msg := bytes.Clone(c.Note)
		lines := bytes.SplitN(msg, []byte("\n"), 4)
		lines[2][5] ^= 0x01 // a base64 character of the root
		writeCheckpoint(t, dir, c, msg, true)
		wantBad(t, dir, 0, anyIndex)
	})
	t.Run("signature changed, CRC fixed", func(t *testing.T) {
		dir := copyDir(t, base)
		cps := checkpointsOf(t, dir)
		c := cps[1]
		msg := bytes.Clone(c.Note)
		msg[len(msg)-10] ^= 0x01 // inside the base64 signature
		writeCheckpoint(t, dir, c, msg, true)
		wantBad(t, dir, 0, anyIndex)
	})
	t.Run("latest checkpoint signature changed, CRC fixed", func(t *testing.T) {
		dir := copyDir(t, base)
		cps := checkpointsOf(t, dir)
		c := cps[len(cps)-1]
		msg := bytes.Clone(c.Note)
		msg[len(msg)-10] ^= 0x01
		writeCheckpoint(t, dir, c, msg, true)
		wantBad(t, dir, 0, anyIndex)
	})
	// A middle checkpoint's bytes changed without fixing the frame CRC:
	// not a torn write at the end of the file, so it is tampering too, and
	// the checkpoints after it must still be checked.
	t.Run("middle checkpoint changed, CRC not fixed", func(t *testing.T) {
		dir := copyDir(t, base)
		cps := checkpointsOf(t, dir)
		c := cps[1]
		msg := bytes.Clone(c.Note)
		lines := bytes.SplitN(msg, []byte("\n"), 4)
		lines[2][5] ^= 0x01
		writeCheckpoint(t, dir, c, msg, false)
		wantBad(t, dir, 0, anyIndex)
	})
	// A checkpoint validly signed (with the log's own key, as an insider
	// could) over a root the log does not have: the tree check catches it
	// within the records that checkpoint covers beyond the previous one.
	t.Run("re-signed with another root", func(t *testing.T) {
		dir := copyDir(t, base)
		cps := checkpointsOf(t, dir)
		c := cps[2] // size 200
		skey, err := os.ReadFile(filepath.Join(dir, "checkpoint.key"))
		if err != nil {
			t.Fatal(err)
		}
		signer, err := note.NewSigner(strings.TrimSpace(string(skey)))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.SplitN(string(c.Note), "\n", 4)
		root, _ := base64.StdEncoding.DecodeString(lines[2])
		root[0] ^= 0xff
		text := fmt.Sprintf("%s\n%s\n%s\n", lines[0], lines[1], base64.StdEncoding.EncodeToString(root))
		msg, err := note.Sign(&note.Note{Text: text}, signer)
		if err != nil {
			t.Fatal(err)
		}
		writeCheckpoint(t, dir, c, msg, true)
		wantBad(t, dir, cps[1].Size, c.Size-1)
	})
}

// (g) A record rewritten with a consistent CRC and its stream's prev chain
// recomputed after it: every record and every chain looks whole, and only
// the tree root against the signed checkpoints can tell.
func tamperRewriteChain(t *testing.T, base string) {
	for _, near := range []uint64{3, 110, 250} {
		t.Run(fmt.Sprint("near ", near), func(t *testing.T) {
			dir := copyDir(t, base)
			locs := layout(t, dir)
			cps := checkpointsOf(t, dir)
			l := pick(t, locs, near)
			rec := changeTypeByte(t, readRecord(t, l))
			writeRecord(t, l, rec, true)
			leaf := leafOf(rec)
			for j, ok := nextInStream(locs, l.Index); ok; j, ok = nextInStream(locs, j) {
				r := readRecord(t, locs[j])
				k := bytes.LastIndex(r, []byte(`,"prev":"`))
				if k < 0 {
					t.Fatalf("record %d has no prev: %s", j, r)
				}
				copy(r[k+len(`,"prev":"`):], leaf.String())
				writeRecord(t, locs[j], r, true)
				leaf = leafOf(r)
			}
			wantBad(t, dir, l.Index, firstCPAfter(cps, l.Index)-1)
		})
	}
}

// ---- the command ----

// buildTrail builds the trail command into dir.
func buildTrail(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "trail")
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/trail").CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/trail: %v\n%s", err, out)
	}
	return bin
}

func runTrail(t *testing.T, bin string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, stdout.String(), stderr.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), stdout.String(), stderr.String()
	}
	t.Fatalf("run trail %v: %v", args, err)
	return -1, "", ""
}

func tamperVerifyCommand(t *testing.T, base string) {
	bin := buildTrail(t, t.TempDir())
	whole := copyDir(t, base)
	tampered := copyDir(t, base)
	locs := layout(t, tampered)
	bad := locs[123]
	rec := readRecord(t, bad)
	rec[len(rec)/2] ^= 0x20
	writeRecord(t, bad, rec, false)
	notData := t.TempDir()
	os.WriteFile(filepath.Join(notData, "hello.txt"), []byte("hi"), 0o600)

	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string
	}{
		{"whole", []string{"verify", "--data", whole}, 0, "OK"},
		{"whole, --check-json", []string{"verify", "--check-json", "--data", whole}, 0, "OK"},
		{"tampered", []string{"verify", "--data", tampered}, 1, fmt.Sprintf("index %d", bad.Index)},
		{"not a data dir", []string{"verify", "--data", notData}, 2, ""},
		{"missing dir", []string{"verify", "--data", filepath.Join(notData, "nope")}, 2, ""},
		{"no --data", []string{"verify"}, 2, ""},
		{"extra argument", []string{"verify", "--data", whole, "extra"}, 2, ""},
		{"unknown flag", []string{"verify", "--bogus", "--data", whole}, 2, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runTrail(t, bin, tc.args...)
			if code != tc.code {
				t.Fatalf("trail %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(tc.args, " "), code, tc.code, stdout, stderr)
			}
			if !strings.Contains(stdout, tc.stdout) {
				t.Fatalf("trail %s: stdout %q does not contain %q", strings.Join(tc.args, " "), stdout, tc.stdout)
			}
		})
	}
}

func TestTamper(t *testing.T) {
	base := filepath.Join(t.TempDir(), "data")
	if err := writeTamperBase(base); err != nil {
		t.Fatalf("build the data directory: %v", err)
	}
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, string)
	}{
		{"untampered", tamperUntampered},
		{"a byte changed, CRC fixed", tamperByteFixedCRC},
		{"b byte changed, CRC not fixed", tamperByteBadCRC},
		{"c truncated", tamperTruncate},
		{"d records swapped", tamperSwap},
		{"e segment deleted", tamperDeleteSegment},
		{"f checkpoint altered", tamperCheckpoint},
		{"g record and chain rewritten", tamperRewriteChain},
		{"verify command", tamperVerifyCommand},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, base) })
	}
}
