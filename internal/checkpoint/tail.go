package checkpoint

import (
	"bytes"
	"fmt"
	"io"

	"github.com/trailhq/trail/internal/durable"
	"github.com/trailhq/trail/internal/segment"
)

// readTail searches the last tailWindow bytes of the log for the latest
// file's frame, then eight times as many, up to maxTailWindow (some 60,000
// checkpoints), past which it reads the whole log as a stream: the search
// holds its window in memory.
const (
	tailWindow    = 64 << 10
	maxTailWindow = 16 << 20
)

// readTail finds the latest checkpoint and the end of the log's intact
// frames, reading only the end of the log when it can.
//
// Add appends a frame and fdatasyncs the log before it replaces the latest
// file, so the frame of the latest file's note is in the log, and after it
// at most the frames of checkpoints whose replace did not happen (a crash,
// or a failed write) and a torn frame. readTail finds that frame's last
// occurrence from the end and reads on from there; a note signed twice is
// the same bytes, so the last occurrence is as good as any. When the latest
// file is missing or unreadable, or its frame is not in the log (a directory
// from before the file, a crash while the keys were made, damage or
// tampering), it reads the whole log instead, which reports damage as such.
// Either way what follows the found frame is read as a full read would,
// so no checkpoint after it is lost and nothing is appended after damage.
func (s *Store) readTail() (scan, error) {
	st, err := s.log.Stat()
	if err != nil {
		return scan{}, fmt.Errorf("open checkpoints: %w", err)
	}
	size := st.Size()
	pos, ok := int64(0), false
	if signed, err := durable.ReadFile(s.fs, s.fs.PathJoin(s.dir, LatestFile)); err == nil && len(signed) > 0 {
		pos, ok, err = findLast(s.log, size, segment.AppendFrame(nil, signed, false))
		if err != nil {
			return scan{}, fmt.Errorf("read %s: %w", LogFile, err)
		}
	}
	if !ok {
		return scanLog(io.NewSectionReader(s.log, 0, size), 0, 0, s.verifier, nil)
	}
	// The frames before pos are not read: their count is unknown, so errors
	// name checkpoints by offset alone.
	sc, err := scanLog(io.NewSectionReader(s.log, pos, size-pos), pos, -1, s.verifier, nil)
	if err == nil && sc.n == 0 {
		err = fmt.Errorf("%s: the frame of %s at offset %d does not read back", LogFile, LatestFile, pos)
	}
	return sc, err
}

// findLast returns the offset of the last occurrence of frame in the first
// size bytes of f, searching backwards from the end in growing windows up
// to maxTailWindow.
func findLast(f io.ReaderAt, size int64, frame []byte) (int64, bool, error) {
	var buf []byte
	for w := int64(tailWindow); w <= maxTailWindow; w *= 8 {
		start := max(0, size-w)
		buf = append(buf[:0], make([]byte, size-start)...)
		if n, err := f.ReadAt(buf, start); n < len(buf) {
			return 0, false, fmt.Errorf("offset %d: short read: %w", start+int64(n), err)
		}
		if i := bytes.LastIndex(buf, frame); i >= 0 {
			return start + int64(i), true, nil
		}
		if start == 0 {
			break
		}
	}
	return 0, false, nil
}
