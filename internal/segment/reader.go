package segment

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// chunkSize is how much of a segment a scan reads at a time, or the segment
// size if smaller. A record larger than it grows the buffer to hold it (at
// most MaxRecordSize plus a header).
const chunkSize = 1 << 20

// chunkFor is the chunk a scan of segments of segSize bytes reads.
func chunkFor(segSize int64) int { return int(min(chunkSize, max(segSize, 4<<10))) }

// frameReader decodes the frames of a segment file from an offset on,
// reading it in chunks so that a scan holds one chunk, not the segment.
type frameReader struct {
	f     vfs.File
	name  string
	chunk int // the buffer's initial size
	buf   []byte
	base  int64 // file offset of buf[0]
	r, w  int   // buf[r:w] is read but not yet decoded
	eof   bool
}

// reset points r at file f from offset off, keeping its buffer.
func (r *frameReader) reset(f vfs.File, name string, off int64) {
	r.f, r.name, r.base, r.r, r.w, r.eof = f, name, off, 0, 0, false
}

// offset is the file offset of the next frame.
func (r *frameReader) offset() int64 { return r.base + int64(r.r) }

// next decodes the next frame. ferr is what DecodeFrame says of the bytes at
// offset() (ErrEnd, damage) given all the file holds from there, as if the
// whole file had been read; err is a failure to read the file.
func (r *frameReader) next() (rec []byte, more bool, ferr, err error) {
	for {
		b := r.buf[r.r:r.w]
		rec, more, size, ferr := DecodeFrame(b)
		if ferr == nil {
			r.r += size
			return rec, more, nil, nil
		}
		need := FrameNeeds(b)
		if need <= len(b) || r.eof {
			return nil, false, ferr, nil
		}
		if err := r.fill(need); err != nil {
			return nil, false, nil, err
		}
	}
}

// FrameNeeds is how many bytes the frame at the start of b needs before
// DecodeFrame can judge it: the header, then the length it gives. It is 0
// when the header alone ends the frames: the end marker, or a length out of
// range.
func FrameNeeds(b []byte) int {
	if len(b) < HeaderSize {
		return HeaderSize
	}
	n := int(binary.LittleEndian.Uint32(b) &^ moreBit)
	if n == 0 || n > MaxRecordSize {
		return 0
	}
	return HeaderSize + n
}

// fill moves the undecoded bytes to the front of the buffer and reads on,
// growing the buffer to at least need bytes.
func (r *frameReader) fill(need int) error {
	if size := max(need, r.chunk); cap(r.buf) < size {
		buf := make([]byte, size)
		copy(buf, r.buf[r.r:r.w])
		r.buf = buf
	} else {
		r.buf = r.buf[:cap(r.buf)]
		copy(r.buf, r.buf[r.r:r.w])
	}
	r.base += int64(r.r)
	r.w -= r.r
	r.r = 0
	n, err := r.f.ReadAt(r.buf[r.w:], r.base+int64(r.w))
	r.w += n
	if errors.Is(err, io.EOF) || (err == nil && n == 0) {
		r.eof = true
	} else if err != nil {
		return fmt.Errorf("read segment %s at %d: %w", r.name, r.base+int64(r.w), err)
	}
	return nil
}
