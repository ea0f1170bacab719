package server_test

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/fhir"
	"github.com/trailhq/trail/server"
)

// TestFHIRMetadata: the CapabilityStatement is valid R4, says 4.0.1 and
// lists every search parameter; without a token it is a 401 outcome.
func TestFHIRMetadata(t *testing.T) {
	s := start(t)
	r := s.fhirDo(t, "GET", "/fhir/metadata", admin, nil)
	wantFHIR(t, r, 200, "CapabilityStatement")
	var cs struct {
		FHIRVersion string
		Rest        []struct {
			Resource []struct {
				Type        string
				SearchParam []struct{ Name string }
			}
		}
	}
	json.Unmarshal(r.Body, &cs)
	if cs.FHIRVersion != "4.0.1" || len(cs.Rest) != 1 || cs.Rest[0].Resource[0].Type != "AuditEvent" {
		t.Fatalf("capability statement: %s", r.Body)
	}
	names := map[string]bool{}
	for _, p := range cs.Rest[0].Resource[0].SearchParam {
		names[p.Name] = true
	}
	for _, n := range []string{"date", "patient", "agent", "entity", "source", "patient.identifier", "entity-identifier", "address",
		"entity-type", "entity-role", "outcome", "type", "subtype", "action", "_id"} {
		if !names[n] {
			t.Errorf("search parameter %s not listed", n)
		}
	}
	r = s.fhirDo(t, "GET", "/fhir/metadata", "", nil)
	wantOutcome(t, r, 401, "")
	if r.Header.Get("WWW-Authenticate") == "" {
		t.Error("401 without WWW-Authenticate")
	}
	wantOutcome(t, s.fhirDo(t, "GET", "/fhir/Patient/1", admin, nil), 404, "")
	wantOutcome(t, s.fhirDo(t, "GET", "/fhir", admin, nil), 404, "")
}

var locationRE = regexp.MustCompile(`^http://[^/]+/fhir/AuditEvent/([A-Za-z0-9.-]{1,64})/_history/1$`)

// TestFHIRCreateRead: POST stores the resource (kept verbatim as the
// event's original) and answers it with id and meta; GET reads it back the
// same, leaving a read record; an unknown id is a 404, recorded too.
func TestFHIRCreateRead(t *testing.T) {
	s := start(t)
	sent := newResource("p1", "alice", "2026-01-05T10:00:00+01:00").with("id", "ignored").json(t)
	r := s.fhirDo(t, "POST", "/fhir/AuditEvent", admin, sent)
	wantFHIR(t, r, 201, "AuditEvent")
	m := locationRE.FindStringSubmatch(r.Header.Get("Location"))
	if m == nil {
		t.Fatalf("Location %q", r.Header.Get("Location"))
	}
	id := m[1]
	var got struct {
		ID   string
		Meta struct{ VersionID, LastUpdated string }
	}
	json.Unmarshal(r.Body, &got)
	if got.ID != id || got.Meta.VersionID != "1" || got.Meta.LastUpdated == "" || !fhir.SameResource(r.Body, sent) {
		t.Fatalf("created %s", r.Body)
	}
	_, rec, err := s.l.ReadID(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	se, _ := trail.ParseStored(rec)
	if se.Stream != "patient/p1" || se.Patient != "p1" || se.Original == nil || string(se.Original.Data) != string(sent) || se.Recorded != got.Meta.LastUpdated {
		t.Fatalf("stored %s", rec)
	}

	from := s.l.Size()
	rd := s.fhirDo(t, "GET", "/fhir/AuditEvent/"+id, admin, nil)
	wantFHIR(t, rd, 200, "AuditEvent")
	if !jsonEqual(rd.Body, r.Body) {
		t.Errorf("read %s\nwant %s", rd.Body, r.Body)
	}
	rr := s.wantRead(t, from, "admin", "success", "GET /fhir/AuditEvent/{id}")
	if rr.Details.Count != 1 || rr.Patient != "p1" || rr.Details.Index == nil || *rr.Details.Index != se.Index {
		t.Errorf("read record %+v", rr)
	}

	from = s.l.Size()
	wantOutcome(t, s.fhirDo(t, "GET", "/fhir/AuditEvent/nobody", admin, nil), 404, "")
	if rr := s.wantRead(t, from, "admin", "success", "GET /fhir/AuditEvent/{id}"); rr.Details.Count != 0 {
		t.Errorf("404 read record %+v", rr)
	}
	wantFHIR(t, s.fhirDo(t, "GET", "/fhir/AuditEvent/"+id+"/_history/1", admin, nil), 200, "AuditEvent")
	wantOutcome(t, s.fhirDo(t, "GET", "/fhir/AuditEvent/"+id+"/_history/2", admin, nil), 404, "")

	// A native event reads as an AuditEvent too, and so does the record of
	// the read above (DICOM 110101 Audit Log Used).
	rc := s.appendOne(t, event("native-1", "patient/p9"))
	nv := s.fhirDo(t, "GET", "/fhir/AuditEvent/"+rc.ID, admin, nil)
	wantFHIR(t, nv, 200, "AuditEvent")
	recs := s.readsFrom(t, from)
	rec, _ = s.l.Read(recs[0].Index)
	se, _ = trail.ParseStored(rec)
	ar := s.fhirDo(t, "GET", "/fhir/AuditEvent/"+se.ID, admin, nil)
	wantFHIR(t, ar, 200, "AuditEvent")
	var av fhir.AuditEvent
	json.Unmarshal(ar.Body, &av)
	if av.Type.Code != "110101" || av.Type.System != fhir.SystemDCM {
		t.Errorf("read record view type %+v", av.Type)
	}
}

func jsonEqual(a, b []byte) bool {
	var va, vb any
	json.Unmarshal(a, &va)
	json.Unmarshal(b, &vb)
	x, _ := json.Marshal(va)
	y, _ := json.Marshal(vb)
	return string(x) == string(y)
}

// TestFHIRUpdate: PUT creates with the client's id (201); the same
// content again is 200 and stores nothing; other content is 409; an id in
// the body that is not the URL's is 400.
func TestFHIRUpdate(t *testing.T) {
	s := start(t)
	res := newResource("p1", "alice", "2026-01-05T10:00:00Z")
	r := s.fhirDo(t, "PUT", "/fhir/AuditEvent/ev-1", admin, res.json(t))
	wantFHIR(t, r, 201, "AuditEvent")
	if !strings.HasSuffix(r.Header.Get("Location"), "/fhir/AuditEvent/ev-1/_history/1") {
		t.Errorf("Location %q", r.Header.Get("Location"))
	}
	size := s.l.Size()
	same := res.with("id", "ev-1").with("meta", map[string]any{"lastUpdated": "2020-01-01T00:00:00Z"})
	r = s.fhirDo(t, "PUT", "/fhir/AuditEvent/ev-1", admin, same.json(t))
	wantFHIR(t, r, 200, "AuditEvent")
	s.wantUnchanged(t, size)
	// Unmapped content differs: the engine's event would be the same, the
	// resource is not.
	other := res.with("period", map[string]any{"start": "2026-01-05T09:00:00Z"})
	wantOutcome(t, s.fhirDo(t, "PUT", "/fhir/AuditEvent/ev-1", admin, other.json(t)), 409, "")
	wantOutcome(t, s.fhirDo(t, "PUT", "/fhir/AuditEvent/ev-1", admin, res.with("action", "U").json(t)), 409, "")
	wantOutcome(t, s.fhirDo(t, "PUT", "/fhir/AuditEvent/ev-2", admin, res.with("id", "ev-3").json(t)), 400, "AuditEvent.id")
	s.wantUnchanged(t, size)
	// A native event's id: the same content as its view is 200, other 409.
	rc := s.appendOne(t, event("native-1", "patient/p9"))
	view := s.fhirDo(t, "GET", "/fhir/AuditEvent/"+rc.ID, admin, nil).Body
	size = s.l.Size()
	wantFHIR(t, s.fhirDo(t, "PUT", "/fhir/AuditEvent/native-1", admin, view), 200, "AuditEvent")
	wantOutcome(t, s.fhirDo(t, "PUT", "/fhir/AuditEvent/native-1", admin, res.json(t)), 409, "")
	s.wantUnchanged(t, size)
}

// TestFHIRInvalid: invalid resources are 400 OperationOutcomes naming the
// element, other formats 415 and 406; nothing is stored.
func TestFHIRInvalid(t *testing.T) {
	s := start(t)
	size := s.l.Size()
	ok := newResource("p1", "alice", "2026-01-05T10:00:00Z")
	for _, c := range []struct {
		body []byte
		expr string
	}{
		{ok.with("type", nil).json(t), "AuditEvent.type"},
		{ok.with("recorded", nil).json(t), "AuditEvent.recorded"},
		{ok.with("agent", nil).json(t), "AuditEvent.agent"},
		{ok.with("agent", []any{map[string]any{"who": map[string]any{"display": "x"}}}).json(t), "AuditEvent.agent[0].requestor"},
		{ok.with("source", nil).json(t), "AuditEvent.source"},
		{ok.with("source", map[string]any{"site": "x"}).json(t), "AuditEvent.source.observer"},
		{ok.with("action", "X").json(t), "AuditEvent.action"},
		{ok.with("outcome", "1").json(t), "AuditEvent.outcome"},
		{ok.with("resourceType", "Patient").json(t), "AuditEvent.resourceType"},
		{[]byte(`not json`), "AuditEvent"},
	} {
		wantOutcome(t, s.fhirDo(t, "POST", "/fhir/AuditEvent", admin, c.body), 400, c.expr)
	}
	big := ok.with("outcomeDesc", strings.Repeat("x", 70<<10)).json(t)
	wantOutcome(t, s.fhirDo(t, "POST", "/fhir/AuditEvent", admin, big), 413, "")
	wantOutcome(t, s.fhirDo(t, "POST", "/fhir/AuditEvent", admin, ok.json(t), "Content-Type", "application/xml"), 415, "")
	wantOutcome(t, s.fhirDo(t, "POST", "/fhir/AuditEvent?_format=xml", admin, ok.json(t)), 406, "")
	wantOutcome(t, s.fhirDo(t, "PUT", "/fhir/AuditEvent/a_b", admin, ok.json(t)), 400, "")
	s.wantUnchanged(t, size)
	wantFHIR(t, s.fhirDo(t, "POST", "/fhir/AuditEvent?_format=json", admin, ok.json(t), "Content-Type", "application/json"), 201, "AuditEvent")
	wantFHIR(t, s.fhirDo(t, "POST", "/fhir/AuditEvent?_format=application/fhir+json", admin, ok.json(t)), 201, "AuditEvent")
}

// TestFHIRGrants: appending needs the append grant of the event's stream
// (403, nothing stored); reading an event needs the read grant of its
// stream (403, recorded as a refused read).
func TestFHIRGrants(t *testing.T) {
	s := start(t, withPrincipals(map[string]*server.Principal{
		"tok-a":    {Name: "feed-a", Append: []string{"patient/a"}},
		"tok-none": {Name: "reader-only", Read: []string{"patient/a"}},
		"tok-bg":   {Name: "medic", BreakGlass: true},
	}))
	size := s.l.Size()
	wantOutcome(t, s.fhirDo(t, "POST", "/fhir/AuditEvent", "tok-a", newResource("b", "x", "2026-01-05T10:00:00Z").json(t)), 403, "")
	wantOutcome(t, s.fhirDo(t, "PUT", "/fhir/AuditEvent/e-b", "tok-a", newResource("b", "x", "2026-01-05T10:00:00Z").json(t)), 403, "")
	wantOutcome(t, s.fhirDo(t, "POST", "/fhir/AuditEvent", "tok-none", newResource("a", "x", "2026-01-05T10:00:00Z").json(t)), 403, "")
	wantOutcome(t, s.fhirDo(t, "POST", "/fhir", "tok-a", bundleOf(t, "transaction",
		"POST", "AuditEvent", newResource("a", "x", "2026-01-05T10:00:00Z").json(t),
		"POST", "AuditEvent", newResource("b", "x", "2026-01-05T10:00:00Z").json(t))), 403, "Bundle.entry[1]")
	wantOutcome(t, s.fhirDo(t, "POST", "/fhir/AuditEvent", "bad-token", newResource("a", "x", "2026-01-05T10:00:00Z").json(t)), 401, "")
	s.wantUnchanged(t, size)
	wantFHIR(t, s.fhirDo(t, "PUT", "/fhir/AuditEvent/e-a", "tok-a", newResource("a", "x", "2026-01-05T10:00:00Z").json(t)), 201, "AuditEvent")
	wantFHIR(t, s.fhirDo(t, "PUT", "/fhir/AuditEvent/e-b", admin, newResource("b", "x", "2026-01-05T10:00:00Z").json(t)), 201, "AuditEvent")

	from := s.l.Size()
	wantFHIR(t, s.fhirDo(t, "GET", "/fhir/AuditEvent/e-a", "tok-none", nil), 200, "AuditEvent")
	s.wantRead(t, from, "reader-only", "success", "GET /fhir/AuditEvent/{id}")
	from = s.l.Size()
	wantOutcome(t, s.fhirDo(t, "GET", "/fhir/AuditEvent/e-b", "tok-none", nil), 403, "")
	if rr := s.wantRead(t, from, "reader-only", "minor-failure", "GET /fhir/AuditEvent/{id}"); rr.Patient != "b" {
		t.Errorf("refused read record %+v", rr)
	}
	// Break-glass reads beyond the grants, recorded in trail/access and
	// trail/break-glass.
	from = s.l.Size()
	wantOutcome(t, s.fhirDo(t, "GET", "/fhir/AuditEvent/e-b?purpose=emergency", "tok-bg", nil), 400, "")
	wantFHIR(t, s.fhirDo(t, "GET", "/fhir/AuditEvent/e-b?purpose=emergency&reason=cardiac+arrest", "tok-bg", nil), 200, "AuditEvent")
	if rr := s.wantRead(t, from, "medic", "success", "GET /fhir/AuditEvent/{id}"); rr.Purpose != "emergency" || rr.Patient != "b" {
		t.Errorf("break-glass read record %+v", rr)
	}
	bg, err := s.l.Query(t.Context(), trail.Query{Stream: server.BreakGlassStream})
	if err != nil || len(bg.Events) != 1 {
		t.Errorf("trail/break-glass holds %d records (%v), want 1", len(bg.Events), err)
	}
	// A search finds only the streams the reader may read, and is recorded.
	from = s.l.Size()
	b := wantBundle(t, s.fhirDo(t, "GET", "/fhir/AuditEvent?type=110110", "tok-none", nil), 200)
	if ids := b.ids(t); len(ids) != 1 || ids[0] != "e-a" {
		t.Errorf("reader found %v", ids)
	}
	if rr := s.wantRead(t, from, "reader-only", "success", "GET /fhir/AuditEvent"); rr.Details.Count != 1 || rr.Details.Params["type"] != "110110" {
		t.Errorf("search read record %+v", rr)
	}
	from = s.l.Size()
	wantBundle(t, s.fhirDo(t, "GET", "/fhir/AuditEvent?_id=e-b", "tok-none", nil), 200)
	if rr := s.wantRead(t, from, "reader-only", "success", "GET /fhir/AuditEvent"); rr.Details.Count != 0 {
		t.Errorf("_id search of an unreadable event returned it: %+v", rr)
	}
}
