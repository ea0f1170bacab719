package event_test

// Validation of client events per DESIGN.md "Event" and "Validation": each
// refusal is a *event.ValidationError naming the field to blame, and valid
// edge cases are accepted.

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/trailhq/trail/event"
)

type obj = map[string]any

// baseEvent is a valid event as a client sends it.
func baseEvent() obj {
	return obj{
		"stream": "patient/12345",
		"type":   "patient-record.read",
		"action": "R",
		"actor":  obj{"id": "dr-house"},
	}
}

func eventJSON(t *testing.T, mod func(obj)) []byte {
	t.Helper()
	ev := baseEvent()
	if mod != nil {
		mod(ev)
	}
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func set(k string, v any) func(obj) { return func(o obj) { o[k] = v } }
func del(k string) func(obj)        { return func(o obj) { delete(o, k) } }
func raw(s string) json.RawMessage  { return json.RawMessage(s) }

// detailsOf returns a details object of exactly n bytes as compact JSON.
func detailsOf(n int) json.RawMessage {
	const pre, post = `{"note":"`, `"}`
	return raw(pre + strings.Repeat("d", n-len(pre)-len(post)) + post)
}

// stream256 is a valid stream of exactly 256 bytes.
var stream256 = "patient/" + strings.Repeat("abcdefgh/", 27) + strings.Repeat("x", 256-8-27*9)

func TestValidateRejects(t *testing.T) {
	if len(stream256) != 256 {
		t.Fatalf("stream256 is %d bytes", len(stream256))
	}
	for _, tc := range []struct {
		name  string
		mod   func(obj)
		field string
	}{
		// Required fields.
		{"missing stream", del("stream"), "stream"},
		{"empty stream", set("stream", ""), "stream"},
		{"missing type", del("type"), "type"},
		{"empty type", set("type", ""), "type"},
		{"missing action", del("action"), "action"},
		{"missing actor", del("actor"), "actor.id"},
		{"missing actor.id", set("actor", obj{"name": "House"}), "actor.id"},
		{"empty actor.id", set("actor", obj{"id": ""}), "actor.id"},

		// Streams.
		{"stream empty segment", set("stream", "a//b"), "stream"},
		{"stream leading slash", set("stream", "/a"), "stream"},
		{"stream trailing slash", set("stream", "a/"), "stream"},
		{"stream dot segment", set("stream", "a/./b"), "stream"},
		{"stream dotdot segment", set("stream", "a/../b"), "stream"},
		{"stream dotdot first", set("stream", "../x"), "stream"},
		{"stream dot alone", set("stream", "."), "stream"},
		{"stream reserved trail/", set("stream", "trail/access"), "stream"},
		{"stream reserved trail", set("stream", "trail"), "stream"},
		{"stream 257 bytes", set("stream", stream256+"x"), "stream"},
		{"stream space", set("stream", "patient/1 2"), "stream"},
		{"stream backslash", set("stream", `patient\1`), "stream"},
		{"stream star", set("stream", "patient/*"), "stream"},
		{"stream non-ASCII", set("stream", "patient/ü"), "stream"},
		{"stream newline", set("stream", "patient/1\n"), "stream"},
		{"stream not a string", set("stream", 5), "stream"},

		// Type.
		{"type 129 bytes", set("type", strings.Repeat("t", 129)), "type"},

		// Subtypes.
		{"subtypes not an array", set("subtypes", "DCM|110120"), "subtypes"},
		{"subtypes item not a string", set("subtypes", []any{"a", 5}), "subtypes[1]"},
		{"subtypes item empty", set("subtypes", []any{"a", ""}), "subtypes[1]"},
		{"subtypes item 129 bytes", set("subtypes", []any{strings.Repeat("s", 129)}), "subtypes[0]"},
		{"subtypes 17 codes", set("subtypes", func() []any {
			var s []any
			for i := range 17 {
				s = append(s, fmt.Sprint("DCM|", i))
			}
			return s
		}()), "subtypes"},

		// The original is the server's.
		{"original from a client", set("original", obj{"format": "syslog", "data": "x"}), "original"},

		// Action.
		{"action lower-case", set("action", "r"), "action"},
		{"action unknown", set("action", "X"), "action"},
		{"action two letters", set("action", "CR"), "action"},
		{"action word", set("action", "read"), "action"},
		{"action empty", set("action", ""), "action"},

		// Outcome.
		{"outcome unknown", set("outcome", "failure"), "outcome"},
		{"outcome capitalised", set("outcome", "Success"), "outcome"},

		// Id.
		{"id space", set("id", "a b"), "id"},
		{"id slash", set("id", "a/b"), "id"},
		{"id non-ASCII", set("id", "idé"), "id"},
		{"id 65 bytes", set("id", strings.Repeat("i", 65)), "id"},
		{"id 129 bytes", set("id", strings.Repeat("i", 129)), "id"},
		{"id empty", set("id", ""), "id"},
		{"id underscore", set("id", "a_b"), "id"},
		{"id colon", set("id", "urn:uuid:1"), "id"},
		{"id NUL", set("id", "a\x00b"), "id"},
		{"id not a string", set("id", 7), "id"},

		// Details.
		{"details array", set("details", raw(`[1,2]`)), "details"},
		{"details string", set("details", raw(`"x"`)), "details"},
		{"details number", set("details", raw(`5`)), "details"},
		{"details bool", set("details", raw(`true`)), "details"},
		{"details over 16 KiB", set("details", detailsOf(16<<10+1)), "details"},

		// Time.
		{"time not RFC 3339", set("time", "yesterday"), "time"},
		{"time date only", set("time", "2026-11-25"), "time"},
		{"time without zone", set("time", "2026-11-25T10:00:00"), "time"},
		{"time with space", set("time", "2026-11-25 10:00:00Z"), "time"},
		{"time comma fraction", set("time", "2026-11-25T10:00:00,5Z"), "time"},
		{"time number", set("time", 1764064800), "time"},

		// Entities.
		{"entity without id", set("entities", []any{obj{"type": "Patient"}}), "entities[0].id"},
		{"second entity without id", set("entities", []any{obj{"id": "1"}, obj{"name": "x"}}), "entities[1].id"},

		// Unknown fields, top level and nested.
		{"unknown top-level", set("foo", 1), "foo"},
		{"misspelt top-level", set("patient_id", "1"), "patient_id"},
		{"top-level in other case", set("Stream", "patient/9"), "Stream"},
		{"unknown in actor", set("actor", obj{"id": "dr", "foo": 1}), "actor.foo"},
		{"unknown in source", set("source", obj{"id": "ehr", "bar": "x"}), "source.bar"},
		{"unknown in entity", set("entities", []any{obj{"id": "1", "baz": true}}), "entities[0].baz"},
		{"server field name in actor", set("actor", obj{"id": "dr", "index": 1}), "actor.index"},

		// Server fields.
		{"server index", set("index", 0), "index"},
		{"server stream_seq", set("stream_seq", 1), "stream_seq"},
		{"server recorded", set("recorded", "2026-11-25T10:00:00.000000000Z"), "recorded"},
		{"server prev", set("prev", strings.Repeat("0", 64)), "prev"},
		{"server salt", set("salt", strings.Repeat("0", 32)), "salt"},
		{"server original", set("original", obj{"format": "syslog", "data": "x"}), "original"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := eventJSON(t, tc.mod)
			_, err := event.Parse(b)
			var ve *event.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("ParseEvent(%s) = %v (%T), want a *event.ValidationError for %s", b, err, err, tc.field)
			}
			if ve.Field != tc.field {
				t.Fatalf("ParseEvent(%s): Field %q (%v), want %q", b, ve.Field, ve, tc.field)
			}
			if ve.Reason == "" || !strings.Contains(ve.Error(), ve.Field) {
				t.Fatalf("ParseEvent(%s): error %q does not say what is wrong with %s", b, ve.Error(), ve.Field)
			}
		})
	}
}

// TestValidateMalformed: an event that is not a JSON object, or has a
// member without a name, is refused, and a ValidationError still names what
// is to blame.
func TestValidateMalformed(t *testing.T) {
	for _, in := range []string{`[]`, `5`, `"event"`, `true`, ``, `{`, `{"stream":"a"} {}`, `{"stream":"a"} x`,
		`{"":{}}`, `{"stream":"patient/1","type":"t","action":"R","actor":{"id":"a"},"":1}`, `{"actor":{"":1}}`} {
		_, err := event.Parse([]byte(in))
		if err == nil {
			t.Errorf("ParseEvent(%q): no error", in)
			continue
		}
		var ve *event.ValidationError
		if errors.As(err, &ve) && ve.Field == "" {
			t.Errorf("ParseEvent(%q): ValidationError with an empty Field: %v", in, ve)
		}
	}
}

// TestValidateGoEvents: Event.Validate on Go values names the same fields.
func TestValidateGoEvents(t *testing.T) {
	base := func() event.Event {
		return event.Event{Stream: "patient/1", Type: "t", Action: "R", Actor: event.Actor{ID: "dr"}}
	}
	for _, tc := range []struct {
		name  string
		mod   func(*event.Event)
		field string
	}{
		{"stream", func(e *event.Event) { e.Stream = "a//b" }, "stream"},
		{"reserved", func(e *event.Event) { e.Stream = "trail/x" }, "stream"},
		{"type", func(e *event.Event) { e.Type = "" }, "type"},
		{"action", func(e *event.Event) { e.Action = "r" }, "action"},
		{"outcome", func(e *event.Event) { e.Outcome = "ok" }, "outcome"},
		{"actor.id", func(e *event.Event) { e.Actor.ID = "" }, "actor.id"},
		{"id", func(e *event.Event) { e.ID = "a b" }, "id"},
		{"details", func(e *event.Event) { e.Details = raw(`[]`) }, "details"},
		{"details invalid JSON", func(e *event.Event) { e.Details = raw(`{"a":`) }, "details"},
		{"details big", func(e *event.Event) { e.Details = detailsOf(16<<10 + 1) }, "details"},
		{"entities[0].id", func(e *event.Event) { e.Entities = []event.Entity{{Name: "x"}} }, "entities[0].id"},
		{"actor.name UTF-8", func(e *event.Event) { e.Actor.Name = "\xff" }, "actor.name"},
		{"patient UTF-8", func(e *event.Event) { e.Patient = "a\xc3" }, "patient"},
		{"source.site UTF-8", func(e *event.Event) { e.Source = &event.Source{Site: "\xfe"} }, "source.site"},
		{"subtypes[0] UTF-8", func(e *event.Event) { e.Subtypes = []string{"\xff"} }, "subtypes[0]"},
		{"original.format", func(e *event.Event) { e.Original = &event.Original{Format: "xml", Data: []byte("<a/>")} }, "original.format"},
		{"original.data", func(e *event.Event) {
			e.Original = &event.Original{Format: event.OriginalSyslog, Data: make([]byte, event.MaxOriginalSize+1)}
		}, "original.data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := base()
			if err := ev.Validate(); err != nil {
				t.Fatalf("base event: %v", err)
			}
			tc.mod(&ev)
			var ve *event.ValidationError
			if err := ev.Validate(); !errors.As(err, &ve) || ve.Field != tc.field {
				t.Fatalf("Validate() = %v, want a ValidationError for %q", err, tc.field)
			}
		})
	}
}

func TestValidateAccepts(t *testing.T) {
	full := func(o obj) {
		o["id"] = "5b4c1f0e-1111-7a4a-8b8b-000000000000"
		o["time"] = "2026-11-25T10:00:00.123456789+01:00"
		o["outcome"] = "serious-failure"
		o["outcome_desc"] = "denied: \"no grant\" <403> & more\n\ttab — ü \u2028"
		o["actor"] = obj{"id": "dr-house", "name": "Gregory House", "role": "physician", "address": "10.0.0.7", "user_agent": "Mozilla/5.0"}
		o["patient"] = "12345"
		o["entities"] = []any{obj{"type": "Patient", "id": "12345", "role": "subject", "name": "John"}, obj{"id": "obs/7"}}
		o["source"] = obj{"id": "ehr-1", "site": "north", "type": "4"}
		o["purpose"] = "treatment"
		o["details"] = raw(`{"reason":"follow-up","codes":[1,2,3],"nested":{"ok":true,"none":null}}`)
	}
	for _, tc := range []struct {
		name string
		mod  func(obj)
	}{
		{"minimal", nil},
		{"every field", full},
		{"stream 256 bytes", set("stream", stream256)},
		{"stream one byte", set("stream", "p")},
		{"stream every allowed byte", set("stream", "ABCXYZabcxyz0189._:-/a.b/...")},
		{"stream under trail-", set("stream", "trails/x")},
		{"stream trail deeper", set("stream", "x/trail/y")},
		{"id 64 bytes", set("id", strings.Repeat("i", 64))},
		{"id one byte", set("id", "i")},
		{"id every allowed byte", set("id", "ABCXYZabcxyz0189.-")},
		{"id UUIDv7 (assigned by Trail)", set("id", "019af3b2-5c1e-7a4a-8b8b-000000000007")},
		{"id UUIDv8 (assigned by the Go client)", set("id", "019af3b2-5c1e-8a4a-9b8b-0123456789ab")},
		{"type 128 bytes", set("type", strings.Repeat("t", 128))},
		{"details 16 KiB exactly", set("details", detailsOf(16<<10))},
		{"details empty object", set("details", raw(`{}`))},
		{"details null", set("details", raw(`null`))},
		{"details spaced", set("details", raw(` { "a" : [ 1 , 2 ] } `))},
		{"action C", set("action", "C")},
		{"action U", set("action", "U")},
		{"action D", set("action", "D")},
		{"action E", set("action", "E")},
		{"outcome success", set("outcome", "success")},
		{"outcome minor-failure", set("outcome", "minor-failure")},
		{"outcome major-failure", set("outcome", "major-failure")},
		{"time Z", set("time", "2026-11-25T10:00:00Z")},
		{"time offset", set("time", "2026-11-25T10:00:00-08:00")},
		{"time nanoseconds", set("time", "2026-11-25T10:00:00.123456789Z")},
		{"unicode everywhere", func(o obj) {
			o["actor"] = obj{"id": "Łukasz 🩺", "name": "\u00e9\u0301"}
			o["patient"] = "患者-42"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := eventJSON(t, tc.mod)
			ev, err := event.Parse(b)
			if err != nil {
				t.Fatalf("ParseEvent(%s): %v", b, err)
			}
			if err := ev.Validate(); err != nil {
				t.Fatalf("Validate after ParseEvent(%s): %v", b, err)
			}
		})
	}
}

// TestValidateStrings: a string that is not valid UTF-8, holds NUL (escaped;
// a raw NUL byte is not JSON at all) or a lone surrogate is refused in every
// member, inside details (values and member names) and in member names,
// never replaced with U+FFFD; the problem names the member.
func TestValidateStrings(t *testing.T) {
	// Each template is a valid event with %s where a string's content goes.
	templates := map[string]string{
		"id":               `{"id":"a%sb","stream":"p/1","type":"t","action":"R","actor":{"id":"a"}}`,
		"stream":           `{"stream":"p/x%s","type":"t","action":"R","actor":{"id":"a"}}`,
		"time":             `{"stream":"p/1","time":"2026-11-25T10:00:00Z%s","type":"t","action":"R","actor":{"id":"a"}}`,
		"type":             `{"stream":"p/1","type":"t%s","action":"R","actor":{"id":"a"}}`,
		"action":           `{"stream":"p/1","type":"t","action":"R%s","actor":{"id":"a"}}`,
		"outcome":          `{"stream":"p/1","type":"t","action":"R","outcome":"success%s","actor":{"id":"a"}}`,
		"outcome_desc":     `{"stream":"p/1","type":"t","action":"R","outcome_desc":"x%sy","actor":{"id":"a"}}`,
		"actor.id":         `{"stream":"p/1","type":"t","action":"R","actor":{"id":"a%s"}}`,
		"actor.name":       `{"stream":"p/1","type":"t","action":"R","actor":{"id":"a","name":"%s"}}`,
		"actor.role":       `{"stream":"p/1","type":"t","action":"R","actor":{"id":"a","role":"%s"}}`,
		"actor.address":    `{"stream":"p/1","type":"t","action":"R","actor":{"id":"a","address":"%s"}}`,
		"actor.user_agent": `{"stream":"p/1","type":"t","action":"R","actor":{"id":"a","user_agent":"%s"}}`,
		"patient":          `{"stream":"p/1","type":"t","action":"R","actor":{"id":"a"},"patient":"1%s"}`,
		"entities[0].type": `{"stream":"p/1","type":"t","action":"R","actor":{"id":"a"},"entities":[{"id":"1","type":"%s"}]}`,
		"entities[1].id":   `{"stream":"p/1","type":"t","action":"R","actor":{"id":"a"},"entities":[{"id":"1"},{"id":"e%s"}]}`,
		"entities[0].role": `{"stream":"p/1","type":"t","action":"R","actor":{"id":"a"},"entities":[{"id":"1","role":"%s"}]}`,
		"entities[0].name": `{"stream":"p/1","type":"t","action":"R","actor":{"id":"a"},"entities":[{"id":"1","name":"%s"}]}`,
		"source.id":        `{"stream":"p/1","type":"t","action":"R","actor":{"id":"a"},"source":{"id":"%s"}}`,
		"source.site":      `{"stream":"p/1","type":"t","action":"R","actor":{"id":"a"},"source":{"site":"%s"}}`,
		"source.type":      `{"stream":"p/1","type":"t","action":"R","actor":{"id":"a"},"source":{"type":"%s"}}`,
		"purpose":          `{"stream":"p/1","type":"t","action":"R","actor":{"id":"a"},"purpose":"%s"}`,
		"details.note":     `{"stream":"p/1","type":"t","action":"R","actor":{"id":"a"},"details":{"note":"%s"}}`,
		"details.a.b[1]":   `{"stream":"p/1","type":"t","action":"R","actor":{"id":"a"},"details":{"a":{"b":[1,"%s"]}}}`,
		"details":          `{"stream":"p/1","type":"t","action":"R","actor":{"id":"a"},"details":{"k%s":1}}`,
		"(event)":          `{"stream":"p/1","type":"t","action":"R","actor":{"id":"a"},"x%s":1}`,
	}
	bad := map[string]string{
		"invalid UTF-8":           "\xff",
		"truncated UTF-8":         "\xc3",
		"UTF-8 encoded surrogate": "\xed\xa0\x80",
		"escaped NUL":             `\u0000`,
		"lone high surrogate":     `\ud800`,
		"lone low surrogate":      `\udc00`,
		"reversed surrogates":     `\udc00\ud800`,
		"high then not low":       `\ud800\u0041`,
	}
	for field, tmpl := range templates {
		if _, err := event.Parse([]byte(fmt.Sprintf(tmpl, ""))); err != nil && field != "(event)" {
			t.Fatalf("template for %s is not a valid event: %v", field, err)
		}
		for name, s := range bad {
			data := []byte(fmt.Sprintf(tmpl, s))
			_, err := event.Parse(data)
			var ie *event.InvalidEventError
			if !errors.As(err, &ie) {
				t.Errorf("%s with %s: ParseEvent(%q) = %v, want an InvalidEventError", field, name, data, err)
				continue
			}
			if !slices.ContainsFunc(ie.Problems, func(p *event.ValidationError) bool { return p.Field == field }) {
				t.Errorf("%s with %s: ParseEvent(%q) = %v, want a problem for %s", field, name, data, err, field)
			}
			var ev event.Event
			// Decoding refuses it too, but for details, which Validate checks.
			if err := ev.UnmarshalJSON(data); err == nil && field != "details" && !strings.HasPrefix(field, "details.") {
				t.Errorf("%s with %s: UnmarshalJSON(%q) accepted it", field, name, data)
			}
		}
		// A raw NUL byte is not JSON.
		data := []byte(fmt.Sprintf(tmpl, "\x00"))
		if _, err := event.Parse(data); err == nil {
			t.Errorf("%s with a raw NUL: ParseEvent(%q) accepted it", field, data)
		}
	}
	// A surrogate pair, U+FFFD itself and other escapes are fine.
	for _, s := range []string{`\ud83e\ude7a`, `\ufffd`, "\xef\xbf\xbd", `\u0001`, `\b\f\n\r\t\"\\\/`, `\u00e9`} {
		for _, field := range []string{"outcome_desc", "actor.name", "details.note", "entities[0].name"} {
			data := []byte(fmt.Sprintf(templates[field], s))
			if _, err := event.Parse(data); err != nil {
				t.Errorf("%s with %s: ParseEvent(%q) = %v", field, s, data, err)
			}
		}
	}
}

// TestValidateGoStrings: Validate holds Go strings to the same rule: valid
// UTF-8 (surrogates are not), no NUL; in details too.
func TestValidateGoStrings(t *testing.T) {
	for _, s := range []string{"\xff", "a\x00b", "\xed\xa0\x80"} {
		for field, set := range map[string]func(*event.Event){
			"outcome_desc":     func(e *event.Event) { e.OutcomeDesc = s },
			"actor.id":         func(e *event.Event) { e.Actor.ID = s },
			"actor.user_agent": func(e *event.Event) { e.Actor.UserAgent = s },
			"patient":          func(e *event.Event) { e.Patient = s },
			"purpose":          func(e *event.Event) { e.Purpose = s },
			"type":             func(e *event.Event) { e.Type = s },
			"source.type":      func(e *event.Event) { e.Source = &event.Source{Type: s} },
			"entities[0].role": func(e *event.Event) { e.Entities = []event.Entity{{ID: "1", Role: s}} },
			"details.k":        func(e *event.Event) { e.Details = raw(`{"k":"` + strings.ReplaceAll(s, "\x00", `\u0000`) + `"}`) },
		} {
			ev := event.Event{Stream: "patient/1", Type: "t", Action: "R", Actor: event.Actor{ID: "dr"}}
			set(&ev)
			var ve *event.ValidationError
			if err := ev.Validate(); !errors.As(err, &ve) || ve.Field != field {
				t.Errorf("%s = %q: Validate() = %v, want a problem for %s", field, s, err, field)
			}
			if _, err := ev.MarshalJSON(); err == nil {
				t.Errorf("%s = %q: MarshalJSON accepted it", field, s)
			}
		}
	}
}

// TestValidateListsAllProblems: every problem of an event is listed, each
// with its field, in ParseEvent, UnmarshalJSON (what decoding finds) and
// Validate, and errors.As still finds the first.
func TestValidateListsAllProblems(t *testing.T) {
	for _, tc := range []struct {
		in     string
		fields []string
	}{
		{`{"type":"t","action":"read","actor":{"id":"a"},"foo":1}`, []string{"foo", "stream", "action"}},
		{`{"id":"","stream":"a//b","type":"","action":"R","actor":{"id":"a","x":1},"salt":"00","entities":[{"name":"n"}],"details":[1]}`,
			[]string{"actor.x", "salt", "id", "stream", "type", "entities[0].id", "details"}},
		{`{"stream":5,"type":true,"action":"R","actor":[],"source":"s","entities":{},"time":"noon","outcome_desc":"\u0000"}`,
			[]string{"outcome_desc", "stream", "type", "actor", "source", "entities", "time"}},
		{`{"stream":"p/1","stream":"p/2","Type":"t","action":"R","actor":{"id":"a","id":"b"}}`,
			[]string{"stream", "Type", "actor.id"}},
		{`{"stream":"p/1","type":"t","action":"R","actor":{"id":"a"},"a\u0000":1,"b\ud800":2}`,
			[]string{"(event)", "(event)", "a\x00", "b\ufffd"}},
	} {
		_, err := event.Parse([]byte(tc.in))
		var ie *event.InvalidEventError
		if !errors.As(err, &ie) {
			t.Errorf("ParseEvent(%s) = %v, want an InvalidEventError", tc.in, err)
			continue
		}
		var got []string
		for _, p := range ie.Problems {
			got = append(got, p.Field)
			if p.Reason == "" || !strings.Contains(err.Error(), p.Field+": "+p.Reason) {
				t.Errorf("ParseEvent(%s): problem %s %q missing from the message %q", tc.in, p.Field, p.Reason, err)
			}
		}
		slices.Sort(got)
		want := slices.Sorted(slices.Values(tc.fields))
		if !slices.Equal(got, want) {
			t.Errorf("ParseEvent(%s) lists %v, want %v (%v)", tc.in, got, want, err)
		}
		var ve *event.ValidationError
		if !errors.As(err, &ve) || ve != ie.Problems[0] {
			t.Errorf("errors.As does not find the first problem of %v", err)
		}
	}
	ev := event.Event{Stream: "trail/x", Action: "r", Outcome: "ok", Details: raw(`{"a":"\u0000"}`)}
	err := ev.Validate()
	var ie *event.InvalidEventError
	if !errors.As(err, &ie) || len(ie.Problems) != 6 {
		t.Fatalf("Validate() = %v, want six problems: stream, type, action, outcome, actor.id, details.a", err)
	}
}
