package verify

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"hash"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/trailhq/trail/event"
	"github.com/trailhq/trail/internal/datadir"
	"github.com/trailhq/trail/internal/durable"
	"github.com/trailhq/trail/internal/segment"
)

// Dir checks a data directory offline, trusting nothing but the verifier
// key (opts.VerifierKey, or else the one in the directory) and the trusted
// checkpoint if given: every record's CRC, its layout and JSON, its index,
// every stream's gap-free stream_seq and prev chain, the Merkle tree
// recomputed from the leaves, every signed checkpoint's signature and root,
// and the trusted checkpoint's root. It returns an *Error naming the first
// bad index when it finds tampering or corruption, and another error
// (matching ErrNotDataDir where that is the cause, or datadir's ErrFormat
// for a directory in another format) when it cannot run.
func Dir(ctx context.Context, dir string, opts Options) (Report, error) {
	fs := opts.FS
	if fs == nil {
		fs = vfs.Default
	}
	var rep Report
	if err := datadir.CheckFormat(fs, dir); err != nil {
		return rep, err
	}
	cps, err := verifiedCheckpoints(fs, dir, opts.VerifierKey)
	if err != nil {
		return rep, err
	}
	defer cps.stop()
	rep.Checkpoints = cps.list.n
	segs, total, err := listSegments(fs, fs.PathJoin(dir, datadir.LogDir))
	if err != nil {
		return rep, err
	}
	if cps.list.n > 0 {
		rep.Latest = cps.list.latest
	}
	c, err := newChecker(cps.list, opts.Trusted)
	if err != nil {
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
		if cs.seg.first != c.Next() {
			return rep, &Error{Index: c.Next(), Reason: fmt.Sprintf("segment %s starts at %d, want %d (records missing)", cs.seg.name, cs.seg.first, c.Next())}
		}
		if err := feedSegment(c, cs, k == len(segs)-1); err != nil {
			return rep, err
		}
		done += cs.size
		if opts.Progress != nil {
			opts.Progress(done, total)
		}
	}
	rep, err = c.Finish()
	if err == nil {
		err = cps.check()
	}
	return rep, err
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
			return nil, 0, &Error{Reason: fmt.Sprintf("unexpected segment name %s", n)}
		}
		p := fs.PathJoin(dir, n)
		if st, err := fs.Stat(p); err == nil {
			total += st.Size()
		}
		segs = append(segs, segFile{first: first, name: n, path: p})
	}
	slices.SortFunc(segs, func(a, b segFile) int { return cmp.Compare(a.first, b.first) })
	return segs, total, nil
}

// checked is what a worker computes for one record, independently of others.
type checked struct {
	Record
	err string
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

// feedSegment feeds a checked segment to the Checker; last is set for the
// log's last segment, where damage past the checkpoints is a torn write.
func feedSegment(c *Checker, cs checkedSegment, last bool) error {
	for i := range cs.results {
		r := &cs.results[i]
		if r.err != "" {
			return c.Damage(cs.seg.name, fmt.Sprintf("record unreadable: %s", r.err), last)
		}
		if err := c.Add(&r.Record); err != nil {
			return err
		}
	}
	if cs.rest > 0 {
		return c.Damage(cs.seg.name, fmt.Sprintf("%d bytes after the last whole record are not a record", cs.rest), last)
	}
	return nil
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
	c.More = more
	d.Reset()
	d.Write([]byte{0})
	d.Write(rec)
	d.Sum(c.Leaf[:0])
	if c.Header, err = event.ParseHeader(rec); err != nil {
		c.err = err.Error()
		return c
	}
	if checkJSON && !json.Valid(rec) {
		c.err = "not valid JSON"
	}
	return c
}
