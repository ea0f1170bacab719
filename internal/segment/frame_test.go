package segment_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"slices"
	"testing"

	"github.com/trailhq/trail/internal/segment"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// refFrame builds a frame from the documented layout, independently of
// AppendFrame: uint32 LE length|more<<31, uint32 LE CRC-32C over those four
// bytes and the record, then the record.
func refFrame(rec []byte, more bool) []byte {
	word := uint32(len(rec))
	if more {
		word |= 1 << 31
	}
	b := binary.LittleEndian.AppendUint32(nil, word)
	crc := crc32.Update(crc32.Update(0, castagnoli, b), castagnoli, rec)
	b = binary.LittleEndian.AppendUint32(b, crc)
	return append(b, rec...)
}

var frameRecords = [][]byte{
	[]byte("x"),
	[]byte(`{"id":"a","index":0,"stream":"patient/1","stream_seq":1,"recorded":"2026-11-25T10:00:00.123456789Z","time":"2026-11-25T10:00:00.123456789Z","type":"t","action":"R","outcome":"success","actor":{"id":"dr"}}`),
	bytes.Repeat([]byte{0}, 17),
	bytes.Repeat([]byte{0xff}, 300),
}

func TestFrameLayout(t *testing.T) {
	for _, rec := range frameRecords {
		for _, more := range []bool{false, true} {
			want := refFrame(rec, more)
			got := segment.AppendFrame(nil, rec, more)
			if !bytes.Equal(got, want) {
				t.Fatalf("AppendFrame(%q, %v) = %x, want the documented layout %x", rec, more, got, want)
			}
			// BeginFrame/EndFrame after existing bytes give the same frame.
			buf, start := segment.BeginFrame([]byte("prefix"))
			buf = append(buf, rec...)
			segment.EndFrame(buf, start, more)
			if start != 6 || !bytes.Equal(buf[:6], []byte("prefix")) || !bytes.Equal(buf[6:], want) {
				t.Fatalf("BeginFrame/EndFrame after a prefix: %x (start %d), want prefix + %x", buf, start, want)
			}
			if got := segment.AppendFrame([]byte("ab"), rec, more); !bytes.Equal(got, append([]byte("ab"), want...)) {
				t.Fatalf("AppendFrame onto a buffer changed its prefix: %x", got)
			}
		}
	}
}

func TestDecodeFrameErrors(t *testing.T) {
	good := segment.AppendFrame(nil, []byte("record"), false)
	badCRC := bytes.Clone(good)
	badCRC[4] ^= 1
	zeroLen := refFrame(nil, true) // length 0 (with the more bit): not a record
	huge := make([]byte, 8)
	binary.LittleEndian.PutUint32(huge, segment.MaxRecordSize+1)
	binary.LittleEndian.PutUint32(huge[4:], 1)
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, segment.ErrEnd},
		{"short zeros", make([]byte, 5), segment.ErrEnd},
		{"zero header", make([]byte, 64), segment.ErrEnd},
		{"short non-zero", []byte{1, 0, 0}, segment.ErrTruncated},
		{"header only", good[:segment.HeaderSize], segment.ErrTruncated},
		{"cut record", good[:len(good)-1], segment.ErrTruncated},
		{"bad crc", badCRC, segment.ErrChecksum},
		{"zero length", zeroLen, segment.ErrLength},
		{"too long", huge, segment.ErrLength},
	} {
		rec, more, size, err := segment.DecodeFrame(tc.in)
		if !errors.Is(err, tc.want) || rec != nil || more || size != 0 {
			t.Errorf("%s: DecodeFrame = %q, %v, %d, %v; want %v", tc.name, rec, more, size, err, tc.want)
		}
	}
}

// TestFrameBitFlips flips every bit of a few frames, alone and followed by
// more data: each flip is an error or changes the frame's length, never
// the same frame with other bytes accepted.
func TestFrameBitFlips(t *testing.T) {
	for _, rec := range frameRecords {
		for _, more := range []bool{false, true} {
			frame := segment.AppendFrame(nil, rec, more)
			next := segment.AppendFrame(nil, []byte("next record"), false)
			for bit := 0; bit < 8*len(frame); bit++ {
				for _, tail := range [][]byte{nil, next} {
					b := append(bytes.Clone(frame), tail...)
					b[bit/8] ^= 1 << (bit % 8)
					checkFlip(t, frame, b, bit)
				}
			}
		}
	}
}

func checkFlip(t *testing.T, frame, flipped []byte, bit int) {
	t.Helper()
	rec, _, size, err := segment.DecodeFrame(flipped)
	if err == nil && size == len(frame) {
		t.Fatalf("bit %d flipped in frame %x: accepted as a frame of the same length (record %q)", bit, frame, rec)
	}
}

func FuzzDecodeFrame(f *testing.F) {
	for _, rec := range frameRecords {
		f.Add(segment.AppendFrame(nil, rec, false), false, uint32(0))
		f.Add(rec, true, uint32(77))
	}
	f.Add([]byte{}, false, uint32(0))
	f.Add(make([]byte, 8), false, uint32(3))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 1}, true, uint32(31))
	f.Fuzz(func(t *testing.T, data []byte, more bool, bit uint32) {
		// 1. Arbitrary input: no panic, and what is accepted is a frame.
		rec, m, size, err := segment.DecodeFrame(data)
		if err != nil {
			if rec != nil || m || size != 0 {
				t.Fatalf("DecodeFrame error %v with results %q %v %d", err, rec, m, size)
			}
			if !errors.Is(err, segment.ErrEnd) && !errors.Is(err, segment.ErrTruncated) &&
				!errors.Is(err, segment.ErrChecksum) && !errors.Is(err, segment.ErrLength) {
				t.Fatalf("DecodeFrame: unexpected error %v", err)
			}
		} else {
			if size < segment.HeaderSize+1 || size > len(data) || size != segment.HeaderSize+len(rec) {
				t.Fatalf("DecodeFrame accepted size %d (record %d bytes) of %d bytes", size, len(rec), len(data))
			}
			if !bytes.Equal(rec, data[segment.HeaderSize:size]) {
				t.Fatalf("DecodeFrame record is not the bytes after the header")
			}
			if want := refFrame(rec, m); !bytes.Equal(want, data[:size]) {
				t.Fatalf("DecodeFrame accepted %x, which is not the frame of its record %x", data[:size], want)
			}
		}

		// 2. Round trip: any non-empty record comes back with its more flag.
		if len(data) == 0 {
			return
		}
		frame := segment.AppendFrame(nil, data, more)
		for _, b := range [][]byte{frame, append(bytes.Clone(frame), 0xde, 0xad), append(bytes.Clone(frame), make([]byte, 9)...)} {
			rec, m, size, err := segment.DecodeFrame(b)
			if err != nil || !bytes.Equal(rec, data) || m != more || size != len(frame) {
				t.Fatalf("round trip of %q (more %v): %q, %v, %d, %v", data, more, rec, m, size, err)
			}
		}

		// 3. A single-bit flip is detected.
		bit %= uint32(8 * len(frame))
		flipped := bytes.Clone(frame)
		flipped[bit/8] ^= 1 << (bit % 8)
		checkFlip(t, frame, flipped, int(bit))
	})
}

// FuzzSplit: Split cuts a run of frames exactly where they were written and
// stops at the end marker; on any input, its frames are consecutive from the
// start, each as long as its header says, and a frame it gives that
// DecodeFrame accepts is the same frame.
func FuzzSplit(f *testing.F) {
	f.Add([]byte("a"), uint8(3), uint16(0))
	f.Add([]byte(`{"x":1}`), uint8(1), uint16(9))
	f.Fuzz(func(t *testing.T, rec []byte, count uint8, cut uint16) {
		if len(rec) == 0 {
			rec = []byte{1}
		}
		var data []byte
		var want []int
		for i := range int(count%8) + 1 {
			want = append(want, len(data))
			data = segment.AppendFrame(data, append(bytes.Clone(rec), byte(i)), i%2 == 0)
		}
		whole := len(data)
		data = append(data, make([]byte, 16)...) // the end marker
		frames, end := segment.Split(data)
		if len(frames) != len(want) || end != whole {
			t.Fatalf("Split of %d frames: %d frames, end %d, want end %d", len(want), len(frames), end, whole)
		}
		for i, fr := range frames {
			if r, _, size, err := segment.DecodeFrame(fr); err != nil || size != len(fr) || r[len(r)-1] != byte(i) {
				t.Fatalf("frame %d: %v (size %d of %d)", i, err, size, len(fr))
			}
		}
		// AppendSplit appends the same frames after what it is given.
		prefix := [][]byte{[]byte("kept")}
		if got, gotEnd := segment.AppendSplit(prefix, data); gotEnd != end || len(got) != 1+len(frames) || string(got[0]) != "kept" ||
			!slices.EqualFunc(got[1:], frames, func(a, b []byte) bool { return &a[0] == &b[0] && len(a) == len(b) }) {
			t.Fatalf("AppendSplit: %d frames, end %d; Split: %d frames, end %d", len(got)-1, gotEnd, len(frames), end)
		}
		// Cut anywhere, or damaged anywhere: frames stay consecutive and
		// whole, and never reach past the data.
		damaged := bytes.Clone(data[:int(cut)%(len(data)+1)])
		if len(damaged) > 0 {
			damaged[int(cut)%len(damaged)] ^= 0x80
		}
		frames, end = segment.Split(damaged)
		pos := 0
		for _, fr := range frames {
			if &fr[0] != &damaged[pos] || len(fr) < segment.HeaderSize+1 {
				t.Fatalf("frame at %d is not where the previous one ended", pos)
			}
			pos += len(fr)
		}
		if pos != end || end > len(damaged) {
			t.Fatalf("frames end at %d, Split says %d, data %d", pos, end, len(damaged))
		}
	})
}
