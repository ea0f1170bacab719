package syslog

import (
	"bytes"
	"fmt"
	"time"
)

// The formats a Message can have.
const (
	FormatRFC5424 = "rfc5424" // <PRI>VERSION SP header SP SD [SP MSG]
	FormatRFC3164 = "rfc3164" // <PRI> then, when present, TIMESTAMP HOSTNAME TAG: MSG
	FormatRaw     = "raw"     // no <PRI>: the whole input is the body
)

// Message is a parsed syslog message. Every input parses to one: what was
// off is listed in Problems, never refused.
type Message struct {
	Facility, Severity int // from PRI; 1 (user) and 5 (notice) without one, as RFC 3164 section 4.3.3 assigns
	Version            int // RFC 5424 VERSION (1); 0 for the other formats
	// Timestamp is zero when NILVALUE, absent or not understood.
	Timestamp time.Time
	// Hostname, AppName, ProcID and MsgID are empty for NILVALUE or absent.
	Hostname, AppName, ProcID, MsgID string
	StructuredData                   []SDElement
	// Body is MSG without a UTF-8 BOM; it shares the parsed input's memory.
	Body     []byte
	Format   string   // FormatRFC5424, FormatRFC3164 or FormatRaw
	Problems []string // what was off, for people; nil for a well-formed message
}

// SDElement is one RFC 5424 SD-ELEMENT.
type SDElement struct {
	ID     string
	Params []SDParam
}

// SDParam is one SD-PARAM, its value unescaped.
type SDParam struct {
	Name, Value string
}

// defaultPRI is what RFC 3164 section 4.3.3 has a relay assign to a message
// without PRI: user.notice.
const defaultPRI = 13

var bom = []byte("\xef\xbb\xbf")

// Parse parses one syslog message: RFC 5424, else RFC 3164, else raw. It
// never fails: every input gives a Message, with Problems saying what was
// off. Trailing LF, CR and NUL bytes are dropped first.
//
// received is when the message arrived: an RFC 3164 timestamp has no year
// or zone, so it takes received's zone and the year that puts it at most a
// day after received.
func Parse(b []byte, received time.Time) Message {
	b = bytes.TrimRight(b, "\r\n\x00")
	pri, n, problem := parsePRI(b)
	if n == 0 {
		m := Message{Facility: defaultPRI / 8, Severity: defaultPRI % 8, Format: FormatRaw, Body: b}
		m.problem("%s: the whole message is taken as its body", problem)
		return m
	}
	m := Message{Facility: pri / 8, Severity: pri % 8}
	if problem != "" {
		m.problem("%s", problem)
	}
	rest := b[n:]
	if v, vn := version(rest); vn > 0 {
		m.Format, m.Version = FormatRFC5424, v
		if v != 1 {
			m.problem("version %d: parsed as version 1", v)
		}
		m.parse5424(rest[vn:])
		return m
	}
	m.Format = FormatRFC3164
	m.parse3164(rest, received)
	return m
}

func (m *Message) problem(format string, args ...any) {
	m.Problems = append(m.Problems, fmt.Sprintf(format, args...))
}

// parsePRI reads "<" 1*3DIGIT ">" with a value up to 191. n is 0 when b
// does not start with one; problem says why, or what was odd in one
// accepted.
func parsePRI(b []byte) (pri, n int, problem string) {
	if len(b) == 0 {
		return 0, 0, "empty message"
	}
	i := 1
	for i < len(b) && i <= 4 && isDigit(b[i]) {
		pri = pri*10 + int(b[i]-'0')
		i++
	}
	switch {
	case i == 1 || i > 4 || i == len(b) || b[i] != '>':
		return 0, 0, fmt.Sprintf("no <PRI> (starts %q)", cut(b, 8))
	case pri > 191:
		return 0, 0, fmt.Sprintf("PRI %d over 191", pri)
	case i > 2 && b[1] == '0':
		problem = fmt.Sprintf("PRI %q has a leading zero", b[:i+1])
	}
	return pri, i + 1, problem
}

// version reads RFC 5424's NONZERO-DIGIT 0*2DIGIT SP; n is 0 when b does
// not start with it.
func version(b []byte) (v, n int) {
	i := 0
	for i < len(b) && i < 3 && isDigit(b[i]) {
		v = v*10 + int(b[i]-'0')
		i++
	}
	if i == 0 || b[0] == '0' || i == len(b) || b[i] != ' ' {
		return 0, 0
	}
	return v, i + 1
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// cut returns at most n bytes of b, for quoting in a problem.
func cut(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// body sets Body to b without a BOM.
func (m *Message) body(b []byte) {
	m.Body = bytes.TrimPrefix(b, bom)
}
