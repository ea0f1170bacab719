package syslog

import (
	"bytes"
	"time"
)

// parse3164 parses what follows PRI in an RFC 3164 message:
// TIMESTAMP SP HOSTNAME SP TAG: MSG, TIMESTAMP "Mmm dd hh:mm:ss" (or RFC
// 3339, as rsyslog forwards). Without a timestamp everything is MSG, as RFC
// 3164 section 4.3.3 says; without a tag, what follows the hostname is.
func (m *Message) parse3164(b []byte, received time.Time) {
	t, rest, ok := timestamp3164(b, received)
	if !ok {
		m.problem("no RFC 3164 TIMESTAMP: all after PRI taken as MSG")
		m.body(b)
		return
	}
	m.Timestamp = t
	b, extra := skipSpaces(rest)
	if app, pid, after, ok := tag(b, true); ok {
		m.problem("no HOSTNAME before TAG")
		m.AppName, m.ProcID = app, pid
		m.body(after)
		return
	}
	host, after, _ := field(b)
	if after == nil {
		m.problem("no HOSTNAME and TAG: all after TIMESTAMP taken as MSG")
		m.body(b)
		return
	}
	m.Hostname = string(host)
	b, more := skipSpaces(after)
	if app, pid, after, ok := tag(b, false); ok {
		m.AppName, m.ProcID = app, pid
		m.body(after)
	} else {
		m.problem("no TAG: all after HOSTNAME taken as MSG")
		m.body(b)
	}
	if extra || more {
		m.problem("more than one space between header fields")
	}
}

// timestamp3164 reads "Mmm dd hh:mm:ss" (fractional seconds taken) and the
// space after it, or an RFC 3339 timestamp and its space.
func timestamp3164(b []byte, received time.Time) (time.Time, []byte, bool) {
	if len(b) > 7 {
		if i := bytes.IndexByte(b[7:], ' '); i >= 0 {
			if t, err := time.Parse(time.Stamp, string(b[:7+i])); err == nil {
				return withYear(t, received), b[7+i+1:], true
			}
		}
	}
	if i := bytes.IndexByte(b, ' '); i > 0 {
		if t, err := time.Parse(time.RFC3339Nano, string(b[:i])); err == nil {
			return t, b[i+1:], true
		}
	}
	return time.Time{}, nil, false
}

// withYear places a yearless time in received's zone and in the year that
// puts it no more than a day after received: a December stamp received in
// January is from the year before.
func withYear(t, received time.Time) time.Time {
	y := received.Year()
	at := func(y int) time.Time {
		return time.Date(y, t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), received.Location())
	}
	if at(y).After(received.Add(24 * time.Hour)) {
		return at(y - 1)
	}
	return at(y)
}

// tag reads an RFC 3164 TAG as senders write it: NAME[PID]: or NAME: or
// NAME[PID], NAME being printable ASCII but ':', '[' and SP. Its MSG
// starts after the colon and one space. strict, for a first word that
// could be a hostname (an IPv6 one holds colons), wants a space or the end
// after the colon.
func tag(b []byte, strict bool) (app, pid string, msg []byte, ok bool) {
	i := 0
	for i < len(b) && b[i] > 32 && b[i] < 127 && b[i] != ':' && b[i] != '[' {
		i++
	}
	if i == 0 || i == len(b) {
		return "", "", nil, false
	}
	app, n := string(b[:i]), i
	if b[n] == '[' {
		j := bytes.IndexByte(b[n:], ']')
		if j < 0 || bytes.IndexByte(b[n:n+j], ' ') >= 0 {
			return "", "", nil, false
		}
		pid, n = string(b[n+1:n+j]), n+j+1
	}
	switch {
	case n < len(b) && b[n] == ':':
		n++
		if strict && n < len(b) && b[n] != ' ' {
			return "", "", nil, false
		}
	case pid == "" || n < len(b) && b[n] != ' ':
		return "", "", nil, false
	}
	if n < len(b) && b[n] == ' ' {
		n++
	}
	return app, pid, b[n:], true
}
