package trail

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/trailhq/trail/event"
	"hash"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/transparency-dev/merkle/compact"
	"golang.org/x/mod/sumdb/note"

	"github.com/trailhq/trail/internal/checkpoint"
	"github.com/trailhq/trail/internal/datadir"
	"github.com/trailhq/trail/internal/durable"
	"github.com/trailhq/trail/internal/segment"
	"github.com/trailhq/trail/internal/tree"
)

// VerifyError names the first record (or checkpoint) that fails
// verification and why. Its presence means tampering or corruption.
type VerifyError struct {
	Index  uint64 // the first bad index
	Reason string
}

func (e *VerifyError) Error() string {
	return fmt.Sprintf("index %d: %s", e.Index, e.Reason)
}

// ErrNotDataDir: the directory is not a Trail data directory.
var ErrNotDataDir = errors.New("not a Trail data directory")

// VerifyReport summarises a successful verification.
type VerifyReport struct {
	Events      uint64 // records verified
	Streams     int    // distinct streams
	Checkpoints int    // signed checkpoints verified
	TornTail    string // non-empty when the log ends in a torn write past the last checkpoint
	// Latest is the latest signed checkpoint, verified against the log (zero
	// when there is none): what a caller saves to pass as Trusted next time.
	Latest Checkpoint
}

// VerifyOptions tune Verify.
type VerifyOptions struct {
	FS vfs.FS // default: the OS
	// Progress, if set, is called now and then with bytes done and total.
	Progress func(done, total int64)
	// CheckJSON also parses every record as JSON. It costs more than all the
	// other checks together and finds only what Trail itself could write
	// wrong: tampering is caught by the hashes without it.
	CheckJSON bool
	// VerifierKey, when set, is the only key the checkpoints may be signed
	// with: a signed-note verifier key (name+hash+base64, as in
	// checkpoint.vkey) kept apart from the data directory. Empty trusts the
	// directory's own checkpoint.vkey, which cannot detect a history rebuilt
	// and re-signed under a new key.
	VerifierKey string
	// Trusted, when set, is a checkpoint verified earlier (see
	// ParseCheckpoint and VerifyReport.Latest): the log must hold at least
	// its size and have its root at that size, so that a history rolled back
	// or rewritten since, and signed again, is found.
	Trusted *Checkpoint
}

// ParseCheckpoint verifies a signed checkpoint (a C2SP tlog-checkpoint
// signed note, as GET /v1/checkpoint serves it) with a verifier key
// (name+hash+base64) and parses it.
func ParseCheckpoint(signed []byte, verifierKey string) (Checkpoint, error) {
	v, err := note.NewVerifier(strings.TrimSpace(verifierKey))
	if err != nil {
		return Checkpoint{}, fmt.Errorf("verifier key: %w", err)
	}
	c, err := checkpoint.Parse(signed, v)
	if err != nil {
		return Checkpoint{}, err
	}
	return publicCheckpoint(c), nil
}

func publicCheckpoint(c checkpoint.Checkpoint) Checkpoint {
	cp := Checkpoint{Origin: c.Origin, Size: c.Size, Signed: c.Signed}
	copy(cp.Root[:], c.Root)
	return cp
}

// Verify checks a data directory offline, trusting nothing but the verifier
// key (opts.VerifierKey, or else the one in the directory) and the trusted
// checkpoint if given: every record's CRC, its layout and JSON, its index,
// every stream's gap-free stream_seq and prev chain, the Merkle tree
// recomputed from the leaves, every signed checkpoint's signature and root,
// and the trusted checkpoint's root. It returns a *VerifyError naming the
// first bad index when it finds tampering or corruption, and another error
// (matching ErrNotDataDir where that is the cause) when it cannot run.
func Verify(ctx context.Context, dir string, opts VerifyOptions) (VerifyReport, error) {
	fs := opts.FS
	if fs == nil {
		fs = vfs.Default
	}
	var rep VerifyReport
	if err := datadir.CheckFormat(fs, dir); err != nil {
		return rep, err
	}
	cps, err := verifiedCheckpoints(fs, dir, opts.VerifierKey)
	if err != nil {
		return rep, err
	}
	rep.Checkpoints = len(cps)
	segs, total, err := listSegments(fs, fs.PathJoin(dir, datadir.LogDir))
	if err != nil {
		return rep, err
	}
	v := &verifier{streams: make(map[string]*vstream), cps: cps, rng: (&compact.RangeFactory{Hash: tree.HashChildren}).NewEmptyRange(0)}
	if len(cps) > 0 {
		v.durable = cps[len(cps)-1].Size
		rep.Latest = publicCheckpoint(cps[len(cps)-1])
	}
	if t := opts.Trusted; t != nil {
		if len(cps) > 0 && cps[0].Origin != t.Origin {
			return rep, &VerifyError{Index: 0, Reason: fmt.Sprintf("the log is %q, the trusted checkpoint is of %q", cps[0].Origin, t.Origin)}
		}
		v.trusted = t
		v.durable = max(v.durable, t.Size)
	}
	if err := v.checkpoints(); err != nil {
		return rep, err
	}
	// Reading and the per-record checks (CRC, layout, leaf hash) run one
	// segment ahead of the sequential checks (chains, tree, checkpoints).
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	checkedSegs := make(chan checkedSegment, 1)
	go readSegments(ctx, fs, segs, opts.CheckJSON, checkedSegs)
	var done int64
	for k := range segs {
		cs, ok := <-checkedSegs
		if !ok {
			return rep, ctx.Err()
		}
		if cs.err != nil {
			return rep, cs.err
		}
		if cs.seg.first != v.n {
			return rep, &VerifyError{Index: v.n, Reason: fmt.Sprintf("segment %s starts at %d, want %d (records missing)", cs.seg.name, cs.seg.first, v.n)}
		}
		if err := v.segment(cs, k == len(segs)-1); err != nil {
			return rep, err
		}
		done += cs.size
		if opts.Progress != nil {
			opts.Progress(done, total)
		}
	}
	if err := v.finish(); err != nil {
		return rep, err
	}
	rep.Events, rep.Streams, rep.TornTail = v.n, len(v.streams), v.torn
	return rep, nil
}

// verifiedCheckpoints reads dir's signed checkpoints and verifies each with
// vkey, or with the directory's own key when vkey is empty.
func verifiedCheckpoints(fs vfs.FS, dir, vkey string) ([]checkpoint.Checkpoint, error) {
	if vkey == "" {
		if _, err := fs.Stat(fs.PathJoin(dir, checkpoint.VerifierFile)); err != nil {
			return nil, fmt.Errorf("%s: %w (no %s)", dir, ErrNotDataDir, checkpoint.VerifierFile)
		}
		cps, _, err := checkpoint.ReadAll(fs, dir)
		if err != nil {
			return nil, &VerifyError{Index: 0, Reason: "checkpoints: " + err.Error()}
		}
		return cps, nil
	}
	nv, err := note.NewVerifier(strings.TrimSpace(vkey))
	if err != nil {
		return nil, fmt.Errorf("verifier key: %w", err)
	}
	if _, err := fs.Stat(fs.PathJoin(dir, datadir.LogDir)); err != nil {
		return nil, fmt.Errorf("%s: %w (no %s directory)", dir, ErrNotDataDir, datadir.LogDir)
	}
	cps, err := checkpoint.ReadAllWith(fs, dir, nv)
	if err != nil {
		return nil, &VerifyError{Index: 0, Reason: fmt.Sprintf(
			"checkpoints are not all signed by the trusted key %s (the history was re-signed, or they were removed): %v", nv.Name(), err)}
	}
	if len(cps) == 0 {
		return nil, &VerifyError{Index: 0, Reason: "no checkpoint signed by the trusted key vouches for the log (they were removed)"}
	}
	return cps, nil
}

type segFile struct {
	first uint64
	name  string
	path  string
}

func listSegments(fs vfs.FS, dir string) ([]segFile, int64, error) {
	names, err := fs.List(dir)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w: %v", dir, ErrNotDataDir, err)
	}
	var segs []segFile
	var total int64
	for _, n := range names {
		s, ok := strings.CutSuffix(n, ".seg")
		if !ok {
			continue
		}
		first, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return nil, 0, &VerifyError{Reason: fmt.Sprintf("unexpected segment name %s", n)}
		}
		p := fs.PathJoin(dir, n)
		if st, err := fs.Stat(p); err == nil {
			total += st.Size()
		}
		segs = append(segs, segFile{first: first, name: n, path: p})
	}
	slices.SortFunc(segs, func(a, b segFile) int { return compareU64(a.first, b.first) })
	return segs, total, nil
}

func compareU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// verifier holds the sequential state: stream chains, the compact range and
// the next checkpoint to check.
type verifier struct {
	n       uint64 // records verified so far
	durable uint64 // size of the latest checkpoint
	streams map[string]*vstream
	rng     *compact.Range
	cps     []checkpoint.Checkpoint
	nextCP  int
	trusted *Checkpoint // a checkpoint verified earlier; nil once checked
	torn    string
	inGroup bool // the last record said more records of its group follow
}

type vstream struct {
	seq  uint64
	leaf Hash
}

// checked is what a worker computes for one record, independently of others.
type checked struct {
	h    event.Header
	leaf Hash
	more bool
	err  string
}

// checkedSegment is a segment read and checked record by record.
type checkedSegment struct {
	seg     segFile
	size    int64
	results []checked
	rest    int // bytes after the last frame that are not zero
	err     error
}

// readSegments reads each segment, splits it into frames and checks them in
// parallel, in order.
func readSegments(ctx context.Context, fs vfs.FS, segs []segFile, checkJSON bool, out chan<- checkedSegment) {
	defer close(out)
	for _, s := range segs {
		data, err := durable.ReadFile(fs, s.path)
		cs := checkedSegment{seg: s, size: int64(len(data))}
		if err != nil {
			cs.err = fmt.Errorf("read %s: %w", s.path, err)
		} else {
			frames, pos := segment.Split(data)
			cs.results = checkFrames(frames, checkJSON)
			if !segment.Zero(data[pos:]) {
				cs.rest = len(data) - pos
			}
		}
		select {
		case out <- cs:
		case <-ctx.Done():
			return
		}
		if cs.err != nil {
			return
		}
	}
}

// segment runs the sequential checks over a checked segment.
func (v *verifier) segment(cs checkedSegment, last bool) error {
	for i := range cs.results {
		r := &cs.results[i]
		if r.err != "" {
			return v.tail(last, cs.seg.name, fmt.Sprintf("record unreadable: %s", r.err))
		}
		if err := v.record(r); err != nil {
			return err
		}
	}
	if cs.rest > 0 {
		return v.tail(last, cs.seg.name, fmt.Sprintf("%d bytes after the last whole record are not a record", cs.rest))
	}
	return nil
}

// tail decides whether damage at v.n is a torn write (tolerated past the last
// checkpoint, in the last segment, where Open cuts it) or corruption.
func (v *verifier) tail(last bool, name, why string) error {
	if last && v.n >= v.durable {
		v.torn = fmt.Sprintf("%s at index %d: %s (a torn write past the last checkpoint; trail cuts it on start)", name, v.n, why)
		return nil
	}
	return &VerifyError{Index: v.n, Reason: fmt.Sprintf("%s: %s", name, why)}
}

// checkFrames checks CRC, layout, JSON (optionally) and leaf hash of each
// frame, in parallel.
func checkFrames(frames [][]byte, checkJSON bool) []checked {
	out := make([]checked, len(frames))
	workers := runtime.GOMAXPROCS(0)
	chunk := (len(frames) + workers - 1) / workers
	var wg sync.WaitGroup
	for w := 0; w < workers && w*chunk < len(frames); w++ {
		lo, hi := w*chunk, min((w+1)*chunk, len(frames))
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := sha256.New()
			for i := lo; i < hi; i++ {
				out[i] = checkFrame(frames[i], checkJSON, d)
			}
		}()
	}
	wg.Wait()
	return out
}

func checkFrame(frame []byte, checkJSON bool, d hash.Hash) checked {
	rec, more, _, err := segment.DecodeFrame(frame)
	if err != nil {
		return checked{err: err.Error()}
	}
	var c checked
	c.more = more
	d.Reset()
	d.Write([]byte{0})
	d.Write(rec)
	d.Sum(c.leaf[:0])
	if c.h, err = event.ParseHeader(rec); err != nil {
		c.err = err.Error()
		return c
	}
	if checkJSON && !json.Valid(rec) {
		c.err = "not valid JSON"
	}
	return c
}

// record checks one record against the sequential state.
func (v *verifier) record(r *checked) error {
	i := v.n
	if r.err != "" {
		return &VerifyError{Index: i, Reason: r.err}
	}
	if r.h.Index != i {
		return &VerifyError{Index: i, Reason: fmt.Sprintf("record says index %d", r.h.Index)}
	}
	if err := ValidateStream(r.h.Stream); err != nil {
		return &VerifyError{Index: i, Reason: err.Error()}
	}
	s := v.streams[r.h.Stream]
	if s == nil {
		s = &vstream{}
		v.streams[r.h.Stream] = s
	}
	if r.h.Seq != s.seq+1 {
		return &VerifyError{Index: i, Reason: fmt.Sprintf("stream %s: stream_seq %d follows %d (gap or repeat)", r.h.Stream, r.h.Seq, s.seq)}
	}
	switch {
	case s.seq == 0 && r.h.Prev != nil:
		return &VerifyError{Index: i, Reason: fmt.Sprintf("stream %s: first event has a prev", r.h.Stream)}
	case s.seq > 0 && (r.h.Prev == nil || *r.h.Prev != s.leaf):
		return &VerifyError{Index: i, Reason: fmt.Sprintf("stream %s: prev does not match the leaf hash of stream_seq %d", r.h.Stream, s.seq)}
	}
	s.seq, s.leaf = r.h.Seq, r.leaf
	v.rng.Append(r.leaf[:], nil)
	v.n++
	v.inGroup = r.more
	return v.checkpoints()
}

// checkpoints checks every checkpoint whose size the tree has reached, and
// the trusted one.
func (v *verifier) checkpoints() error {
	for v.nextCP < len(v.cps) && v.cps[v.nextCP].Size == v.n {
		cp := v.cps[v.nextCP]
		if !bytes.Equal(v.root(), cp.Root) {
			return &VerifyError{Index: max(v.n, 1) - 1, Reason: fmt.Sprintf("tree root of size %d does not match signed checkpoint %d", cp.Size, v.nextCP)}
		}
		v.nextCP++
	}
	if t := v.trusted; t != nil && t.Size == v.n {
		if !bytes.Equal(v.root(), t.Root[:]) {
			return &VerifyError{Index: max(v.n, 1) - 1, Reason: fmt.Sprintf(
				"tree root of size %d does not match the trusted checkpoint saved earlier: history was rewritten", t.Size)}
		}
		v.trusted = nil
	}
	return nil
}

// root is the root of the tree verified so far (nil if it cannot be had).
func (v *verifier) root() []byte {
	if v.n == 0 {
		return tree.EmptyRoot()
	}
	root, _ := v.rng.GetRootHash(nil)
	return root
}

func (v *verifier) finish() error {
	if err := v.checkpoints(); err != nil {
		return err
	}
	if v.nextCP < len(v.cps) {
		cp := v.cps[v.nextCP]
		return &VerifyError{Index: v.n, Reason: fmt.Sprintf("log has %d records but signed checkpoint %d covers %d (records were removed)", v.n, v.nextCP, cp.Size)}
	}
	if t := v.trusted; t != nil {
		return &VerifyError{Index: v.n, Reason: fmt.Sprintf(
			"log has %d records but the trusted checkpoint saved earlier covers %d: history was rolled back", v.n, t.Size)}
	}
	if v.inGroup && v.torn == "" {
		v.torn = fmt.Sprintf("index %d: the last atomic batch is incomplete (a torn write; trail cuts it on start)", v.n)
	}
	return nil
}
