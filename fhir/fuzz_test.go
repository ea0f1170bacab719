package fhir_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/fhir"
	"github.com/trailhq/trail/internal/fhirschema"
)

// FuzzDecode: Decode never panics; what it accepts is a valid event (under
// any id Trail may give it) whose view is the resource as sent (id and
// meta apart), and decoding the view gives the same event again.
func FuzzDecode(f *testing.F) {
	f.Add(readSample(f))
	f.Add([]byte(`{"resourceType":"AuditEvent","type":{"code":"x"},"action":"E","recorded":"2026-01-01T00:00:00Z","agent":[{"requestor":true,"who":{"reference":"Practitioner/1"}}],"source":{"observer":{"display":"s"}}}`))
	f.Add([]byte(`{"resourceType":"AuditEvent","type":{"code":"x"},"action":"C","recorded":"2026-01-01T00:00:00.1+14:00","agent":[{"requestor":false,"altId":"a"}],"source":{"observer":{"identifier":{"value":"a/b"}}},"entity":[{"what":{"identifier":{"system":"urn:oid:1.2","value":"7"}},"type":{"system":"http://terminology.hl7.org/CodeSystem/audit-entity-type","code":"1"},"role":{"system":"http://terminology.hl7.org/CodeSystem/object-role","code":"1"}}]}`))
	f.Add([]byte(`{"resourceType":"AuditEvent","recorded":"2026-13-01T00:00:60Z"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := fhir.Decode(data)
		if err != nil {
			return
		}
		if ev.Original == nil || string(ev.Original.Data) != string(data) {
			t.Fatal("original not kept")
		}
		if trail.ValidateStream(ev.Stream) != nil {
			t.Fatalf("stream %q", ev.Stream)
		}
		se := stored(ev, "fuzz-1")
		if err := se.Event.Validate(); err != nil {
			t.Fatalf("accepted an invalid event: %v", err)
		}
		view, err := fhir.View(se, fhir.ViewOptions{Observer: "trail"})
		if err != nil {
			t.Fatalf("no view: %v", err)
		}
		if !fhir.SameResource(view, data) {
			t.Fatalf("view is not the resource sent:\n%s\n%s", view, data)
		}
		again, err := fhir.Decode(view)
		if err != nil {
			t.Fatalf("view not accepted: %v\n%s", err, view)
		}
		if !again.Time.Equal(ev.Time) {
			t.Fatalf("time %v, then %v", ev.Time, again.Time)
		}
		if d := cmp.Diff(ev, again, cmpopts.IgnoreUnexported(trail.Event{}), cmpopts.IgnoreFields(trail.Event{}, "Time", "Original")); d != "" {
			t.Fatalf("decoding the view changes the event:\n%s", d)
		}
	})
}

// FuzzView: whatever strings a valid event holds, its AuditEvent view is
// valid against the official R4 schema.
func FuzzView(f *testing.F) {
	sc := fhirschema.Load(f)
	f.Add("dicom:110110", "DCM|110112", "dr.who", "Dr\fWho", "SNOMED-CT|224535009", "10.0.0.1", "12345^^^&1.2.3&ISO",
		"audit-entity-type|2", "doc 1", "object-role|3", "Letter\u00a0A", "ehr", "4", "treatment", "ok")
	f.Add("a  b", "|", " ", "\u2028", "x| y", "::1", "p1", "participant", "n", "", "", "", "x|", "emergency", "\v")
	f.Fuzz(func(t *testing.T, typ, sub, id, name, role, addr, patient, etype, eid, erole, ename, src, stype, purpose, desc string) {
		ev := trail.Event{Stream: "patient/x", Type: typ, Action: "R", OutcomeDesc: desc,
			Actor:   trail.Actor{ID: id, Name: name, Role: role, Address: addr},
			Patient: patient, Entities: []trail.Entity{{Type: etype, ID: eid, Role: erole, Name: ename}},
			Source: &trail.Source{ID: src, Type: stype}, Purpose: purpose}
		if sub != "" {
			ev.Subtypes = []string{sub}
		}
		se := stored(ev, "v-1")
		se.Time = time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
		if se.Event.Validate() != nil {
			return
		}
		view, err := fhir.View(se, fhir.ViewOptions{Observer: "trail/o"})
		if err != nil {
			t.Fatal(err)
		}
		if err := sc.ValidateAs("AuditEvent", view); err != nil {
			t.Fatalf("view of a valid event is not valid R4: %v\n%s", err, view)
		}
	})
}
