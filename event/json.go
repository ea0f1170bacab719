package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"
)

// eventWire is Event as it travels in JSON: the time is kept as sent.
type eventWire struct {
	ID          *string         `json:"id"`
	Stream      string          `json:"stream"`
	Time        *string         `json:"time"`
	Type        string          `json:"type"`
	Subtypes    []string        `json:"subtypes"`
	Action      string          `json:"action"`
	Outcome     string          `json:"outcome"`
	OutcomeDesc string          `json:"outcome_desc"`
	Actor       *Actor          `json:"actor"`
	Patient     string          `json:"patient"`
	Entities    []Entity        `json:"entities"`
	Source      *Source         `json:"source"`
	Purpose     string          `json:"purpose"`
	Details     json.RawMessage `json:"details"`
}

// serverFields are members the server writes; a client may not send them.
var serverFields = map[string]bool{"index": true, "stream_seq": true, "recorded": true, "prev": true, "salt": true, "original": true}

// Parse decodes one event sent by a client and validates it. Unknown
// fields are rejected at every level but inside details, and so are the
// fields the server assigns; strings anywhere (details and member names
// included) must be valid UTF-8 without NUL or lone surrogates; data is at
// most MaxEventSize bytes (whitespace around the object not counted). The
// error is an *InvalidEventError listing every problem found.
func Parse(data []byte) (Event, error) {
	var ps problems
	if n := len(bytes.TrimSpace(data)); n > MaxEventSize {
		ps.add(&ValidationError{Field: "(event)", Err: ErrTooLarge,
			Reason: fmt.Sprintf("is %d bytes as sent; an event is at most %d (64 KiB)", n, MaxEventSize)})
	}
	ev, err := decodeEvent(data, &ps)
	if err != nil {
		return Event{}, err
	}
	ev.check(&ps, false)
	if err := ps.err(); err != nil {
		return Event{}, err
	}
	return ev, nil
}

// UnmarshalJSON decodes an event, rejecting unknown and server-assigned
// fields and strings that are not valid UTF-8 or hold NUL or lone
// surrogates, and keeps a given time exactly as sent. The error is an
// *InvalidEventError listing every problem found in decoding; Validate
// checks the rest.
func (ev *Event) UnmarshalJSON(data []byte) error {
	var ps problems
	e, err := decodeEvent(data, &ps)
	if err == nil {
		err = ps.err()
	}
	if err != nil {
		return err
	}
	*ev = e
	return nil
}

// decodeEvent decodes data, adding to ps what is wrong with it as an event.
// The error is for data that cannot be decoded at all.
func decodeEvent(data []byte, ps *problems) (Event, error) {
	if w, ok := parseFast(data); ok {
		ev, terr := w.event()
		ps.add(terr)
		return ev, nil
	}
	return parseSlow(data, ps)
}

// parseSlow decodes an event with encoding/json and names every problem:
// strings encoding/json would change (checkJSONText), members outside the
// schema or of the wrong type (checkMembers), and a bad time.
func parseSlow(data []byte, ps *problems) (Event, error) {
	bad, ok := checkJSONText(data, "")
	if !ok {
		var v any
		err := json.Unmarshal(data, &v)
		if err == nil { // only whitespace may follow the object
			err = errors.New("unexpected data after the JSON object")
		}
		return Event{}, &InvalidEventError{Problems: []*ValidationError{
			{Field: "(event)", Reason: fmt.Sprintf("malformed JSON: %v", strings.TrimPrefix(err.Error(), "json: "))}}}
	}
	for _, p := range bad {
		ps.add(p)
	}
	if err := checkMembers(data, ps); err != nil {
		return Event{}, &InvalidEventError{Problems: []*ValidationError{{Field: "(event)", Reason: err.Error()}}}
	}
	var w eventWire
	if err := json.Unmarshal(data, &w); err != nil {
		// checkMembers reported the types of the schema's members; this is
		// what it does not check, such as an event that is not an object.
		ps.add(decodeError(err))
	}
	ev, terr := w.event()
	ps.add(terr)
	return ev, nil
}

// event converts the wire form, checking the time.
func (w *eventWire) event() (Event, *ValidationError) {
	ev := Event{
		Stream: w.Stream, Type: w.Type, Subtypes: w.Subtypes, Action: w.Action, Outcome: w.Outcome,
		OutcomeDesc: w.OutcomeDesc, Patient: w.Patient, Entities: w.Entities, Source: w.Source,
		Purpose: w.Purpose, Details: w.Details,
	}
	if w.ID != nil {
		ev.ID, ev.idSent = *w.ID, true
	}
	if w.Actor != nil {
		ev.Actor = *w.Actor
	}
	if w.Time != nil {
		if err := ev.SetTimeText(*w.Time); err != nil {
			return ev, err.(*ValidationError)
		}
	}
	return ev, nil
}

// SetTimeText sets Time from text, an RFC 3339 time, and keeps the text as
// written: the stored event holds it verbatim (2026-12-07T08:03:00+00:00
// stays so, not 2026-12-07T08:03:00Z), as it holds a time a client sent in
// JSON. Setting Time to another instant afterwards drops the text. The
// error is a *ValidationError for time.
func (ev *Event) SetTimeText(text string) error {
	t, err := ParseTime(text)
	if err != nil {
		return invalid("time", "%q is not an RFC 3339 time such as 2026-11-25T10:00:00Z", text)
	}
	ev.Time, ev.rawTime, ev.rawAt = t, text, t
	return nil
}

// ParseTime parses an RFC 3339 time (with or without a fraction of a
// second). It is time.Parse with time.RFC3339Nano made strict: Go's layout
// takes a one-digit hour ("2026-01-01T1:00:00Z") and a comma before the
// fraction, which RFC 3339 does not.
func ParseTime(text string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, text)
	if err != nil {
		return time.Time{}, err
	}
	if len(text) < len("2006-01-02T15:04:05Z") || text[13] != ':' || strings.Contains(text, ",") ||
		!strings.ContainsAny(text[len(text)-1:], "Zz0123456789") {
		return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time", text)
	}
	return t, nil
}

// sentTime reports whether the time is to be stored as its text.
func (ev *Event) sentTime() bool {
	return ev.rawTime != "" && ev.Time.Equal(ev.rawAt)
}

func decodeError(err error) *ValidationError {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			field = "(event)"
		}
		return invalid(field, "must be a JSON %s, not %s", jsonKind(te.Type.Kind().String()), te.Value)
	}
	return &ValidationError{Field: "(event)", Reason: fmt.Sprintf("malformed JSON: %v", strings.TrimPrefix(err.Error(), "json: "))}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "struct", "ptr", "map":
		return "object"
	case "slice":
		return "array"
	}
	return goKind
}

// MarshalJSON encodes ev as a client sends it: id (when set), stream and the
// client fields in the stored order, as compact JSON. Its length is the
// event's size as sent, which MaxEventSize bounds.
func (ev Event) MarshalJSON() ([]byte, error) {
	return ev.AppendJSON(make([]byte, 0, 256))
}

// AppendJSON appends ev encoded as MarshalJSON does, without allocating
// beyond dst's growth: the remote client encodes batches with it.
func (ev *Event) AppendJSON(dst []byte) ([]byte, error) {
	if err := ev.validateForEncoding(); err != nil {
		return dst, err
	}
	b := append(dst, '{')
	if ev.ID != "" {
		b = appendMember(b, "id", ev.ID, false)
		b = append(b, ',')
	}
	b = appendMember(b, "stream", ev.Stream, false)
	b = append(b, ',')
	b, _ = appendFields(b, ev, false)
	return append(b, '}'), nil
}

// validateForEncoding checks what appendBody relies on: valid UTF-8 strings
// and well-formed details; and that the event has no original, which no
// client may send.
func (ev *Event) validateForEncoding() error {
	var ps problems
	if ev.Original != nil {
		ps.add(invalid("original", "is set only by the server, for events it maps from another format; a client cannot send it"))
	}
	ev.checkStrings(&ps)
	ps.add(checkText("stream", ev.Stream, MaxEventSize))
	ps.add(checkText("type", ev.Type, MaxEventSize))
	checkDetails(&ps, ev.Details)
	return ps.err()
}

// Same reports whether ev is the same event as stored, the event already
// stored with its id (equal after parsing): the test for "the same id sent
// again" (same → first receipt, else conflict). An ev without a time
// matches any stored time. Both must be validated.
func Same(stored, ev *Event) bool {
	a, b := *stored, *ev
	if b.sentTime() || !b.Time.IsZero() {
		if !a.Time.Equal(b.Time) {
			return false
		}
	}
	a.Time, a.rawTime, b.Time, b.rawTime = time.Time{}, "", time.Time{}, ""
	return a.ID == b.ID && sameContent(&a, &b)
}

// sameContent reports whether a and b are the same event after parsing: the
// test for "the same id sent again" (same → first receipt, else conflict).
// An absent outcome equals "success"; a and b must be validated.
func sameContent(a, b *Event) bool {
	ba, _ := appendBody(nil, a)
	bb, _ := appendBody(nil, b)
	if a.Stream != b.Stream {
		return false
	}
	if bytes.Equal(ba, bb) {
		return true
	}
	// Details are a JSON object, whose members have no order: the same
	// details with members in another order are the same event.
	da, db := a.Details, b.Details
	a2, b2 := *a, *b
	a2.Details, b2.Details = nil, nil
	ba, _ = appendBody(nil, &a2)
	bb, _ = appendBody(nil, &b2)
	return bytes.Equal(ba, bb) && sameJSON(da, db)
}

// sameJSON reports whether two valid JSON texts hold the same value
// (numbers compared as written).
func sameJSON(a, b []byte) bool {
	decode := func(d []byte) (any, bool) {
		dec := json.NewDecoder(bytes.NewReader(d))
		dec.UseNumber()
		var v any
		return v, dec.Decode(&v) == nil
	}
	va, oka := decode(a)
	vb, okb := decode(b)
	return oka && okb && reflect.DeepEqual(va, vb)
}
