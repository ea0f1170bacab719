package syslog_test

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"testing"

	"github.com/trailhq/trail/internal/syslog"
)

const fuzzMax = 300

// stepReader returns its data n bytes per read: a deterministic fragmenting
// network for the fuzzers.
type stepReader struct {
	data []byte
	n    int
}

func (s *stepReader) Read(p []byte) (int, error) {
	if len(s.data) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), len(s.data), s.n)
	copy(p, s.data[:n])
	s.data = s.data[n:]
	return n, nil
}

// decodeAll reads every message of data until an error, checking each
// against the maximum and the error against those Next documents.
func decodeAll(t *testing.T, data []byte, framing syslog.Framing, chunk uint8) ([][]byte, error) {
	r, err := syslog.NewReader(&stepReader{data: data, n: int(chunk%16) + 1}, syslog.Config{MaxSize: fuzzMax, Framing: framing})
	if err != nil {
		t.Fatal(err)
	}
	var msgs [][]byte
	for {
		m, err := r.Next()
		if len(m) > fuzzMax {
			t.Fatalf("message of %d bytes, over the maximum of %d", len(m), fuzzMax)
		}
		if err == nil || m != nil {
			msgs = append(msgs, m)
		}
		var fe *syslog.FrameError
		switch {
		case err == nil:
		case err == io.EOF, err == io.ErrUnexpectedEOF, errors.As(err, &fe):
			return msgs, err
		default:
			t.Fatalf("error %v (%T) is none that Next documents", err, err)
		}
	}
}

// messages splits data at sep into the non-empty messages of a round trip.
func messages(data []byte, sep byte) [][]byte {
	return slices.DeleteFunc(bytes.Split(data, []byte{sep}), func(m []byte) bool { return len(m) == 0 })
}

func FuzzOctetFrames(f *testing.F) {
	f.Add([]byte("5 hello3 abc"), byte(0), uint8(0))
	f.Add([]byte("6 hello\n\n3 abc\x00"), byte('|'), uint8(3))
	f.Add([]byte("<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - msg|<13>hello\n|x\r\n"), byte('|'), uint8(7))
	f.Add([]byte("05 hello"), byte(' '), uint8(1))
	f.Add(bytes.Repeat([]byte("y"), fuzzMax+1), byte('|'), uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, sep byte, chunk uint8) {
		decodeAll(t, data, syslog.OctetCounting, chunk)

		// Round trip: frame messages (a LF between frames when chunk is
		// odd), read them back. Only a LF (or CRLF) ending a message is lost.
		var stream []byte
		var want [][]byte
		var wantErr error = io.EOF
		for _, m := range messages(data, sep) {
			stream = syslog.AppendOctetCounted(stream, m)
			if chunk%2 == 1 {
				stream = append(stream, '\n')
			}
			if len(m) > fuzzMax {
				wantErr = syslog.ErrTooLarge
				break
			}
			if bytes.HasSuffix(m, []byte("\n")) {
				m = bytes.TrimSuffix(m[:len(m)-1], []byte("\r"))
			}
			want = append(want, m)
		}
		got, err := decodeAll(t, stream, syslog.OctetCounting, chunk/2)
		if !errors.Is(err, wantErr) {
			t.Fatalf("round trip of %q: error %v, want %v", stream, err, wantErr)
		}
		if !slices.EqualFunc(got, want, bytes.Equal) {
			t.Fatalf("round trip of %q: got %q, want %q", stream, got, want)
		}
	})
}

func FuzzLFFrames(f *testing.F) {
	f.Add([]byte("<13>a\n<13>b\r\n\n<13>c\x00"), byte('|'), uint8(0))
	f.Add([]byte("<13>a|b c|d"), byte('|'), uint8(5))
	f.Add(bytes.Repeat([]byte("y"), fuzzMax+2), byte('|'), uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, sep byte, chunk uint8) {
		msgs, _ := decodeAll(t, data, syslog.NonTransparent, chunk)
		for _, m := range msgs {
			if len(m) == 0 || bytes.IndexByte(m, '\n') >= 0 || bytes.IndexByte(m, 0) >= 0 {
				t.Fatalf("message %q is empty or holds a line end", m)
			}
		}

		// Round trip: messages without line-end bytes, each ended by LF
		// or (chunk odd) CRLF.
		clean := bytes.Map(func(r rune) rune {
			if r == '\n' || r == '\r' || r == 0 {
				return ' '
			}
			return r
		}, data)
		var stream []byte
		var want [][]byte
		var wantErr error = io.EOF
		for _, m := range messages(clean, sep) {
			stream = append(stream, m...)
			stream = append(stream, "\r\n"[1-chunk%2:]...)
			if len(m) > fuzzMax {
				wantErr = syslog.ErrTooLarge
				break
			}
			want = append(want, m)
		}
		got, err := decodeAll(t, stream, syslog.NonTransparent, chunk/2)
		if !errors.Is(err, wantErr) {
			t.Fatalf("round trip of %q: error %v, want %v", stream, err, wantErr)
		}
		if !slices.EqualFunc(got, want, bytes.Equal) {
			t.Fatalf("round trip of %q: got %q, want %q", stream, got, want)
		}
	})
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - " + bom + "'su root' failed for lonvick on /dev/pts/8",
		`<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"]`,
		`<13>1 - h a - - [x@1 a="q\"b\\s\]e\n"] m`,
		"<85>1 2026-12-07T10:00:00.000Z pacs01 PACS - IHE+RFC-3881 - " + bom + atnaXML,
		"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
		"<13>Dec  7 10:00:00 fe80::1 sshd[7]: m",
		"<13>2026-12-07T10:00:00.5+01:00 h t: m",
		"<13>hello", "hello", "<192>x", "<013>1 - - - - -", `<13>1 - - - - - [a b="c`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m := syslog.Parse(data, received)
		if m.Facility < 0 || m.Facility > 23 || m.Severity < 0 || m.Severity > 7 {
			t.Fatalf("facility %d, severity %d out of range", m.Facility, m.Severity)
		}
		switch m.Format {
		case syslog.FormatRaw:
			if len(m.Problems) == 0 {
				t.Fatalf("raw message without a problem")
			}
		case syslog.FormatRFC5424, syslog.FormatRFC3164:
		default:
			t.Fatalf("format %q", m.Format)
		}
		if !bytes.Contains(data, m.Body) {
			t.Fatalf("body %q is not part of the input", m.Body)
		}
		if x, ok := syslog.AuditXML(m.Body); ok && (!bytes.Contains(m.Body, x) || x[0] != '<' || x[len(x)-1] != '>') {
			t.Fatalf("AuditXML(%q) = %q", m.Body, x)
		}
	})
}
