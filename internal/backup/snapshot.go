package backup

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"golang.org/x/mod/sumdb/note"

	"github.com/trailhq/trail/internal/checkpoint"
	"github.com/trailhq/trail/internal/datadir"
	"github.com/trailhq/trail/internal/durable"
	"github.com/trailhq/trail/internal/segment"
)

// Options tune Snapshot.
type Options struct {
	// VerifierKey, when set, is the key the chosen checkpoint must be
	// signed with (name+hash+base64); empty trusts the directory's own.
	VerifierKey string
	// Checkpoint, when set, is the signed checkpoint to take the backup up
	// to, one of the directory's, rather than the latest.
	Checkpoint []byte
	// NoKey leaves the signing key (checkpoint.key) out of the backup; it
	// must then be given to Restore.
	NoKey bool
	// NoAdminToken leaves admin.token out; the restored server makes a
	// new one on its first start.
	NoAdminToken bool
	// Now is the clock of the manifest's time (default time.Now).
	Now func() time.Time
}

// segPart is the prefix of a segment file a backup takes.
type segPart struct {
	name   string // log/NNN.seg
	path   string
	first  uint64
	length int64
}

// Snapshot writes to w a backup of the data directory dir up to its latest
// signed checkpoint (see Options), while a server may go on appending to
// it, and returns the manifest it wrote last. See the package comment.
func Snapshot(ctx context.Context, fs vfs.FS, dir string, opts Options, w Writer) (*Manifest, error) {
	if err := datadir.CheckFormat(fs, dir); err != nil {
		return nil, err
	}
	join := func(name string) string { return fs.PathJoin(dir, name) }
	vkey, err := durable.ReadFile(fs, join(checkpoint.VerifierFile))
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %v", dir, datadir.ErrNotData, err)
	}
	trusted := string(vkey)
	if opts.VerifierKey != "" {
		trusted = opts.VerifierKey
	}
	v, err := note.NewVerifier(strings.TrimSpace(trusted))
	if err != nil {
		return nil, fmt.Errorf("verifier key: %w", err)
	}
	cp, cpEnd, err := chooseCheckpoint(fs, join(checkpoint.LogFile), v, opts.Checkpoint)
	if err != nil {
		return nil, err
	}
	segs, err := segmentPrefixes(ctx, fs, join(datadir.LogDir), cp.Size)
	if err != nil {
		return nil, err
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	m := &Manifest{Version: Version, DataFormat: datadir.DataFormat, Origin: cp.Origin, Size: cp.Size,
		Root: hex.EncodeToString(cp.Root), Checkpoint: string(cp.Signed), Created: now().UTC().Format(time.RFC3339)}
	emit := func(name string, size int64, r io.Reader) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		h := sha256.New()
		if err := w.File(name, size, io.TeeReader(r, h)); err != nil {
			return fmt.Errorf("backup %s: %w", name, err)
		}
		m.Files = append(m.Files, File{Name: name, Size: size, SHA256: hex.EncodeToString(h.Sum(nil))})
		return nil
	}
	if err := emitSmall(fs, dir, opts, emit); err != nil {
		return nil, err
	}
	for _, s := range segs {
		if err := emitPrefix(fs, s.path, s.name, s.length, emit); err != nil {
			return nil, err
		}
	}
	if err := emitPrefix(fs, join(checkpoint.LogFile), checkpoint.LogFile, cpEnd, emit); err != nil {
		return nil, err
	}
	if err := emit(checkpoint.LatestFile, int64(len(cp.Signed)), bytes.NewReader(cp.Signed)); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	b = append(b, '\n')
	if err := w.File(ManifestFile, int64(len(b)), bytes.NewReader(b)); err != nil {
		return nil, fmt.Errorf("backup %s: %w", ManifestFile, err)
	}
	return m, nil
}

// emitSmall hands the small files to emit: FORMAT, the keys, the admin
// token and the principals. Each is read whole: the engine and trail token
// replace them by renaming a new file over the old, never in place.
func emitSmall(fs vfs.FS, dir string, opts Options, emit func(string, int64, io.Reader) error) error {
	small := []string{datadir.FormatFile, checkpoint.VerifierFile}
	if !opts.NoKey {
		small = append(small, checkpoint.KeyFile)
	}
	if !opts.NoAdminToken {
		small = append(small, adminTokenFile)
	}
	small = append(small, tokensFile)
	for _, name := range small {
		b, err := durable.ReadFile(fs, fs.PathJoin(dir, name))
		if errors.Is(err, os.ErrNotExist) && (name == adminTokenFile || name == tokensFile) {
			continue // a directory served without them (the engine alone)
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", fs.PathJoin(dir, name), err)
		}
		if err := emit(name, int64(len(b)), bytes.NewReader(b)); err != nil {
			return err
		}
	}
	return nil
}

// emitPrefix hands the first length bytes of the file at path to emit.
func emitPrefix(fs vfs.FS, path, name string, length int64, emit func(string, int64, io.Reader) error) error {
	f, err := fs.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return emit(name, length, io.NewSectionReader(f, 0, length))
}

// chooseCheckpoint reads the checkpoints file at path frame by frame and
// returns the latest checkpoint (or the one signed as want, when want is
// set), verified with v, and where its frame ends. A frame being written
// (torn, or not yet whole) ends the reading: it is past any checkpoint that
// was whole when the reading began.
func chooseCheckpoint(fs vfs.FS, path string, v note.Verifier, want []byte) (checkpoint.Checkpoint, int64, error) {
	f, err := fs.Open(path)
	if err != nil {
		return checkpoint.Checkpoint{}, 0, fmt.Errorf("open checkpoints: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(io.NewSectionReader(f, 0, 1<<62), 1<<16)
	var chosen []byte
	var pos, end int64
	for {
		frame, err := readFrame(br)
		if err != nil {
			break
		}
		rec, _, size, err := segment.DecodeFrame(frame)
		if err != nil {
			break
		}
		pos += int64(size)
		chosen, end = rec, pos
		if want != nil && bytes.Equal(rec, want) {
			break
		}
	}
	switch {
	case want != nil && !bytes.Equal(chosen, want):
		return checkpoint.Checkpoint{}, 0, fmt.Errorf("%s does not hold the checkpoint to take the backup up to", path)
	case chosen == nil:
		return checkpoint.Checkpoint{}, 0, fmt.Errorf("%s holds no signed checkpoint to take a backup up to", path)
	}
	cp, err := checkpoint.Parse(chosen, v)
	if err != nil {
		return checkpoint.Checkpoint{}, 0, fmt.Errorf("the latest checkpoint in %s does not verify with the key %s: %w", path, v.Name(), err)
	}
	return cp, end, nil
}

// readFrame reads one whole frame (header and record) from br; io.EOF at
// the end marker or the end of the file, another error for a frame cut
// short.
func readFrame(br *bufio.Reader) ([]byte, error) {
	hdr, err := br.Peek(segment.HeaderSize)
	if err != nil {
		return nil, io.EOF
	}
	n := int(binary.LittleEndian.Uint32(hdr) &^ (1 << 31))
	if n == 0 {
		return nil, io.EOF
	}
	if n > segment.MaxRecordSize {
		return nil, segment.ErrLength
	}
	frame := make([]byte, segment.HeaderSize+n)
	if _, err := io.ReadFull(br, frame); err != nil {
		return nil, io.ErrUnexpectedEOF
	}
	return frame, nil
}

// segmentPrefixes lists the segment files in logDir and how much of each
// holds the first n records: whole for the segments sealed below n, cut
// after record n-1 in the one that holds it, and none of those that start
// at n or later. The first segment is always taken, empty if need be.
func segmentPrefixes(ctx context.Context, fs vfs.FS, logDir string, n uint64) ([]segPart, error) {
	names, err := fs.List(logDir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", logDir, err)
	}
	var all []segPart
	for _, name := range names {
		if !strings.HasSuffix(name, ".seg") {
			continue
		}
		first, ok := segmentFirst(name)
		if !ok {
			return nil, fmt.Errorf("unexpected file %s in %s", name, logDir)
		}
		all = append(all, segPart{name: datadir.LogDir + "/" + name, path: fs.PathJoin(logDir, name), first: first})
	}
	slices.SortFunc(all, func(a, b segPart) int { return cmp.Compare(a.first, b.first) })
	if len(all) == 0 || all[0].first != 0 {
		return nil, fmt.Errorf("%s: the first segment is missing", logDir)
	}
	var parts []segPart
	for k, s := range all {
		if s.first >= n && s.first > 0 {
			break
		}
		end := n
		if k+1 < len(all) {
			end = min(end, all[k+1].first)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if s.length, err = prefixLength(fs, s.path, end-s.first); err != nil {
			return nil, err
		}
		parts = append(parts, s)
	}
	return parts, nil
}

// prefixLength returns the length of the first count frames of the
// segment at path, which must end an atomic group.
func prefixLength(fs vfs.FS, path string, count uint64) (int64, error) {
	f, err := fs.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	br := bufio.NewReaderSize(io.NewSectionReader(f, 0, 1<<62), 1<<20)
	var off int64
	var more bool
	for i := uint64(0); i < count; i++ {
		hdr, err := br.Peek(segment.HeaderSize)
		word := uint32(0)
		if err == nil {
			word = binary.LittleEndian.Uint32(hdr)
		}
		size := int(word &^ (1 << 31))
		if size == 0 || size > segment.MaxRecordSize {
			return 0, fmt.Errorf("segment %s holds %d whole records where the checkpoint covers %d (run trail verify)", path, i, count)
		}
		if _, err := br.Discard(segment.HeaderSize + size); err != nil {
			return 0, fmt.Errorf("segment %s: record %d of %d is cut short (run trail verify)", path, i, count)
		}
		off += int64(segment.HeaderSize + size)
		more = word&(1<<31) != 0
	}
	if more {
		return 0, fmt.Errorf("segment %s: the checkpoint ends inside an atomic batch (run trail verify)", path)
	}
	return off, nil
}
