package syslog

import (
	"bytes"
	"time"
	"unicode/utf8"
)

// header5424 are the RFC 5424 header fields after VERSION, with their
// maximum lengths.
var header5424 = [...]struct {
	name string
	max  int
}{{"TIMESTAMP", 0}, {"HOSTNAME", 255}, {"APP-NAME", 48}, {"PROCID", 128}, {"MSGID", 32}}

// parse5424 parses what follows VERSION SP. A header cut short leaves the
// fields it lacks empty; structured data that is absent or not well formed
// is taken as the start of MSG.
func (m *Message) parse5424(b []byte) {
	var fields [len(header5424)][]byte
	spaces := false
	for i, h := range header5424 {
		var extra bool
		fields[i], b, extra = field(b)
		spaces = spaces || extra
		if fields[i] == nil {
			m.problem("header ends before %s", h.name)
			break
		}
		if h.max > 0 {
			checkField(m, h.name, fields[i], h.max)
		}
	}
	m.Timestamp = m.timestamp5424(fields[0])
	m.Hostname, m.AppName = nilString(fields[1]), nilString(fields[2])
	m.ProcID, m.MsgID = nilString(fields[3]), nilString(fields[4])
	if fields[4] != nil {
		var extra bool
		b, extra = skipSpaces(b)
		spaces = spaces || extra
		m.structuredData(b)
	}
	if spaces {
		m.problem("more than one space between header fields")
	}
}

// field returns the bytes up to the next SP or the end and what follows the
// SP, skipping spaces before it (extra reports any beyond the one expected,
// which the caller has consumed). f is nil at the end of b.
func field(b []byte) (f, rest []byte, extra bool) {
	b, extra = skipSpaces(b)
	if len(b) == 0 {
		return nil, nil, extra
	}
	i := bytes.IndexByte(b, ' ')
	if i < 0 {
		return b, nil, extra
	}
	return b[:i], b[i+1:], extra
}

func skipSpaces(b []byte) ([]byte, bool) {
	t := bytes.TrimLeft(b, " ")
	return t, len(t) != len(b)
}

func checkField(m *Message, name string, f []byte, max int) {
	if len(f) > max {
		m.problem("%s of %d bytes is over its %d", name, len(f), max)
	}
	for _, c := range f {
		if c < 33 || c > 126 {
			m.problem("%s %q holds bytes outside printable ASCII", name, cut(f, 64))
			return
		}
	}
}

func nilString(f []byte) string {
	if len(f) == 1 && f[0] == '-' {
		return ""
	}
	return string(f)
}

func (m *Message) timestamp5424(f []byte) time.Time {
	if f == nil || nilString(f) == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, string(f))
	if err != nil {
		m.problem("TIMESTAMP %q is not RFC 3339: left out", cut(f, 64))
		return time.Time{}
	}
	return t
}

// structuredData parses STRUCTURED-DATA [SP MSG] from b and sets the body.
func (m *Message) structuredData(b []byte) {
	switch {
	case len(b) == 0:
		m.problem("no STRUCTURED-DATA: the message ends after MSGID")
		return
	case b[0] == '-' && (len(b) == 1 || b[1] == ' '):
		b = b[1:]
	case b[0] == '[':
		sd, n, why := parseSD(b)
		if why != "" {
			m.problem("STRUCTURED-DATA not well formed (%s): taken as MSG", why)
			m.body(b)
			return
		}
		m.StructuredData, b = sd, b[n:]
	default:
		m.problem("no STRUCTURED-DATA: MSG follows MSGID")
		m.body(b)
		return
	}
	if len(b) > 0 && b[0] != ' ' {
		m.problem("no space after STRUCTURED-DATA")
		m.body(b)
		return
	}
	if len(b) > 0 {
		m.body(b[1:])
	}
}

// parseSD parses 1*SD-ELEMENT at the start of b and returns the elements
// and the bytes they take, or why they are not well formed.
func parseSD(b []byte) (sd []SDElement, n int, why string) {
	for n < len(b) && b[n] == '[' {
		e, en, why := parseSDElement(b[n:])
		if why != "" {
			return nil, 0, why
		}
		sd = append(sd, e)
		n += en
	}
	return sd, n, ""
}

// parseSDElement parses "[" SD-ID *(SP SD-PARAM) "]"; extra spaces between
// params are taken.
func parseSDElement(b []byte) (e SDElement, n int, why string) {
	id, n := sdName(b, 1)
	if id == "" {
		return e, 0, "no SD-ID after ["
	}
	e.ID = id
	for {
		start := n
		for n < len(b) && b[n] == ' ' {
			n++
		}
		switch {
		case n == len(b):
			return e, 0, "no ] closing element " + quote(id)
		case b[n] == ']':
			return e, n + 1, ""
		case n == start:
			return e, 0, "no space before a param of element " + quote(id)
		}
		p, pn, why := parseSDParam(b, n)
		if why != "" {
			return e, 0, why + " in element " + quote(id)
		}
		e.Params = append(e.Params, p)
		n = pn
	}
}

// parseSDParam parses PARAM-NAME "=" %d34 PARAM-VALUE %d34 at b[i:], and
// returns the index after it.
func parseSDParam(b []byte, i int) (p SDParam, n int, why string) {
	name, n := sdName(b, i)
	if name == "" || n+1 >= len(b) || b[n] != '=' || b[n+1] != '"' {
		return p, 0, "a param is not NAME=\"VALUE\""
	}
	var v []byte
	for n += 2; n < len(b); n++ {
		switch c := b[n]; {
		case c == '"':
			if !utf8.Valid(v) {
				return p, 0, "param " + quote(name) + " is not UTF-8"
			}
			return SDParam{Name: name, Value: string(v)}, n + 1, ""
		case c == '\\' && n+1 < len(b) && (b[n+1] == '"' || b[n+1] == '\\' || b[n+1] == ']'):
			v = append(v, b[n+1])
			n++
		default:
			v = append(v, c) // a backslash before anything else stays, as RFC 5424 6.3.3 says
		}
	}
	return p, 0, "param " + quote(name) + " has no closing quote"
}

// sdName reads an SD-NAME (1 to 32 printable ASCII bytes but '=', SP, ']'
// and '"') from b[i:]; empty if there is none or it is too long.
func sdName(b []byte, i int) (string, int) {
	j := i
	for j < len(b) && b[j] > 32 && b[j] < 127 && b[j] != '=' && b[j] != ']' && b[j] != '"' {
		j++
	}
	if j == i || j-i > 32 {
		return "", i
	}
	return string(b[i:j]), j
}

func quote(s string) string { return `"` + s + `"` }
