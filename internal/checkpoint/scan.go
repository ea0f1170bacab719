package checkpoint

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/cockroachdb/pebble/v2/vfs"
	"golang.org/x/mod/sumdb/note"

	"github.com/trailhq/trail/internal/durable"
	"github.com/trailhq/trail/internal/segment"
)

// scanBuffer is the read buffer of a scan: the log is read in chunks of this
// size, whatever its length.
const scanBuffer = 64 << 10

// scan is where a read of the checkpoints log got to.
type scan struct {
	n    int        // checkpoints read
	last Checkpoint // the newest of them
	end  int64      // the offset after the last intact frame
}

// scanLog reads the frames of the checkpoints log from r, which starts at
// offset base of the log, verifies each with v and calls fn (when not nil)
// with each checkpoint, numbered from first (or not numbered in errors, which
// name its offset, when first is negative). Sizes must not decrease. A
// damaged frame with nothing but zeros after it is a torn write and ends the
// log; damage followed by more data is an error, so that it cannot hide the
// checkpoints after it. Memory is bounded by one frame, whatever the log's
// length.
func scanLog(r io.Reader, base int64, first int, v note.Verifier, fn func(int, Checkpoint) error) (scan, error) {
	br := bufio.NewReaderSize(r, scanBuffer)
	sc := scan{end: base}
	var buf []byte
	for {
		i := first + sc.n
		name := func() string {
			if first < 0 {
				return fmt.Sprintf("the checkpoint at offset %d in %s", sc.end, LogFile)
			}
			return fmt.Sprintf("checkpoint %d at offset %d in %s", i, sc.end, LogFile)
		}
		frame, err := readFrame(br, buf)
		buf = frame[:0]
		if errors.Is(err, segment.ErrEnd) {
			return sc, nil
		}
		if err != nil {
			// A torn last write ends the log; damage with data after it is
			// not a torn write and must not hide the checkpoints that follow.
			if more, rerr := nonZero(br); rerr != nil {
				return sc, fmt.Errorf("read %s: %w", LogFile, rerr)
			} else if more {
				return sc, fmt.Errorf("%s is damaged (%v) and more data follows", name(), err)
			}
			return sc, nil
		}
		c, err := Parse(bytes.Clone(frame[segment.HeaderSize:]), v)
		if err != nil {
			return sc, fmt.Errorf("%s: %w", name(), err)
		}
		if sc.n > 0 && c.Size < sc.last.Size {
			return sc, fmt.Errorf("%s: size %d is below the previous %d", name(), c.Size, sc.last.Size)
		}
		if fn != nil {
			if err := fn(i, c); err != nil {
				return sc, err
			}
		}
		sc.n++
		sc.last = c
		sc.end += int64(len(frame))
	}
}

// readFrame reads the next frame into buf and checks it. It returns
// segment.ErrEnd at the end of the log (its end or a zero header), and
// another error for a damaged frame, after which r is positioned where the
// frame claims to end (or at the end of the log).
func readFrame(r *bufio.Reader, buf []byte) ([]byte, error) {
	hdr, err := r.Peek(segment.HeaderSize)
	if len(hdr) < segment.HeaderSize {
		if err != io.EOF {
			return buf, err
		}
		if segment.Zero(hdr) {
			return buf, segment.ErrEnd
		}
		r.Discard(len(hdr))
		return buf, segment.ErrTruncated
	}
	n := int(binary.LittleEndian.Uint32(hdr) &^ (1 << 31))
	if n > segment.MaxRecordSize {
		// Not read: the claimed length only says where to look for more data.
		_, err := r.Discard(segment.HeaderSize + n)
		if err != nil && err != io.EOF {
			return buf, err
		}
		return buf, fmt.Errorf("%w: %d", segment.ErrLength, n)
	}
	buf = append(buf[:0], make([]byte, segment.HeaderSize+n)...)
	k, err := io.ReadFull(r, buf)
	if err != nil && err != io.ErrUnexpectedEOF {
		return buf, err
	}
	if _, _, _, err := segment.DecodeFrame(buf[:k]); err != nil {
		return buf, err
	}
	return buf, nil
}

// nonZero reports whether r holds any byte but zero before its end.
func nonZero(r *bufio.Reader) (bool, error) {
	for {
		b, err := r.Peek(scanBuffer)
		if !segment.Zero(b) {
			return true, nil
		}
		r.Discard(len(b))
		if err == io.EOF {
			return false, nil
		}
		if err != nil && err != bufio.ErrBufferFull {
			return false, err
		}
	}
}

// Each reads the checkpoints log in dir from start to end, in chunks, verifies
// every checkpoint with v and calls fn with each, numbered from 0, oldest
// first; it stops at the first error fn returns, and returns it. It holds one
// checkpoint at a time, whatever the log's length. Sizes must not decrease; a
// torn last frame is ignored; damage followed by more data is an error that
// names the checkpoint's number and offset.
func Each(fs vfs.FS, dir string, v note.Verifier, fn func(i int, c Checkpoint) error) error {
	f, err := fs.Open(fs.PathJoin(dir, LogFile))
	if err != nil {
		return fmt.Errorf("open checkpoints: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("open checkpoints: %w", err)
	}
	_, err = scanLog(io.NewSectionReader(f, 0, st.Size()), 0, 0, v, fn)
	return err
}

// ReadVerifier reads the verifier key in dir.
func ReadVerifier(fs vfs.FS, dir string) (note.Verifier, error) {
	vkey, err := durable.ReadFile(fs, fs.PathJoin(dir, VerifierFile))
	if err != nil {
		return nil, fmt.Errorf("read verifier key: %w", err)
	}
	v, err := note.NewVerifier(strings.TrimSpace(string(vkey)))
	if err != nil {
		return nil, fmt.Errorf("verifier key: %w", err)
	}
	return v, nil
}
