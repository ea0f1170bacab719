package fhir_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/atna"
	"github.com/trailhq/trail/fhir"
	"github.com/trailhq/trail/internal/fhirschema"
)

// TestSchemaNotVacuous: the schema the tests validate against refuses what
// R4 refuses (an unknown element, a wrong type, a bad instant, a missing
// required element), so a passing check means something.
func TestSchemaNotVacuous(t *testing.T) {
	sc := fhirschema.Load(t)
	good := readSample(t)
	if err := sc.Validate(good); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]byte{
		mutate(t, func(m map[string]any) { m["bogus"] = 1 }),
		mutate(t, func(m map[string]any) { m["outcome"] = 4 }),
		mutate(t, func(m map[string]any) { m["recorded"] = "yesterday" }),
		mutate(t, func(m map[string]any) { delete(m, "source") }),
		mutate(t, func(m map[string]any) { agent(m, 0)["requestor"] = "no" }),
	} {
		if sc.Validate(bad) == nil {
			t.Errorf("schema accepts %s", bad)
		}
	}
}

func viewOf(t *testing.T, se *trail.StoredEvent) (json.RawMessage, *fhir.AuditEvent) {
	t.Helper()
	b, err := fhir.View(se, fhir.ViewOptions{Observer: "trail/abc"})
	if err != nil {
		t.Fatal(err)
	}
	var ae fhir.AuditEvent
	if err := json.Unmarshal(b, &ae); err != nil {
		t.Fatal(err)
	}
	return b, &ae
}

// TestViewNative: a native event reads as a valid R4 AuditEvent mapped
// element by element as the contract says.
func TestViewNative(t *testing.T) {
	sc := fhirschema.Load(t)
	tm := time.Date(2026, 12, 7, 10, 0, 0, 5e8, time.FixedZone("", 3600))
	ev := trail.Event{
		Stream: "patient/12345", Time: tm, Type: "patient-record.read", Subtypes: []string{"DCM|110110", "local code"},
		Action: "R", Outcome: trail.OutcomeSeriousFailure, OutcomeDesc: "timeout",
		Actor:   trail.Actor{ID: "dr.who", Name: "Dr Who", Role: "physician", Address: "10.0.0.1", UserAgent: "app/1"},
		Patient: "12345",
		Entities: []trail.Entity{
			{Type: "document", ID: "doc-1", Role: "object-role|3", Name: "Discharge letter"},
			{Type: "participant", ID: "nurse.n", Role: "SNOMED-CT|224535009", Name: "Nurse N"},
			{Type: "lab  result", ID: "x y"},
		},
		Source:  &trail.Source{ID: "ehr", Site: "North", Type: "4"},
		Purpose: "treatment",
	}
	b, ae := viewOf(t, stored(ev, "ev-1"))
	sc.Check(t, "AuditEvent", b)
	yes, no := true, false
	want := &fhir.AuditEvent{
		ResourceType: "AuditEvent", ID: "ev-1",
		Meta:    &fhir.Meta{VersionID: "1", LastUpdated: "2026-12-07T08:15:03.000000001Z"},
		Type:    &fhir.Coding{Code: "patient-record.read"},
		Subtype: []fhir.Coding{{System: fhir.SystemDCM, Code: "110110", Display: "Patient Record"}, {Code: "local code"}},
		Action:  "R", Recorded: "2026-12-07T10:00:00.5+01:00", Outcome: "8", OutcomeDesc: "timeout",
		Agent: []fhir.Agent{
			{Who: &fhir.Reference{Identifier: &fhir.Identifier{Value: "dr.who"}}, Name: "Dr Who", Requestor: &yes,
				Role:         []fhir.CodeableConcept{{Coding: []fhir.Coding{{Code: "physician"}}}},
				Network:      &fhir.Network{Address: "10.0.0.1", Type: "2"},
				PurposeOfUse: []fhir.CodeableConcept{{Coding: []fhir.Coding{{System: fhir.SystemActReason, Code: "TREAT"}}}}},
			{Who: &fhir.Reference{Identifier: &fhir.Identifier{Value: "nurse.n"}}, Name: "Nurse N", Requestor: &no,
				Role: []fhir.CodeableConcept{{Coding: []fhir.Coding{{System: fhir.SystemSNOMED, Code: "224535009"}}}}},
		},
		Source: &fhir.Source{Site: "North", Observer: &fhir.Reference{Identifier: &fhir.Identifier{Value: "ehr"}}, Type: []fhir.Coding{{Code: "4"}}},
		Entity: []fhir.Entity{
			{What: &fhir.Reference{Reference: "Patient/12345"}, Type: &fhir.Coding{System: fhir.SystemEntityType, Code: "1", Display: "Person"},
				Role: &fhir.Coding{System: fhir.SystemObjectRole, Code: "1", Display: "Patient"}},
			{What: &fhir.Reference{Identifier: &fhir.Identifier{Value: "doc-1"}}, Type: &fhir.Coding{Code: "document"},
				Role: &fhir.Coding{System: fhir.SystemObjectRole, Code: "3"}, Name: "Discharge letter"},
			{What: &fhir.Reference{Identifier: &fhir.Identifier{Value: "x y"}}, Type: &fhir.Coding{Display: "lab  result"}},
		},
	}
	if d := cmp.Diff(want, ae); d != "" {
		t.Errorf("view (-want +got):\n%s", d)
	}
	// Without a source, Trail observes; a name that is no IP is a machine.
	ev.Source, ev.Actor.Address = nil, "ward-pc-7"
	b, ae = viewOf(t, stored(ev, "ev-2"))
	sc.Check(t, "AuditEvent", b)
	if ae.Source.Observer.Identifier.Value != "trail/abc" || ae.Agent[0].Network.Type != "1" {
		t.Errorf("source %+v network %+v", ae.Source.Observer, ae.Agent[0].Network)
	}
}

// TestViewReadRecord: Trail's read records read as DICOM 110101 Audit Log
// Used, with the query they record as an entity.
func TestViewReadRecord(t *testing.T) {
	sc := fhirschema.Load(t)
	ev := trail.Event{Stream: "trail/access", Time: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC), Type: "audit-log.read", Action: "R",
		Outcome: trail.OutcomeMinorFailure, Actor: trail.Actor{ID: "clinician", Address: "127.0.0.1", UserAgent: "curl"}, Patient: "p1",
		Details: json.RawMessage(`{"endpoint":"GET /fhir/AuditEvent","params":{"patient":"Patient/p1","_count":"5"},"count":0}`)}
	b, ae := viewOf(t, stored(ev, "r-1"))
	sc.Check(t, "AuditEvent", b)
	if ae.Type.System != fhir.SystemDCM || ae.Type.Code != "110101" || ae.Type.Display != "Audit Log Used" || ae.Outcome != "4" {
		t.Errorf("type %+v outcome %s", ae.Type, ae.Outcome)
	}
	q := ae.Entity[len(ae.Entity)-1]
	if q.Role.Code != "24" || q.Description != "GET /fhir/AuditEvent" ||
		!slices.Contains(q.Detail, fhir.Detail{Type: "patient", ValueString: "Patient/p1"}) ||
		!slices.Contains(q.Detail, fhir.Detail{Type: "count", ValueString: "0"}) {
		t.Errorf("query entity %+v", q)
	}
	if ae.Entity[0].What.Reference != "Patient/p1" {
		t.Errorf("patient entity %+v", ae.Entity[0])
	}
}

// TestATNARoundTrip: every DICOM AuditMessage sample maps to an event whose
// AuditEvent view is valid R4 and keeps every mapped element: decoding the
// view gives the same event back (the stream apart, which for events
// without a patient is atna/… and fhir/…).
func TestATNARoundTrip(t *testing.T) {
	sc := fhirschema.Load(t)
	files, _ := filepath.Glob("../atna/testdata/*.xml")
	if len(files) < 10 {
		t.Fatalf("only %d samples", len(files))
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".xml"), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			msg, err := atna.Parse(data)
			if err != nil {
				t.Skipf("not a mappable sample: %v", err)
			}
			mp, err := atna.Map(msg)
			if err != nil {
				t.Skipf("not a mappable sample: %v", err)
			}
			ev := mp.Event
			if ev.Time.IsZero() {
				ev.Time = time.Date(2026, 12, 7, 8, 15, 3, 1, time.UTC)
			}
			b, _ := viewOf(t, stored(ev, "a-1"))
			sc.Check(t, "AuditEvent", b)
			back, err := fhir.Decode(b)
			if err != nil {
				t.Fatalf("view not decodable: %v\n%s", err, b)
			}
			if !back.Time.Equal(ev.Time) {
				t.Errorf("time %v, want %v", back.Time, ev.Time)
			}
			norm := func(e trail.Event) trail.Event {
				e.ID, e.Stream, e.Time, e.Original = "", "", time.Time{}, nil
				if e.Outcome == "" {
					e.Outcome = trail.OutcomeSuccess
				}
				slices.SortFunc(e.Entities, func(a, b trail.Entity) int { return strings.Compare(a.Type+a.ID+a.Role, b.Type+b.ID+b.Role) })
				if e.Source != nil && e.Source.ID == "" {
					e.Source.ID = "trail/abc"
				}
				return e
			}
			if d := cmp.Diff(norm(ev), norm(back), cmpopts.IgnoreUnexported(trail.Event{})); d != "" {
				t.Errorf("mapped elements lost (-event +from view):\n%s\nview: %s", d, b)
			}
			if ev.Patient != "" && back.Stream != ev.Stream {
				t.Errorf("stream %q, atna's %q: one patient, one stream", back.Stream, ev.Stream)
			}
		})
	}
}
