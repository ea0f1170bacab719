package server

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/trailhq/trail"
)

// params reads a request's query parameters, refusing unknown and repeated
// ones so that a typo is a 400, not a silently wider answer.
type params struct {
	v   url.Values
	err *problem
}

func parseParams(raw string, known ...string) params {
	v, err := url.ParseQuery(raw)
	if err != nil {
		return params{err: badRequest("malformed query string: " + err.Error())}
	}
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !slices.Contains(known, k) {
			return params{err: badRequest(fmt.Sprintf("unknown query parameter %q; this endpoint takes %s", k, strings.Join(known, ", ")))}
		}
		if len(v[k]) > 1 {
			return params{err: badRequest(fmt.Sprintf("query parameter %q is given %d times; give it once", k, len(v[k])))}
		}
		if !utf8.ValidString(v[k][0]) {
			return params{err: badRequest(fmt.Sprintf("query parameter %q is not valid UTF-8", k))}
		}
		if strings.IndexByte(v[k][0], 0) >= 0 {
			// A read record names every parameter, and no event holds NUL.
			return params{err: badRequest(fmt.Sprintf("query parameter %q contains NUL (%%00)", k))}
		}
		if n, max := len(v[k][0]), maxParamLen(k); n > max {
			return params{err: badRequest(fmt.Sprintf("query parameter %q is %d bytes; the limit is %d", k, n, max))}
		}
	}
	return params{v: v}
}

// has reports whether name was given.
func (p *params) has(name string) bool { _, ok := p.v[name]; return ok }

// str returns name's value ("" when absent).
func (p *params) str(name string) string { return p.v.Get(name) }

// uint returns name's value as an unsigned integer, or def when absent.
func (p *params) uint(name string, def uint64) uint64 {
	if p.err != nil || !p.has(name) {
		return def
	}
	n, err := strconv.ParseUint(p.str(name), 10, 64)
	if err != nil {
		p.err = badRequest(fmt.Sprintf("query parameter %s=%q is not a non-negative integer", name, p.str(name)))
	}
	return n
}

// time returns name's value as an RFC 3339 time, or the zero time.
func (p *params) time(name string) time.Time {
	if p.err != nil || !p.has(name) {
		return time.Time{}
	}
	t, err := trail.ParseTime(p.str(name))
	if err != nil {
		p.err = badRequest(fmt.Sprintf("query parameter %s=%q is not an RFC 3339 time such as 2026-11-25T10:00:00Z", name, p.str(name)))
	}
	return t
}

// oneOf returns name's value, which must be one of allowed when given.
func (p *params) oneOf(name string, allowed ...string) string {
	v := p.str(name)
	if p.err == nil && p.has(name) && !slices.Contains(allowed, v) {
		p.err = badRequest(fmt.Sprintf("query parameter %s=%q must be one of %s", name, v, strings.Join(allowed, ", ")))
	}
	return v
}

// pathIndex parses the {index} path segment.
func pathIndex(s string) (uint64, *problem) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, badRequest(fmt.Sprintf("event index %q is not a non-negative integer", s))
	}
	return n, nil
}

// streamName checks a stream name given in a path or a parameter.
func streamName(name string) (string, *problem) {
	if err := trail.ValidateStream(name); err != nil {
		var ve *trail.ValidationError
		if errors.As(err, &ve) {
			return "", badRequest("invalid stream name: " + ve.Reason)
		}
		return "", badRequest(err.Error())
	}
	return name, nil
}

// maxParamLen bounds a query parameter's value, so that a read record (which
// names every parameter) always fits in an event's details.
func maxParamLen(name string) int {
	if name == "reason" {
		return 1024
	}
	return 512
}
