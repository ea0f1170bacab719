package trail

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

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

// Validate checks ev against the v1 schema and returns a *ValidationError
// naming the first bad field. It does not check the 64 KiB size limit, which
// applies to the event as stored.
func (ev *Event) Validate() error { return ev.validate(false) }

// validate is Validate; reserved admits streams under trail/ (Trail's own
// events, appended with AppendReserved).
func (ev *Event) validate(reserved bool) error {
	if ev.ID != "" || ev.idSent {
		if err := checkID(ev.ID); err != nil {
			return err
		}
	}
	if err := ValidateStream(ev.Stream); err != nil {
		return err
	}
	if IsReservedStream(ev.Stream) != reserved {
		if reserved {
			return invalid("stream", "%q is not under trail/; AppendReserved is for Trail's own streams", ev.Stream)
		}
		return invalid("stream", "%q is under trail/, which is reserved for Trail's own events", ev.Stream)
	}
	return ev.validateBody()
}

func (ev *Event) validateBody() error {
	if ev.Type == "" {
		return invalid("type", "required")
	}
	if err := checkText("type", ev.Type, MaxTypeLen); err != nil {
		return err
	}
	switch ev.Action {
	case "C", "R", "U", "D", "E":
	case "":
		return invalid("action", "required: one of C, R, U, D, E")
	default:
		return invalid("action", "%q is not one of C, R, U, D, E", ev.Action)
	}
	switch ev.Outcome {
	case "", OutcomeSuccess, OutcomeMinorFailure, OutcomeSeriousFailure, OutcomeMajorFailure:
	default:
		return invalid("outcome", "%q is not one of success, minor-failure, serious-failure, major-failure", ev.Outcome)
	}
	if ev.Actor.ID == "" {
		return invalid("actor.id", "required: who performed the action")
	}
	if err := ev.validateStrings(); err != nil {
		return err
	}
	return validateDetails(ev.Details)
}

// validateStrings checks that every free-text field is valid UTF-8 and within
// the event size, so that the stored JSON is well formed.
func (ev *Event) validateStrings() error {
	fields := [...]struct{ name, v string }{
		{"outcome_desc", ev.OutcomeDesc},
		{"actor.id", ev.Actor.ID}, {"actor.name", ev.Actor.Name}, {"actor.role", ev.Actor.Role},
		{"actor.address", ev.Actor.Address}, {"actor.user_agent", ev.Actor.UserAgent},
		{"patient", ev.Patient}, {"purpose", ev.Purpose},
	}
	for _, f := range fields {
		if err := checkText(f.name, f.v, MaxEventSize); err != nil {
			return err
		}
	}
	if ev.Source != nil {
		src := [...]struct{ name, v string }{
			{"source.id", ev.Source.ID}, {"source.site", ev.Source.Site}, {"source.type", ev.Source.Type},
		}
		for _, f := range src {
			if err := checkText(f.name, f.v, MaxEventSize); err != nil {
				return err
			}
		}
	}
	for i, en := range ev.Entities {
		if en.ID == "" {
			return invalid(fmt.Sprintf("entities[%d].id", i), "required: the identifier of the record touched")
		}
		ent := [...]struct{ name, v string }{{"type", en.Type}, {"id", en.ID}, {"role", en.Role}, {"name", en.Name}}
		for _, f := range ent {
			if err := checkText(fmt.Sprintf("entities[%d].%s", i, f.name), f.v, MaxEventSize); err != nil {
				return err
			}
		}
	}
	return nil
}

func validateDetails(d json.RawMessage) error {
	if len(d) == 0 {
		return nil
	}
	t := bytes.TrimSpace(d)
	if bytes.Equal(t, []byte("null")) {
		return nil
	}
	if len(t) == 0 || t[0] != '{' {
		return invalid("details", "must be a JSON object")
	}
	if !validJSON(t) {
		return invalid("details", "is not valid JSON")
	}
	if !utf8.Valid(t) {
		return invalid("details", "is not valid UTF-8")
	}
	if len(t) > MaxDetailsSize { // compact JSON is never longer than the input
		if n := compactLen(t); n > MaxDetailsSize {
			return invalid("details", "is %d bytes as compact JSON; the limit is %d", n, MaxDetailsSize)
		}
	}
	return nil
}

func compactLen(d []byte) int {
	var b bytes.Buffer
	if err := json.Compact(&b, d); err != nil {
		return len(d)
	}
	return b.Len()
}

func checkText(field, v string, max int) error {
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
	return nil
}

// checkName checks an identifier of 1-max bytes of [A-Za-z0-9._:-].
func checkName(field, v string, max int) error {
	if v == "" {
		return invalid(field, "must not be empty")
	}
	if len(v) > max {
		return invalid(field, "is %d bytes; the limit is %d", len(v), max)
	}
	for i := 0; i < len(v); i++ {
		if !nameByte(v[i]) {
			return invalid(field, "byte %d (%q) is not one of A-Z a-z 0-9 . _ : -", i, v[i])
		}
	}
	return nil
}

// checkID checks an event id: 1-64 bytes of [A-Za-z0-9.-], so that every id
// is also a valid FHIR id. Ids Trail assigns (UUIDv7) and the Go client's
// (UUIDv8) are of this form.
func checkID(v string) error {
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
