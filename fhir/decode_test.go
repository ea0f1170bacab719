package fhir_test

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/fhir"
	"github.com/trailhq/trail/internal/fhirschema"
)

func readSample(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/balp-read.json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// stored is ev as the engine would store it under id.
func stored(ev trail.Event, id string) *trail.StoredEvent {
	ev.ID = id
	return &trail.StoredEvent{Event: ev, Index: 7, StreamSeq: 1, Recorded: "2026-12-07T08:15:03.000000001Z"}
}

// TestDecodeSample: a BALP-style AuditEvent maps to the event the package
// doc describes, and its view is the resource as sent apart from id and
// meta (unknown and unmapped elements included), valid against the R4
// schema.
func TestDecodeSample(t *testing.T) {
	sc := fhirschema.Load(t)
	data := readSample(t)
	sc.Check(t, "AuditEvent", data)
	ev, err := fhir.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	want := trail.Event{
		Stream: "patient/ex-123", Type: "http://terminology.hl7.org/CodeSystem/audit-event-type|rest",
		Subtypes: []string{"http://hl7.org/fhir/restful-interaction|read"},
		Action:   "R", Outcome: trail.OutcomeMinorFailure, OutcomeDesc: "partly shown",
		Actor:   trail.Actor{ID: "nurse.ratched", Name: "Mildred Ratched", Role: "SNOMED-CT|224535009", Address: "10.1.6.2"},
		Patient: "ex-123",
		Entities: []trail.Entity{
			{Type: "participant", ID: "Device/ehr-1"},
			{Type: "audit-entity-type|1", ID: "ex-123", Role: "object-role|1"},
			{Type: "audit-entity-type|2", ID: "acc-77", Role: "object-role|4"},
		},
		Source:  &trail.Source{ID: "ehr-1", Site: "Northside Hospital", Type: "security-source-type|4"},
		Purpose: "treatment",
	}
	if !ev.Time.Equal(time.Date(2026, 12, 7, 8, 15, 2, 120e6, time.UTC)) {
		t.Errorf("time %v", ev.Time)
	}
	if ev.Original == nil || ev.Original.Format != trail.OriginalFHIR || string(ev.Original.Data) != string(data) {
		t.Fatalf("original not kept verbatim: %+v", ev.Original)
	}
	got := ev
	got.Time, got.Original = time.Time{}, nil
	if d := cmp.Diff(want, got, cmpopts.IgnoreUnexported(trail.Event{})); d != "" {
		t.Errorf("event (-want +got):\n%s", d)
	}
	if err := ev.Validate(); err != nil {
		t.Fatal(err)
	}
	se := stored(ev, "e-1")
	view, err := fhir.View(se, fhir.ViewOptions{Observer: "trail"})
	if err != nil {
		t.Fatal(err)
	}
	sc.Check(t, "AuditEvent", view)
	if !fhir.SameResource(view, data) {
		t.Errorf("view differs from the resource sent:\n%s\n%s", view, data)
	}
	var v struct {
		ID   string `json:"id"`
		Meta struct {
			VersionID   string   `json:"versionId"`
			LastUpdated string   `json:"lastUpdated"`
			Profile     []string `json:"profile"`
		} `json:"meta"`
	}
	json.Unmarshal(view, &v)
	if v.ID != "e-1" || v.Meta.VersionID != "1" || v.Meta.LastUpdated != se.Recorded || len(v.Meta.Profile) != 1 {
		t.Errorf("id and meta: %+v", v)
	}
}

// mutate returns the sample with f applied to it as a JSON object.
func mutate(t *testing.T, f func(m map[string]any)) []byte {
	var m map[string]any
	if err := json.Unmarshal(readSample(t), &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	b, _ := json.Marshal(m)
	return b
}

func agent(m map[string]any, i int) map[string]any { return m["agent"].([]any)[i].(map[string]any) }

// TestDecodeInvalid: each required element missing, and each code outside
// its value set, is refused with an issue naming the element; the
// OperationOutcome is valid R4.
func TestDecodeInvalid(t *testing.T) {
	sc := fhirschema.Load(t)
	cases := []struct {
		name, expr, code string
		data             func(t *testing.T) []byte
	}{
		{"no type", "AuditEvent.type", "required", func(t *testing.T) []byte { return mutate(t, func(m map[string]any) { delete(m, "type") }) }},
		{"type without code", "AuditEvent.type.code", "required", func(t *testing.T) []byte {
			return mutate(t, func(m map[string]any) { m["type"] = map[string]any{"system": "x"} })
		}},
		{"no recorded", "AuditEvent.recorded", "required", func(t *testing.T) []byte { return mutate(t, func(m map[string]any) { delete(m, "recorded") }) }},
		{"recorded a date", "AuditEvent.recorded", "value", func(t *testing.T) []byte {
			return mutate(t, func(m map[string]any) { m["recorded"] = "2026-12-07" })
		}},
		{"recorded without zone", "AuditEvent.recorded", "value", func(t *testing.T) []byte {
			return mutate(t, func(m map[string]any) { m["recorded"] = "2026-12-07T10:00:00" })
		}},
		{"no agent", "AuditEvent.agent", "required", func(t *testing.T) []byte { return mutate(t, func(m map[string]any) { delete(m, "agent") }) }},
		{"empty agent", "AuditEvent.agent", "required", func(t *testing.T) []byte { return mutate(t, func(m map[string]any) { m["agent"] = []any{} }) }},
		{"no requestor", "AuditEvent.agent[1].requestor", "required", func(t *testing.T) []byte {
			return mutate(t, func(m map[string]any) { delete(agent(m, 1), "requestor") })
		}},
		{"requestor not boolean", "AuditEvent.agent.requestor", "structure", func(t *testing.T) []byte {
			return mutate(t, func(m map[string]any) { agent(m, 1)["requestor"] = "yes" })
		}},
		{"requestor without who", "AuditEvent.agent[1].who", "required", func(t *testing.T) []byte {
			return mutate(t, func(m map[string]any) { a := agent(m, 1); delete(a, "who"); delete(a, "name") })
		}},
		{"bad network type", "AuditEvent.agent[0].network.type", "code-invalid", func(t *testing.T) []byte {
			return mutate(t, func(m map[string]any) { agent(m, 0)["network"] = map[string]any{"address": "x", "type": "9"} })
		}},
		{"no source", "AuditEvent.source", "required", func(t *testing.T) []byte { return mutate(t, func(m map[string]any) { delete(m, "source") }) }},
		{"no observer", "AuditEvent.source.observer", "required", func(t *testing.T) []byte {
			return mutate(t, func(m map[string]any) { delete(m["source"].(map[string]any), "observer") })
		}},
		{"empty observer", "AuditEvent.source.observer", "required", func(t *testing.T) []byte {
			return mutate(t, func(m map[string]any) { m["source"].(map[string]any)["observer"] = map[string]any{} })
		}},
		{"no action", "AuditEvent.action", "required", func(t *testing.T) []byte { return mutate(t, func(m map[string]any) { delete(m, "action") }) }},
		{"bad action", "AuditEvent.action", "code-invalid", func(t *testing.T) []byte { return mutate(t, func(m map[string]any) { m["action"] = "X" }) }},
		{"bad outcome", "AuditEvent.outcome", "code-invalid", func(t *testing.T) []byte { return mutate(t, func(m map[string]any) { m["outcome"] = "3" }) }},
		{"other resource", "AuditEvent.resourceType", "invalid", func(t *testing.T) []byte {
			return mutate(t, func(m map[string]any) { m["resourceType"] = "Patient" })
		}},
		{"no resourceType", "AuditEvent.resourceType", "invalid", func(t *testing.T) []byte {
			return mutate(t, func(m map[string]any) { delete(m, "resourceType") })
		}},
		{"subtype without code", "AuditEvent.subtype[0].code", "required", func(t *testing.T) []byte {
			return mutate(t, func(m map[string]any) { m["subtype"] = []any{map[string]any{"display": "x"}} })
		}},
		{"not an object", "AuditEvent", "structure", func(t *testing.T) []byte { return []byte(`[1,2]`) }},
		{"not JSON", "AuditEvent", "structure", func(t *testing.T) []byte { return []byte(`{"resourceType":`) }},
		{"too large", "AuditEvent", "too-long", func(t *testing.T) []byte {
			return mutate(t, func(m map[string]any) { m["outcomeDesc"] = strings.Repeat("x", 70<<10) })
		}},
		{"NUL in a mapped string", "AuditEvent.agent", "value", func(t *testing.T) []byte {
			return mutate(t, func(m map[string]any) { agent(m, 1)["name"] = "a\x00b" })
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := fhir.Decode(c.data(t))
			var ie *fhir.InvalidError
			if !errors.As(err, &ie) {
				t.Fatalf("accepted, or not an InvalidError: %v", err)
			}
			found := false
			for _, is := range ie.Issues {
				if len(is.Expression) == 1 && is.Expression[0] == c.expr && is.Code == c.code && is.Severity == "error" && is.Diagnostics != "" {
					found = true
				}
			}
			if !found {
				t.Errorf("no %s issue at %s in %+v", c.code, c.expr, ie.Issues)
			}
			oo, _ := json.Marshal(fhir.NewOutcome(ie.Issues...))
			sc.Check(t, "OperationOutcome", oo)
		})
	}
}

// TestDecodeStream: the stream rule.
func TestDecodeStream(t *testing.T) {
	patientEntity := func(what map[string]any) map[string]any {
		return map[string]any{"what": what,
			"type": map[string]any{"system": fhir.SystemEntityType, "code": "1"},
			"role": map[string]any{"system": fhir.SystemObjectRole, "code": "1"}}
	}
	cases := []struct {
		name, stream, patient string
		entity                []any
		observer              map[string]any
	}{
		{"Patient reference", "patient/p1", "p1", []any{map[string]any{"what": map[string]any{"reference": "https://x.org/fhir/Patient/p1/_history/2"}}}, nil},
		{"CX with OID", "patient/1.2.3:12345", "12345^^^&1.2.3&ISO",
			[]any{patientEntity(map[string]any{"identifier": map[string]any{"system": "urn:oid:1.2.3", "value": "12345"}})}, nil},
		{"identifier that does not fit", "patient/h-" + sha("a b"), "a b",
			[]any{patientEntity(map[string]any{"identifier": map[string]any{"system": "http://x", "value": "a b"}})}, nil},
		{"no patient", "fhir/ehr-1", "", []any{}, nil},
		{"observer reference", "fhir/h-" + sha("Device/d1"), "", []any{}, map[string]any{"reference": "Device/d1"}},
		{"two patients", "fhir/ehr-1", "", []any{
			map[string]any{"what": map[string]any{"reference": "Patient/a"}},
			map[string]any{"what": map[string]any{"reference": "Patient/b"}},
		}, nil},
		{"one patient twice", "patient/a", "a", []any{
			map[string]any{"what": map[string]any{"reference": "Patient/a"}},
			patientEntity(map[string]any{"reference": "Patient/a"}),
		}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev, err := fhir.Decode(mutate(t, func(m map[string]any) {
				m["entity"] = c.entity
				if c.observer != nil {
					m["source"].(map[string]any)["observer"] = c.observer
				}
			}))
			if err != nil {
				t.Fatal(err)
			}
			if ev.Stream != c.stream || ev.Patient != c.patient {
				t.Errorf("stream %q patient %q, want %q %q", ev.Stream, ev.Patient, c.stream, c.patient)
			}
		})
	}
}
