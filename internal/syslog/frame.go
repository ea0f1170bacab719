package syslog

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// DefaultMaxSize is the largest message a Reader accepts unless configured
// otherwise: 64 KiB, what the design allows a syslog message over TLS and TCP.
const DefaultMaxSize = 64 << 10

// maxMaxSize bounds Config.MaxSize so a length and its digits fit an int on
// every platform.
const maxMaxSize = 1 << 30

// bufSize is the read-ahead of a Reader's bufio.Reader.
const bufSize = 16 << 10

// shownBytes is how many offending bytes a FrameError quotes.
const shownBytes = 32

// Framing selects how a Reader finds where one message ends.
type Framing int

const (
	// Auto decides once per connection from its first byte (leading LF, CR
	// and NUL skipped): a digit means octet counting, anything else LF
	// framing, as rsyslog and syslog-ng receivers decide.
	Auto Framing = iota
	// OctetCounting is RFC 5425 and RFC 6587 section 3.4.1:
	// MSG-LEN SP SYSLOG-MSG, MSG-LEN a decimal without a leading zero.
	OctetCounting
	// NonTransparent is RFC 6587 section 3.4.2: each message ends with LF
	// (CRLF and NUL are taken as well).
	NonTransparent
)

// String returns the framing's name as the package doc uses it.
func (f Framing) String() string {
	switch f {
	case Auto:
		return "auto"
	case OctetCounting:
		return "octet-counting"
	case NonTransparent:
		return "non-transparent"
	}
	return "Framing(" + strconv.Itoa(int(f)) + ")"
}

// Config configures a Reader. The zero value works: auto-detected framing
// and DefaultMaxSize.
type Config struct {
	// MaxSize is the largest message accepted, in bytes, without its
	// framing (MSG-LEN SP, or the LF). Zero means DefaultMaxSize. A Reader
	// holds at most MaxSize+1 bytes of a message plus a fixed 16 KiB of
	// read-ahead.
	MaxSize int
	// Framing is the transport framing; Auto (the zero value) for TCP,
	// OctetCounting for TLS (RFC 5425 allows nothing else).
	Framing Framing
}

// DefaultConfig returns a Config with every field set to its default.
func DefaultConfig() Config {
	return Config{MaxSize: DefaultMaxSize, Framing: Auto}
}

// Validate reports a field out of range.
func (c Config) Validate() error {
	if c.MaxSize < 0 || c.MaxSize > maxMaxSize {
		return fmt.Errorf("syslog max size %d: must be between 1 and %d bytes (0 for the default %d)", c.MaxSize, maxMaxSize, DefaultMaxSize)
	}
	if c.Framing < Auto || c.Framing > NonTransparent {
		return fmt.Errorf("syslog framing %d: unknown (use Auto, OctetCounting or NonTransparent)", c.Framing)
	}
	return nil
}

var (
	// ErrTooLarge is wrapped by a FrameError for a message over the maximum size.
	ErrTooLarge = errors.New("syslog message over the maximum size")
	// ErrBadFrame is wrapped by a FrameError for bytes that are not a frame.
	ErrBadFrame = errors.New("bad syslog frame")
)

// FrameError is a framing failure. The stream has lost its frame boundaries:
// the Reader returns the same error from then on, and the caller should close
// the connection. errors.Is tells ErrTooLarge from ErrBadFrame.
type FrameError struct {
	Err    error  // ErrTooLarge or ErrBadFrame
	Offset int64  // where the frame starts, in bytes from the start of the stream
	Length int    // ErrTooLarge: the announced MSG-LEN (-1 if it has more digits than Max), or for LF framing the bytes read without finding the end
	Max    int    // the maximum size in force
	Data   []byte // ErrBadFrame: the offending bytes where a frame should start (at most 32, those already read ahead)
	Reason string // what was wrong, for people
}

// Error says where the frame starts and what was wrong with it.
func (e *FrameError) Error() string {
	return fmt.Sprintf("syslog frame at byte %d: %s", e.Offset, e.Reason)
}

// Unwrap returns ErrTooLarge or ErrBadFrame.
func (e *FrameError) Unwrap() error { return e.Err }

// Reader splits a byte stream into syslog messages. It is not safe for
// concurrent use.
type Reader struct {
	br      *bufio.Reader
	max     int
	digits  int     // of max: a longer MSG-LEN is over it
	framing Framing // Auto until the first byte decides
	off     int64   // bytes consumed from br
	err     error   // sticky: once set every Next returns it
}

// NewReader returns a Reader of r with the given configuration.
func NewReader(r io.Reader, cfg Config) (*Reader, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxSize == 0 {
		cfg.MaxSize = DefaultMaxSize
	}
	return &Reader{br: bufio.NewReaderSize(r, bufSize), max: cfg.MaxSize, digits: len(strconv.Itoa(cfg.MaxSize)), framing: cfg.Framing}, nil
}

// Framing returns the framing in use: the configured one, or with Auto what
// the first byte decided (Auto until then).
func (r *Reader) Framing() Framing { return r.framing }

// Next returns the next message, without its framing. The slice is newly
// allocated: the caller may keep it. LF, CR and NUL bytes between frames
// are skipped, so blank lines and a LF after an octet-counted frame are
// not messages.
//
// Errors: io.EOF when the stream ends at a frame boundary;
// io.ErrUnexpectedEOF when it ends inside a frame (for LF framing the
// unterminated tail is returned with it: it may be a whole message from a
// sender that closed without the final LF, or a cut one); a *FrameError
// when the stream is not framed as configured or a message is over the
// maximum; any error of the underlying reader. After an error Next returns
// it again and reads nothing more.
func (r *Reader) Next() ([]byte, error) {
	if r.err != nil {
		return nil, r.err
	}
	msg, err := r.next()
	if err != nil {
		r.err = err
	}
	return msg, err
}

func (r *Reader) next() ([]byte, error) {
	c, err := r.skipSeparators()
	if err != nil {
		return nil, err
	}
	if r.framing == Auto {
		r.framing = NonTransparent
		if c >= '0' && c <= '9' {
			r.framing = OctetCounting
		}
	}
	if r.framing == OctetCounting {
		return r.nextOctetCounted()
	}
	return r.nextLine()
}

// skipSeparators consumes LF, CR and NUL bytes and returns the next byte
// without consuming it; io.EOF if the stream ends first.
func (r *Reader) skipSeparators() (byte, error) {
	for {
		b, err := r.br.Peek(1)
		if err != nil {
			return 0, err
		}
		if b[0] != '\n' && b[0] != '\r' && b[0] != 0 {
			return b[0], nil
		}
		r.discard(1)
	}
}

func (r *Reader) discard(n int) {
	r.br.Discard(n) // n is at most what Peek returned: cannot fail
	r.off += int64(n)
}

// nextOctetCounted reads MSG-LEN SP SYSLOG-MSG. A LF (or CRLF) ending the
// message inside its count is dropped: some senders count it.
func (r *Reader) nextOctetCounted() ([]byte, error) {
	start := r.off
	n, err := r.readLength(start)
	if err != nil {
		return nil, err
	}
	msg := make([]byte, n)
	got, err := io.ReadFull(r.br, msg)
	r.off += int64(got)
	if err != nil {
		return nil, eofMidFrame(err)
	}
	if bytes.HasSuffix(msg, []byte("\n")) {
		msg = bytes.TrimSuffix(msg[:n-1], []byte("\r"))
	}
	return msg, nil
}

// readLength reads MSG-LEN and the SP after it. A length with more digits
// than the maximum is over it, whatever follows.
func (r *Reader) readLength(start int64) (int, error) {
	var digits [20]byte
	nd, n := 0, 0
	for {
		b, err := r.br.ReadByte()
		if err != nil {
			return 0, eofMidFrame(err)
		}
		r.off++
		if b == ' ' && nd > 0 {
			break
		}
		if b < '0' || b > '9' || nd == 0 && b == '0' {
			return 0, r.badLength(start, append(digits[:nd], b))
		}
		if nd == r.digits {
			return 0, r.tooLarge(start, -1, fmt.Sprintf("length of more than %d digits is over the maximum of %d bytes", r.digits, r.max))
		}
		digits[nd] = b
		nd++
		n = n*10 + int(b-'0')
	}
	if n > r.max {
		return 0, r.tooLarge(start, n, fmt.Sprintf("length %d is over the maximum of %d bytes", n, r.max))
	}
	return n, nil
}

func (r *Reader) badLength(start int64, seen []byte) error {
	data := append([]byte(nil), seen...)
	if more, _ := r.br.Peek(min(r.br.Buffered(), shownBytes-len(data))); len(more) > 0 {
		data = append(data, more...)
	}
	why := "expected a frame length (a decimal without a leading zero, then a space)"
	if seen[0] == '0' {
		why = "frame length with a leading zero"
	}
	cut := ""
	if len(data) == shownBytes {
		cut = "…"
	}
	return &FrameError{Err: ErrBadFrame, Offset: start, Max: r.max, Data: data,
		Reason: fmt.Sprintf("%s, got %q%s: the sender does not use octet counting here", why, data, cut)}
}

func (r *Reader) tooLarge(start int64, n int, why string) error {
	return &FrameError{Err: ErrTooLarge, Offset: start, Length: n, Max: r.max, Reason: why}
}

// nextLine reads up to a LF or NUL, dropping a CR before it. It holds at
// most max+1 bytes of the message (the +1 for that CR).
func (r *Reader) nextLine() ([]byte, error) {
	start := r.off
	var msg []byte
	var err error // io.ErrUnexpectedEOF when the stream ends without a line end
	for {
		if r.br.Buffered() == 0 {
			if _, perr := r.br.Peek(1); perr == io.EOF {
				err = io.ErrUnexpectedEOF
				break
			} else if perr != nil {
				return nil, perr
			}
		}
		chunk, _ := r.br.Peek(r.br.Buffered())
		end := lineEnd(chunk)
		take := end
		if end < 0 {
			take = len(chunk)
		}
		if len(msg)+take > r.max+1 {
			return nil, r.tooLarge(start, len(msg)+take, fmt.Sprintf("no LF within the maximum of %d bytes", r.max))
		}
		msg = appendBounded(msg, chunk[:take], r.max+1)
		if end >= 0 {
			r.discard(end + 1)
			break
		}
		r.discard(take)
	}
	msg = bytes.TrimSuffix(msg, []byte("\r"))
	if len(msg) > r.max {
		return nil, r.tooLarge(start, len(msg), fmt.Sprintf("message of %d bytes is over the maximum of %d bytes", len(msg), r.max))
	}
	return msg, err
}

// lineEnd returns the index of the first LF or NUL in b, or -1.
func lineEnd(b []byte) int {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
		if j := bytes.IndexByte(b, 0); j >= 0 {
			return j
		}
		return i
	}
	return bytes.IndexByte(b, 0)
}

// appendBounded appends p to b, never growing b's capacity past limit
// (len(b)+len(p) must not exceed it): plain append could double a buffer
// near the limit.
func appendBounded(b, p []byte, limit int) []byte {
	if need := len(b) + len(p); need > cap(b) {
		c := min(max(2*cap(b), need), limit)
		nb := make([]byte, len(b), c)
		copy(nb, b)
		b = nb
	}
	return append(b, p...)
}

func eofMidFrame(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// AppendOctetCounted appends msg framed with octet counting (MSG-LEN SP msg)
// to dst. msg must not be empty: MSG-LEN has no zero.
func AppendOctetCounted(dst, msg []byte) []byte {
	dst = strconv.AppendInt(dst, int64(len(msg)), 10)
	dst = append(dst, ' ')
	return append(dst, msg...)
}
