package segment

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// HeaderSize is the size of a frame header.
const HeaderSize = 8

// MaxRecordSize bounds a record so that a corrupt length cannot make a reader
// allocate without limit.
const MaxRecordSize = 1 << 24

const moreBit = 1 << 31

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Errors a frame decoder returns.
var (
	ErrEnd       = errors.New("end of records")
	ErrTruncated = errors.New("record truncated")
	ErrChecksum  = errors.New("record checksum mismatch")
	ErrLength    = errors.New("record length out of range")
)

// BeginFrame reserves a header at the end of buf; the record follows it.
// Call EndFrame once the record is appended.
func BeginFrame(buf []byte) ([]byte, int) {
	return append(buf, make([]byte, HeaderSize)...), len(buf)
}

// EndFrame fills in the header of the frame that starts at buf[start:]. more
// says whether the next record belongs to the same atomic group.
func EndFrame(buf []byte, start int, more bool) {
	n := uint32(len(buf) - start - HeaderSize)
	if more {
		n |= moreBit
	}
	binary.LittleEndian.PutUint32(buf[start:], n)
	crc := crc32.Update(0, castagnoli, buf[start:start+4])
	crc = crc32.Update(crc, castagnoli, buf[start+HeaderSize:])
	binary.LittleEndian.PutUint32(buf[start+4:], crc)
}

// AppendFrame appends rec as one frame.
func AppendFrame(buf, rec []byte, more bool) []byte {
	buf, start := BeginFrame(buf)
	buf = append(buf, rec...)
	EndFrame(buf, start, more)
	return buf
}

// DecodeFrame decodes the frame at the start of b. It returns the record (a
// sub-slice of b), whether more records of its group follow, and the frame's
// total size. A zero header is ErrEnd.
func DecodeFrame(b []byte) (rec []byte, more bool, size int, err error) {
	if len(b) < HeaderSize {
		if Zero(b) {
			return nil, false, 0, ErrEnd
		}
		return nil, false, 0, ErrTruncated
	}
	word := binary.LittleEndian.Uint32(b)
	sum := binary.LittleEndian.Uint32(b[4:])
	if word == 0 && sum == 0 {
		return nil, false, 0, ErrEnd
	}
	n := int(word &^ moreBit)
	if n == 0 || n > MaxRecordSize {
		return nil, false, 0, fmt.Errorf("%w: %d", ErrLength, n)
	}
	if len(b) < HeaderSize+n {
		return nil, false, 0, ErrTruncated
	}
	rec = b[HeaderSize : HeaderSize+n]
	crc := crc32.Update(0, castagnoli, b[:4])
	if crc32.Update(crc, castagnoli, rec) != sum {
		return nil, false, 0, ErrChecksum
	}
	return rec, word&moreBit != 0, HeaderSize + n, nil
}

// Split cuts data into frames by their headers' lengths, without checking
// their CRCs (DecodeFrame checks each, so that a reader can check many in
// parallel), stopping at the end marker, at a length out of range and at a
// frame that data does not hold whole. end is where it stopped: the bytes
// from there on are the end marker and what follows it, or damage.
func Split(data []byte) (frames [][]byte, end int) {
	return AppendSplit(nil, data)
}

// AppendSplit is Split appending the frames to frames, so that a reader of
// many chunks can reuse one slice.
func AppendSplit(frames [][]byte, data []byte) (_ [][]byte, end int) {
	for end+HeaderSize <= len(data) {
		word := binary.LittleEndian.Uint32(data[end:])
		if word == 0 && binary.LittleEndian.Uint32(data[end+4:]) == 0 {
			break
		}
		n := int(word &^ moreBit)
		if n == 0 || n > MaxRecordSize || end+HeaderSize+n > len(data) {
			break
		}
		frames = append(frames, data[end:end+HeaderSize+n])
		end += HeaderSize + n
	}
	return frames, end
}

// Zero reports whether b holds only zero bytes (the end marker and what
// follows a cut tail).
func Zero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
