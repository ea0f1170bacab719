package syslog_test

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/trailhq/trail/internal/syslog"
)

// chunkReader returns its data in random pieces of 1 to 7 bytes, as a slow
// or fragmenting network does.
type chunkReader struct {
	data []byte
	rnd  *rand.Rand
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), len(c.data), 1+c.rnd.IntN(7))
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

// readers gives the same stream whole, one byte per read and in random chunks.
func readers(data []byte, seed uint64) map[string]io.Reader {
	return map[string]io.Reader{
		"whole":    bytes.NewReader(data),
		"one byte": iotest.OneByteReader(bytes.NewReader(data)),
		"chunks":   &chunkReader{data: data, rnd: rand.New(rand.NewPCG(seed, 1))},
	}
}

// readAll returns the messages read until the first error, and that error.
func readAll(t *testing.T, r io.Reader, cfg syslog.Config) ([]string, error) {
	t.Helper()
	sr, err := syslog.NewReader(r, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for {
		m, err := sr.Next()
		if m != nil || err == nil {
			msgs = append(msgs, string(m))
		}
		if err != nil {
			if _, again := sr.Next(); again != err {
				t.Errorf("Next after %v returned %v: errors are not sticky", err, again)
			}
			return msgs, err
		}
	}
}

func octets(msgs ...string) string {
	var b []byte
	for _, m := range msgs {
		b = syslog.AppendOctetCounted(b, []byte(m))
	}
	return string(b)
}

type frameCase struct {
	name    string
	in      string
	framing syslog.Framing
	max     int
	want    []string
	wantErr error // io.EOF, io.ErrUnexpectedEOF, syslog.ErrTooLarge or syslog.ErrBadFrame
	errHas  string
}

func runFrameCases(t *testing.T, cases []frameCase) {
	for i, tc := range cases {
		for rname, r := range readers([]byte(tc.in), uint64(i)) {
			t.Run(tc.name+"/"+rname, func(t *testing.T) {
				got, err := readAll(t, r, syslog.Config{MaxSize: tc.max, Framing: tc.framing})
				if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("messages (-want +got):\n%s", diff)
				}
				if !errors.Is(err, tc.wantErr) {
					t.Errorf("error %v, want %v", err, tc.wantErr)
				}
				if tc.errHas != "" && (err == nil || !strings.Contains(err.Error(), tc.errHas)) {
					t.Errorf("error %q does not say %q", err, tc.errHas)
				}
			})
		}
	}
}

func TestOctetCounting(t *testing.T) {
	max64k := strings.Repeat("x", syslog.DefaultMaxSize)
	runFrameCases(t, []frameCase{
		{name: "empty stream", in: "", want: nil, wantErr: io.EOF},
		{name: "one", in: "5 hello", want: []string{"hello"}, wantErr: io.EOF},
		{name: "several in one read", in: octets("a", "bc", "<13>1 - - - - - - x"), want: []string{"a", "bc", "<13>1 - - - - - - x"}, wantErr: io.EOF},
		{name: "message holding spaces and digits", in: octets("12 34 56", " "), want: []string{"12 34 56", " "}, wantErr: io.EOF},
		{name: "LF counted in the frame", in: "6 hello\n3 abc", want: []string{"hello", "abc"}, wantErr: io.EOF},
		{name: "CRLF counted in the frame", in: "7 hello\r\n", want: []string{"hello"}, wantErr: io.EOF},
		{name: "LF between frames", in: "5 hello\n3 abc\n", want: []string{"hello", "abc"}, wantErr: io.EOF},
		{name: "CRLF and NUL between frames", in: "5 hello\r\n\x003 abc\x00", want: []string{"hello", "abc"}, wantErr: io.EOF},
		{name: "leading LF", in: "\n\n5 hello", framing: syslog.OctetCounting, want: []string{"hello"}, wantErr: io.EOF},
		{name: "exactly the maximum", in: octets(max64k), want: []string{max64k}, wantErr: io.EOF},
		{name: "maximum plus one", in: octets(max64k + "x"), wantErr: syslog.ErrTooLarge, errHas: "length 65537 is over the maximum of 65536 bytes"},
		{name: "small maximum", in: octets("abcd", "abcde"), max: 4, want: []string{"abcd"}, wantErr: syslog.ErrTooLarge, errHas: "at byte 6: length 5"},
		{name: "too many digits", in: "1234567 x", wantErr: syslog.ErrTooLarge, errHas: "more than 5 digits"},
		{name: "leading zero", in: "05 hello", framing: syslog.OctetCounting, wantErr: syslog.ErrBadFrame, errHas: `leading zero, got "0`},
		{name: "zero length", in: "0 ", framing: syslog.OctetCounting, wantErr: syslog.ErrBadFrame},
		{name: "garbage between frames", in: "5 helloGARBAGE 3 abc", want: []string{"hello"}, wantErr: syslog.ErrBadFrame, errHas: `at byte 7: expected a frame length`},
		{name: "garbage quoted and cut", in: "2 ab" + strings.Repeat("\x01z", 40), want: []string{"ab"}, wantErr: syslog.ErrBadFrame},
		{name: "no space after length", in: "5\thello", wantErr: syslog.ErrBadFrame},
		{name: "length too short", in: "3 hello", want: []string{"hel"}, wantErr: syslog.ErrBadFrame, errHas: `byte 5: expected a frame length (a decimal without a leading zero, then a space), got "l`},
		{name: "length too long", in: "9 hello", wantErr: io.ErrUnexpectedEOF},
		{name: "EOF in the length", in: "5 hello12", want: []string{"hello"}, wantErr: io.ErrUnexpectedEOF},
		{name: "EOF after the length", in: "12 ", wantErr: io.ErrUnexpectedEOF},
		{name: "LF framing refused", in: "hello\n", framing: syslog.OctetCounting, wantErr: syslog.ErrBadFrame, errHas: `got "h`},
	})
}

func TestLFFraming(t *testing.T) {
	max64k := strings.Repeat("x", syslog.DefaultMaxSize)
	runFrameCases(t, []frameCase{
		{name: "empty stream", in: "", wantErr: io.EOF},
		{name: "one", in: "<13>hello\n", want: []string{"<13>hello"}, wantErr: io.EOF},
		{name: "several in one read", in: "<13>a\n<13>b\n<13>c\n", want: []string{"<13>a", "<13>b", "<13>c"}, wantErr: io.EOF},
		{name: "CRLF", in: "<13>a\r\n<13>b\r\n", want: []string{"<13>a", "<13>b"}, wantErr: io.EOF},
		{name: "NUL trailer", in: "<13>a\x00<13>b\x00", want: []string{"<13>a", "<13>b"}, wantErr: io.EOF},
		{name: "NUL and LF", in: "<13>a\x00\n<13>b\n", want: []string{"<13>a", "<13>b"}, wantErr: io.EOF},
		{name: "blank lines skipped", in: "\n\r\n<13>a\n\n\n<13>b\n", want: []string{"<13>a", "<13>b"}, wantErr: io.EOF},
		{name: "CR inside kept", in: "<13>a\rb\n", want: []string{"<13>a\rb"}, wantErr: io.EOF},
		{name: "unterminated last", in: "<13>a\n<13>b", want: []string{"<13>a", "<13>b"}, wantErr: io.ErrUnexpectedEOF},
		{name: "unterminated at the maximum", in: max64k, want: []string{max64k}, wantErr: io.ErrUnexpectedEOF},
		{name: "unterminated over the maximum", in: max64k + "x", wantErr: syslog.ErrTooLarge},
		{name: "exactly the maximum", in: max64k + "\n", want: []string{max64k}, wantErr: io.EOF},
		{name: "maximum with CRLF", in: max64k + "\r\n", want: []string{max64k}, wantErr: io.EOF},
		{name: "maximum plus one", in: max64k + "x\n", wantErr: syslog.ErrTooLarge, errHas: "is over the maximum of 65536 bytes"},
		{name: "no LF in sight", in: max64k + "xx", wantErr: syslog.ErrTooLarge, errHas: "no LF within the maximum of 65536 bytes"},
		{name: "small maximum", in: "abcd\nabcde\n", max: 4, want: []string{"abcd"}, wantErr: syslog.ErrTooLarge, errHas: "at byte 5"},
		{name: "digits in a forced LF stream", in: "12 ab\n", framing: syslog.NonTransparent, want: []string{"12 ab"}, wantErr: io.EOF},
	})
}

func TestAutoFraming(t *testing.T) {
	runFrameCases(t, []frameCase{
		{name: "digit means octet counting", in: "5 <1>ab3 <1>", want: []string{"<1>ab", "<1>"}, wantErr: io.EOF},
		{name: "'<' means LF", in: "<1>ab\n<1>cd\n", want: []string{"<1>ab", "<1>cd"}, wantErr: io.EOF},
		{name: "decided once per connection", in: "<1>ab\n5 <1>cd\n", want: []string{"<1>ab", "5 <1>cd"}, wantErr: io.EOF},
		{name: "octet counting keeps to it", in: "5 <1>ab<1>cd\n", want: []string{"<1>ab"}, wantErr: syslog.ErrBadFrame},
		{name: "leading blank lines", in: "\r\n5 <1>ab", want: []string{"<1>ab"}, wantErr: io.EOF},
	})
}

func TestReaderFramingDecided(t *testing.T) {
	for in, want := range map[string]syslog.Framing{"3 abc": syslog.OctetCounting, "abc\n": syslog.NonTransparent} {
		r, err := syslog.NewReader(strings.NewReader(in), syslog.Config{})
		if err != nil {
			t.Fatal(err)
		}
		if r.Framing() != syslog.Auto {
			t.Errorf("%q: framing %v before the first read, want auto", in, r.Framing())
		}
		if _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
		if r.Framing() != want {
			t.Errorf("%q: framing %v, want %v", in, r.Framing(), want)
		}
	}
}

func TestFrameErrorFields(t *testing.T) {
	r, _ := syslog.NewReader(strings.NewReader("3 abc70000 x"), syslog.Config{})
	r.Next()
	_, err := r.Next()
	var fe *syslog.FrameError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v is not a *FrameError", err)
	}
	want := syslog.FrameError{Err: syslog.ErrTooLarge, Offset: 5, Length: 70000, Max: syslog.DefaultMaxSize}
	if diff := cmp.Diff(want, *fe, cmpopts.IgnoreFields(syslog.FrameError{}, "Reason"), cmpopts.EquateErrors()); diff != "" {
		t.Errorf("FrameError (-want +got):\n%s", diff)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []syslog.Config{{MaxSize: -1}, {MaxSize: 1 << 31}, {Framing: 7}} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: valid", c)
		}
		if _, err := syslog.NewReader(strings.NewReader(""), c); err == nil {
			t.Errorf("NewReader with %+v: no error", c)
		}
	}
	if err := syslog.DefaultConfig().Validate(); err != nil {
		t.Error(err)
	}
}

// A reader gives up on a line as soon as it passes the maximum: it reads no
// more than the maximum plus its read-ahead, however long the line runs.
func TestLFFramingBounded(t *testing.T) {
	src := &repeatReader{b: 'x', n: 1 << 30}
	r, _ := syslog.NewReader(src, syslog.Config{MaxSize: 1 << 20})
	if _, err := r.Next(); !errors.Is(err, syslog.ErrTooLarge) {
		t.Fatalf("error %v, want ErrTooLarge", err)
	}
	if read := 1<<30 - src.n; read > 1<<20+64<<10 {
		t.Errorf("read %d bytes of an endless line before refusing it, want at most the maximum and the read-ahead", read)
	}
}

type repeatReader struct {
	b byte
	n int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	n := min(len(p), r.n)
	for i := range p[:n] {
		p[i] = r.b
	}
	r.n -= n
	return n, nil
}
