package event

import (
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// validJSON reports whether b is one valid JSON value (RFC 8259), as
// json.Valid does, without its per-byte state machine: details are checked
// on every append, and this is several times faster. FuzzValidJSON holds it
// to json.Valid.
func validJSON(b []byte) bool {
	v := jsonValidator{b: b}
	v.ws()
	if !v.value(0) {
		return false
	}
	v.ws()
	return v.i == len(v.b)
}

// maxJSONDepth is encoding/json's nesting limit.
const maxJSONDepth = 10000

type jsonValidator struct {
	b []byte
	i int

	// With strict set, every string (member names included) must also be
	// valid UTF-8 without NUL and without lone surrogate escapes; the
	// problems are counted and the scan goes on. With track set too, they
	// are collected in probs, each naming the string's path; path holds the
	// members and items being read.
	strict bool
	bad    int  // problems found
	track  bool // keep path and probs; a second pass does, when bad > 0
	probs  []*ValidationError
	path   []pathStep
}

// pathStep is one level of a path: a member name (raw, as in the input) or
// an array index.
type pathStep struct {
	name   []byte
	index  int
	item   bool
	hidden bool // not part of the path (yet)
}

// checkJSONText checks b, the JSON text of an event or of a part of one at
// path (such as "details"), and returns every string in it that is not
// valid UTF-8, holds a NUL or a lone surrogate: encoding/json would replace
// such characters with U+FFFD, and Trail refuses them instead. It reports
// false when b is not valid JSON at all.
func checkJSONText(b []byte, path string) ([]*ValidationError, bool) {
	v := jsonValidator{b: b, strict: true}
	if !v.whole() {
		return nil, false
	}
	if v.bad == 0 {
		return nil, true
	}
	// Name the problems: scan again keeping the path, which costs
	// allocations the common case does without.
	v = jsonValidator{b: b, strict: true, track: true}
	if path != "" {
		v.path = append(v.path, pathStep{name: []byte(path)})
	}
	v.whole()
	return v.probs, true
}

// whole reads b as one JSON value with only whitespace around it.
func (v *jsonValidator) whole() bool {
	v.ws()
	if !v.value(0) {
		return false
	}
	v.ws()
	return v.i == len(v.b)
}

// where formats the current path: member names joined by dots, array
// indexes in brackets (actor.name, entities[2].id, details.a[0]).
func (v *jsonValidator) where() string {
	var b []byte
	for _, st := range v.path {
		if st.hidden {
			continue
		}
		if st.item {
			b = append(b, '[')
			b = strconv.AppendInt(b, int64(st.index), 10)
			b = append(b, ']')
			continue
		}
		if len(b) > 0 {
			b = append(b, '.')
		}
		var name string
		if json.Unmarshal(append(append([]byte{'"'}, st.name...), '"'), &name) != nil || name == "" {
			name = strconv.Quote(string(st.name))
		}
		b = append(b, name...)
	}
	if len(b) == 0 {
		return "(event)"
	}
	return string(b)
}

func (v *jsonValidator) problem(key bool, format string, args ...any) {
	v.bad++
	if !v.track {
		return
	}
	field := v.where()
	reason := fmt.Sprintf(format, args...)
	if key {
		reason = "a member name " + reason
	}
	v.probs = append(v.probs, &ValidationError{Field: field, Reason: reason})
}

func (v *jsonValidator) ws() {
	for v.i < len(v.b) {
		switch v.b[v.i] {
		case ' ', '\t', '\n', '\r':
			v.i++
		default:
			return
		}
	}
}

func (v *jsonValidator) value(depth int) bool {
	if v.i >= len(v.b) {
		return false
	}
	switch c := v.b[v.i]; {
	case c == '{':
		return v.object(depth + 1)
	case c == '[':
		return v.array(depth + 1)
	case c == '"':
		return v.str(false)
	case c == '-' || '0' <= c && c <= '9':
		return v.number()
	case c == 't':
		return v.lit("true")
	case c == 'f':
		return v.lit("false")
	case c == 'n':
		return v.lit("null")
	}
	return false
}

func (v *jsonValidator) lit(s string) bool {
	if len(v.b)-v.i < len(s) || string(v.b[v.i:v.i+len(s)]) != s {
		return false
	}
	v.i += len(s)
	return true
}

func (v *jsonValidator) object(depth int) bool {
	if depth > maxJSONDepth {
		return false
	}
	v.i++ // {
	v.ws()
	if v.i < len(v.b) && v.b[v.i] == '}' {
		v.i++
		return true
	}
	if v.track {
		v.path = append(v.path, pathStep{hidden: true})
		defer func() { v.path = v.path[:len(v.path)-1] }()
	}
	for {
		if v.i >= len(v.b) || v.b[v.i] != '"' {
			return false
		}
		start := v.i + 1
		if v.track {
			v.path[len(v.path)-1].hidden = true // a name is checked at its object's path
		}
		if !v.str(true) {
			return false
		}
		if v.track {
			v.path[len(v.path)-1] = pathStep{name: v.b[start : v.i-1]}
		}
		v.ws()
		if v.i >= len(v.b) || v.b[v.i] != ':' {
			return false
		}
		v.i++
		v.ws()
		if !v.value(depth) {
			return false
		}
		v.ws()
		if v.i >= len(v.b) {
			return false
		}
		switch v.b[v.i] {
		case ',':
			v.i++
			v.ws()
		case '}':
			v.i++
			return true
		default:
			return false
		}
	}
}

func (v *jsonValidator) array(depth int) bool {
	if depth > maxJSONDepth {
		return false
	}
	v.i++ // [
	v.ws()
	if v.i < len(v.b) && v.b[v.i] == ']' {
		v.i++
		return true
	}
	if v.track {
		v.path = append(v.path, pathStep{item: true, index: -1})
		defer func() { v.path = v.path[:len(v.path)-1] }()
	}
	for {
		if v.track {
			v.path[len(v.path)-1].index++
		}
		if !v.value(depth) {
			return false
		}
		v.ws()
		if v.i >= len(v.b) {
			return false
		}
		switch v.b[v.i] {
		case ',':
			v.i++
			v.ws()
		case ']':
			v.i++
			return true
		default:
			return false
		}
	}
}

func (v *jsonValidator) str(key bool) bool {
	v.i++ // "
	start, high := v.i, false
	for v.i < len(v.b) {
		c := v.b[v.i]
		switch {
		case c == '"':
			if v.strict && high && !utf8.Valid(v.b[start:v.i]) {
				v.problem(key, "is not valid UTF-8")
			}
			v.i++
			return true
		case c >= 0x80:
			high = true
			v.i++
		case c < 0x20:
			return false
		case c == '\\':
			v.i++
			if v.i >= len(v.b) {
				return false
			}
			switch v.b[v.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				v.i++
			case 'u':
				if len(v.b)-v.i < 5 {
					return false
				}
				r, ok := hex4(v.b[v.i+1 : v.i+5])
				if !ok {
					return false
				}
				v.i += 5
				if v.strict {
					v.checkEscape(key, r)
				}
			default:
				return false
			}
		default:
			v.i++
		}
	}
	return false
}

// checkEscape checks the code point of a \u escape just read: NUL and a
// surrogate that is not half of a pair are problems.
func (v *jsonValidator) checkEscape(key bool, r rune) {
	switch {
	case r == 0:
		v.problem(key, "contains NUL (\\u0000)")
	case 0xDC00 <= r && r <= 0xDFFF:
		v.problem(key, "contains a lone surrogate (\\u%04x)", r)
	case 0xD800 <= r && r <= 0xDBFF:
		// A high surrogate must be followed by an escaped low one, which
		// is consumed with it.
		if len(v.b)-v.i >= 6 && v.b[v.i] == '\\' && v.b[v.i+1] == 'u' {
			if lo, ok := hex4(v.b[v.i+2 : v.i+6]); ok && 0xDC00 <= lo && lo <= 0xDFFF {
				v.i += 6
				return
			}
		}
		v.problem(key, "contains a lone surrogate (\\u%04x)", r)
	}
}

// hex4 decodes four hex digits.
func hex4(h []byte) (rune, bool) {
	var r rune
	for _, c := range h {
		switch {
		case '0' <= c && c <= '9':
			r = r<<4 | rune(c-'0')
		case 'a' <= c && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case 'A' <= c && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

func (v *jsonValidator) digits() bool {
	start := v.i
	for v.i < len(v.b) && '0' <= v.b[v.i] && v.b[v.i] <= '9' {
		v.i++
	}
	return v.i > start
}

func (v *jsonValidator) number() bool {
	if v.b[v.i] == '-' {
		v.i++
	}
	if v.i >= len(v.b) {
		return false
	}
	if v.b[v.i] == '0' {
		v.i++
	} else if !v.digits() {
		return false
	}
	if v.i < len(v.b) && v.b[v.i] == '.' {
		v.i++
		if !v.digits() {
			return false
		}
	}
	if v.i < len(v.b) && (v.b[v.i] == 'e' || v.b[v.i] == 'E') {
		v.i++
		if v.i < len(v.b) && (v.b[v.i] == '+' || v.b[v.i] == '-') {
			v.i++
		}
		if !v.digits() {
			return false
		}
	}
	return true
}
