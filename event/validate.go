package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ErrTooLarge: the event is over 64 KiB as sent, or its original over
// MaxOriginalSize. Compare with errors.Is.
var ErrTooLarge = errors.New("trail: event too large")

// ValidationError says which field of an event is wrong and why.
type ValidationError struct {
	Field  string // JSON path of the field, such as "actor.id" or "entities[2].id"
	Reason string // what is wrong, for a person to act on
	Err    error  // a sentinel it matches, such as ErrTooLarge; may be nil
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("invalid event: %s: %s", e.Field, e.Reason)
}

func (e *ValidationError) Unwrap() error { return e.Err }

func invalid(field, format string, args ...any) *ValidationError {
	return &ValidationError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// InvalidEventError lists every problem found in one event, in the order
// found (at least one). Field paths are dotted: member names joined by dots,
// array items by index in brackets ("actor.id", "entities[2].id",
// "details.notes[0]"); "(event)" is the event as a whole.
//
// errors.As finds its first *ValidationError, and errors.Is matches a
// sentinel any problem carries (ErrTooLarge).
type InvalidEventError struct {
	Problems []*ValidationError
}

func (e *InvalidEventError) Error() string {
	var b strings.Builder
	b.WriteString("invalid event: ")
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.Field)
		b.WriteString(": ")
		b.WriteString(p.Reason)
	}
	return b.String()
}

// Unwrap returns the problems, so that errors.As and errors.Is see each.
func (e *InvalidEventError) Unwrap() []error {
	errs := make([]error, len(e.Problems))
	for i, p := range e.Problems {
		errs[i] = p
	}
	return errs
}

// problems collects the problems of one event.
type problems []*ValidationError

// add adds p unless it is nil or its field already has a problem (or lies
// above or below a field that has one): one problem per field is enough to
// act on.
func (ps *problems) add(p *ValidationError) {
	if p == nil {
		return
	}
	for _, q := range *ps {
		if related(p.Field, q.Field) {
			return
		}
	}
	*ps = append(*ps, p)
}

// related reports whether paths a and b are equal or one lies under the
// other. "(event)", the event as a whole, is related to nothing: its
// problems (the size, bad member names) are each worth listing.
func related(a, b string) bool {
	if a == "(event)" || b == "(event)" {
		return false
	}
	if len(a) > len(b) {
		a, b = b, a
	}
	return a == b || strings.HasPrefix(b, a) && (b[len(a)] == '.' || b[len(a)] == '[')
}

func (ps problems) err() error {
	if len(ps) == 0 {
		return nil
	}
	return &InvalidEventError{Problems: ps}
}

// Validate checks ev against the v1 schema and returns an
// *InvalidEventError listing every bad field. It does not check the 64 KiB
// size limit, which applies to the event as sent.
func (ev *Event) Validate() error { return ev.validate(false) }

// ValidateReserved is Validate for Trail's own events (appended with
// AppendReserved): it admits only streams under trail/, which Validate
// refuses.
func (ev *Event) ValidateReserved() error { return ev.validate(true) }

func (ev *Event) validate(reserved bool) error {
	var ps problems
	ev.check(&ps, reserved)
	return ps.err()
}

// check adds the event's problems to ps.
func (ev *Event) check(ps *problems, reserved bool) {
	if ev.ID != "" || ev.idSent {
		ps.add(checkID(ev.ID))
	}
	if err := ValidateStream(ev.Stream); err != nil {
		ps.add(err.(*ValidationError))
	} else if IsReservedStream(ev.Stream) != reserved {
		if reserved {
			ps.add(invalid("stream", "%q is not under trail/; AppendReserved is for Trail's own streams", ev.Stream))
		} else {
			ps.add(invalid("stream", "%q is under trail/, which is reserved for Trail's own events", ev.Stream))
		}
	}
	ev.checkBody(ps)
}

func (ev *Event) checkBody(ps *problems) {
	if ev.Type == "" {
		ps.add(invalid("type", "required"))
	}
	ps.add(checkText("type", ev.Type, MaxTypeLen))
	if len(ev.Subtypes) > MaxSubtypes {
		ps.add(invalid("subtypes", "has %d codes; an event has at most %d", len(ev.Subtypes), MaxSubtypes))
	}
	for i, st := range ev.Subtypes {
		field := fmt.Sprintf("subtypes[%d]", i)
		if st == "" {
			ps.add(invalid(field, "is empty: write a code, as system|code or the code alone"))
		}
		ps.add(checkText(field, st, MaxTypeLen))
	}
	switch ev.Action {
	case "C", "R", "U", "D", "E":
	case "":
		ps.add(invalid("action", "required: one of C, R, U, D, E"))
	default:
		ps.add(invalid("action", "%q is not one of C, R, U, D, E", ev.Action))
	}
	switch ev.Outcome {
	case "", OutcomeSuccess, OutcomeMinorFailure, OutcomeSeriousFailure, OutcomeMajorFailure:
	default:
		ps.add(invalid("outcome", "%q is not one of success, minor-failure, serious-failure, major-failure", ev.Outcome))
	}
	if ev.Actor.ID == "" {
		ps.add(invalid("actor.id", "required: who performed the action"))
	}
	ev.checkStrings(ps)
	checkDetails(ps, ev.Details)
	if o := ev.Original; o != nil {
		switch o.Format {
		case OriginalSyslog, OriginalFHIR:
		default:
			ps.add(invalid("original.format", "%q is not one of %s, %s", o.Format, OriginalSyslog, OriginalFHIR))
		}
		if len(o.Data) > MaxOriginalSize {
			ps.add(&ValidationError{Field: "original.data", Err: ErrTooLarge,
				Reason: fmt.Sprintf("is %d bytes; an original message is at most %d (64 KiB)", len(o.Data), MaxOriginalSize)})
		}
	}
}

// checkStrings checks that every free-text field is valid UTF-8 without NUL
// and within the event size, so that the stored JSON is well formed.
func (ev *Event) checkStrings(ps *problems) {
	fields := [...]struct{ name, v string }{
		{"outcome_desc", ev.OutcomeDesc},
		{"actor.id", ev.Actor.ID}, {"actor.name", ev.Actor.Name}, {"actor.role", ev.Actor.Role},
		{"actor.address", ev.Actor.Address}, {"actor.user_agent", ev.Actor.UserAgent},
		{"patient", ev.Patient}, {"purpose", ev.Purpose},
	}
	for _, f := range fields {
		ps.add(checkText(f.name, f.v, MaxEventSize))
	}
	if ev.Source != nil {
		src := [...]struct{ name, v string }{
			{"source.id", ev.Source.ID}, {"source.site", ev.Source.Site}, {"source.type", ev.Source.Type},
		}
		for _, f := range src {
			ps.add(checkText(f.name, f.v, MaxEventSize))
		}
	}
	for i, en := range ev.Entities {
		if en.ID == "" {
			ps.add(invalid(fmt.Sprintf("entities[%d].id", i), "required: the identifier of the record touched"))
		}
		ent := [...]struct{ name, v string }{{"type", en.Type}, {"id", en.ID}, {"role", en.Role}, {"name", en.Name}}
		for _, f := range ent {
			if f.v != "" {
				ps.add(checkText(fmt.Sprintf("entities[%d].%s", i, f.name), f.v, MaxEventSize))
			}
		}
	}
}

// checkDetails checks details: null or a JSON object of at most 16 KiB as
// compact JSON, whose strings (member names included) are valid UTF-8
// without NUL or lone surrogates.
func checkDetails(ps *problems, d json.RawMessage) {
	if len(d) == 0 {
		return
	}
	t := bytes.TrimSpace(d)
	if bytes.Equal(t, []byte("null")) {
		return
	}
	if len(t) == 0 || t[0] != '{' {
		ps.add(invalid("details", "must be a JSON object"))
		return
	}
	bad, ok := checkJSONText(t, "details")
	if !ok {
		ps.add(invalid("details", "is not valid JSON"))
		return
	}
	for _, p := range bad {
		ps.add(p)
	}
	if len(t) > MaxDetailsSize { // compact JSON is never longer than the input
		if n := compactLen(t); n > MaxDetailsSize {
			ps.add(invalid("details", "is %d bytes as compact JSON; the limit is %d", n, MaxDetailsSize))
		}
	}
}

func compactLen(d []byte) int {
	var b bytes.Buffer
	if err := json.Compact(&b, d); err != nil {
		return len(d)
	}
	return b.Len()
}

// checkText checks a string of at most max bytes, valid UTF-8 (which in Go
// excludes surrogates) and without NUL.
func checkText(field, v string, max int) *ValidationError {
	if len(v) > max {
		err := invalid(field, "is %d bytes; the limit is %d", len(v), max)
		if max == MaxEventSize {
			err.Reason = fmt.Sprintf("is %d bytes; a whole event is at most %d", len(v), max)
			err.Err = ErrTooLarge
		}
		return err
	}
	if !utf8.ValidString(v) {
		return invalid(field, "is not valid UTF-8")
	}
	if strings.IndexByte(v, 0) >= 0 {
		return invalid(field, "contains NUL")
	}
	return nil
}

// ValidID reports whether id is a valid event id: 1-64 bytes of
// [A-Za-z0-9.-].
func ValidID(id string) bool { return checkID(id) == nil }

// checkID checks an event id: 1-64 bytes of [A-Za-z0-9.-], so that every id
// is also a valid FHIR id. Ids Trail assigns (UUIDv7) and the Go client's
// (UUIDv8) are of this form.
func checkID(v string) *ValidationError {
	if v == "" {
		return invalid("id", "must not be empty: leave id out to have one assigned")
	}
	if len(v) > MaxIDLen {
		return invalid("id", "is %d bytes; the limit is %d", len(v), MaxIDLen)
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; !idByte(c) {
			return invalid("id", "byte %d (%q) is not one of A-Z a-z 0-9 . - (an id is a FHIR id)", i, c)
		}
	}
	return nil
}

func idByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-'
}

func nameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '.' || c == '_' || c == ':' || c == '-'
}

// ValidateStream checks a stream name: 1-256 bytes of "/"-separated segments
// of [A-Za-z0-9._:-], with no empty, "." or ".." segment.
func ValidateStream(s string) error {
	if s == "" {
		return invalid("stream", "required, such as patient/12345")
	}
	if len(s) > MaxStreamLen {
		return invalid("stream", "is %d bytes; the limit is %d", len(s), MaxStreamLen)
	}
	rest := s
	for i := 0; ; i++ {
		seg, tail, more := strings.Cut(rest, "/")
		switch seg {
		case "":
			return invalid("stream", "segment %d of %q is empty", i+1, s)
		case ".", "..":
			return invalid("stream", "segment %d of %q is %q, which is not allowed", i+1, s, seg)
		}
		for j := 0; j < len(seg); j++ {
			if !nameByte(seg[j]) {
				return invalid("stream", "%q: byte %q is not one of A-Z a-z 0-9 . _ : - /", s, seg[j])
			}
		}
		if !more {
			return nil
		}
		rest = tail
	}
}

// IsReservedStream reports whether stream is one of Trail's own (under trail/).
func IsReservedStream(stream string) bool {
	return stream == "trail" || strings.HasPrefix(stream, "trail/")
}
