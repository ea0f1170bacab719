package verify

import (
	"cmp"
	"context"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/trailhq/trail/event"
	"github.com/trailhq/trail/internal/datadir"
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
	return checkDir(ctx, dir, opts, chunkSize, runtime.GOMAXPROCS(0))
}

// checkDir is Dir reading chunk bytes of a segment at a time, and checking
// the records with workers goroutines.
func checkDir(ctx context.Context, dir string, opts Options, chunk, workers int) (Report, error) {
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
	// Reading and the per-record checks (CRC, layout, leaf hash) run on
	// every core, batches ahead of the sequential checks (chains, tree,
	// checkpoints), which take the batches in log order.
	ctx, cancel := context.WithCancel(ctx)
	p := startPipeline(ctx, fs, segs, chunk, workers, opts.CheckJSON)
	defer p.wait()
	defer cancel()
	if err := feed(ctx, c, p, segs, total, opts.Progress); err != nil {
		return rep, err
	}
	rep, err = c.Finish()
	if err == nil {
		err = cps.check()
	}
	return rep, err
}

// feed feeds the pipeline's batches of segs to c, in order, and calls
// progress after each segment.
func feed(ctx context.Context, c *Checker, p *pipeline, segs []segFile, total int64, progress func(done, total int64)) error {
	var done int64
	segsDone, torn := 0, false
	for b := range p.order {
		<-b.done
		if b.err != nil {
			return b.err
		}
		if !torn {
			var err error
			if torn, err = feedBatch(c, segs[b.seg], b, b.seg == len(segs)-1); err != nil {
				return err
			}
		}
		if b.last {
			segsDone++
			done += b.size
			if progress != nil {
				progress(done, total)
			}
		}
		p.release(b)
	}
	if segsDone < len(segs) {
		return ctx.Err()
	}
	return nil
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

// feedBatch feeds a checked batch of segment s to the Checker; last is set
// for the log's last segment, where damage past the checkpoints is a torn
// write, after which torn is set and nothing more is to be fed.
func feedBatch(c *Checker, s segFile, b *batch, last bool) (torn bool, err error) {
	if b.first && s.first != c.Next() {
		return false, &Error{Index: c.Next(), Reason: fmt.Sprintf("segment %s starts at %d, want %d (records missing)", s.name, s.first, c.Next())}
	}
	for i := range b.results {
		r := &b.results[i]
		if r.err != "" {
			err := c.Damage(s.name, fmt.Sprintf("record unreadable: %s", r.err), last)
			return err == nil, err
		}
		var prev *event.Hash
		if r.hasPrev {
			prev = &r.prev
		}
		if err := c.addView(r.index, r.stream, r.seq, prev, &r.leaf, r.more); err != nil {
			return false, err
		}
	}
	if b.rest > 0 {
		err := c.Damage(s.name, fmt.Sprintf("%d bytes after the last whole record are not a record", b.rest), last)
		return err == nil, err
	}
	return false, nil
}
