package trail

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

// ParseEvent decodes one event sent by a client and validates it. Unknown
// fields are rejected at every level but inside details, and so are the
// fields the server assigns. Errors are *ValidationError where a field is to
// blame.
func ParseEvent(data []byte) (Event, error) {
	var ev Event
	if err := ev.UnmarshalJSON(data); err != nil {
		return Event{}, err
	}
	return ev, ev.Validate()
}

// UnmarshalJSON decodes an event, rejecting unknown and server-assigned
// fields, and keeps a given time exactly as sent.
func (ev *Event) UnmarshalJSON(data []byte) error {
	var e Event
	var err error
	if w, ok := parseFast(data); ok {
		e, err = w.event()
	} else {
		e, err = parseSlow(data)
	}
	if err != nil {
		return err
	}
	*ev = e
	return nil
}

// parseSlow decodes an event with encoding/json and names what is wrong.
func parseSlow(data []byte) (Event, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var w eventWire
	if err := dec.Decode(&w); err != nil {
		if strings.HasPrefix(err.Error(), "json: unknown field ") {
			// Name the member with its path (actor.foo, entities[2].bar).
			var ve *ValidationError
			if merr := checkMembers(data); errors.As(merr, &ve) {
				return Event{}, ve
			}
		}
		return Event{}, decodeError(err)
	}
	// Only whitespace may follow (dec.More is false before a stray '}').
	if len(bytes.TrimSpace(data[dec.InputOffset():])) > 0 {
		return Event{}, &ValidationError{Field: "(event)", Reason: "unexpected data after the JSON object"}
	}
	if err := checkMembers(data); err != nil {
		return Event{}, err
	}
	return w.event()
}

// event converts the wire form, checking the time.
func (w *eventWire) event() (Event, error) {
	ev := Event{
		Stream: w.Stream, Type: w.Type, Action: w.Action, Outcome: w.Outcome,
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
		t, err := time.Parse(time.RFC3339Nano, *w.Time)
		if err != nil || strings.Contains(*w.Time, ",") || !strings.ContainsAny((*w.Time)[len(*w.Time)-1:], "Zz0123456789") {
			return Event{}, invalid("time", "%q is not an RFC 3339 time such as 2026-11-25T10:00:00Z", *w.Time)
		}
		ev.Time, ev.rawTime = t, *w.Time
	}
	return ev, nil
}

func decodeError(err error) error {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, `json: unknown field "`); ok {
		name = strings.TrimSuffix(name, `"`)
		if serverFields[name] {
			return invalid(name, "is assigned by the server; do not send it")
		}
		return invalid(name, "unknown field (check its spelling against the v1 event schema)")
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			field = "(event)"
		}
		return invalid(field, "must be a JSON %s, not %s", jsonKind(te.Type.Kind().String()), te.Value)
	}
	return &ValidationError{Field: "(event)", Reason: fmt.Sprintf("malformed JSON: %v", strings.TrimPrefix(msg, "json: "))}
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
// client fields in the stored order.
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
	b, _ = appendBody(b, ev)
	return append(b, '}'), nil
}

// validateForEncoding checks what appendBody relies on: valid UTF-8 strings
// and well-formed details.
func (ev *Event) validateForEncoding() error {
	if err := ev.validateStrings(); err != nil {
		return err
	}
	if err := checkText("stream", ev.Stream, MaxEventSize); err != nil {
		return err
	}
	if err := checkText("type", ev.Type, MaxEventSize); err != nil {
		return err
	}
	return validateDetails(ev.Details)
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
