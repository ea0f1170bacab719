package server_test

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server"
)

// searchSeed stores the events every search case looks for: four
// AuditEvents (PUT, so their ids are known) and a native event, n5.
func searchSeed(t *testing.T, s *testServer) {
	ent := func(ref, sys, val, typ, role string) map[string]any {
		return map[string]any{"what": map[string]any{"reference": ref, "identifier": map[string]any{"system": sys, "value": val}},
			"type": map[string]any{"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": typ},
			"role": map[string]any{"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": role}}
	}
	net := func(r resource, addr string) resource {
		a := r["agent"].([]any)[0].(map[string]any)
		a["network"] = map[string]any{"address": addr, "type": "2"}
		return r
	}
	obs := func(r resource, dev string) resource {
		return r.with("source", map[string]any{"observer": map[string]any{"reference": "Device/" + dev}})
	}
	dcm := func(code string) map[string]any {
		return map[string]any{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": code}
	}
	e1 := net(newResource("p1", "alice", "2026-01-05T10:00:00Z"), "10.0.0.1").
		addEntity(ent("Observation/o1", "urn:oid:5", "acc-1", "2", "4")).
		with("subtype", []any{map[string]any{"system": "http://hl7.org/fhir/restful-interaction", "code": "read"}})
	e2 := obs(net(newResource("p2", "bob", "2026-01-05T23:59:59Z"), "10.0.0.2"), "ehr2").
		addEntity(ent("Observation/o2", "urn:oid:5", "acc-2", "2", "4")).with("action", "U").with("outcome", "4")
	e3 := net(newResource("", "alice", "2026-01-06T00:00:00Z"), "WARD-PC").addEntity(map[string]any{
		"what": map[string]any{"identifier": map[string]any{"system": "urn:oid:1.2.3", "value": "777"}},
		"type": map[string]any{"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1"},
		"role": map[string]any{"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1"}}).
		with("type", dcm("110112")).with("action", "E").with("outcome", "8").
		with("subtype", []any{map[string]any{"system": "http://hl7.org/fhir/restful-interaction", "code": "search"}})
	e4 := obs(net(newResource("", "carol", "2025-12-31T23:00:00-02:00"), "10.1.0.1"), "ehr2").
		with("type", map[string]any{"system": "http://x", "code": "custom"}).with("action", "C").with("outcome", "12")
	a1 := e1["agent"].([]any)[0].(map[string]any)
	a1["name"], a1["altId"] = "Alice Smith", "alice-alt"
	a1["role"] = []any{map[string]any{"coding": []any{map[string]any{"system": "http://snomed.info/sct", "code": "224535009"}}}}
	e2["source"] = map[string]any{"site": "North", "observer": map[string]any{"reference": "Device/ehr2"}}
	e2["entity"].([]any)[1].(map[string]any)["name"] = "Lab result"
	for id, r := range map[string]resource{"e1": e1, "e2": e2, "e3": e3, "e4": e4} {
		wantFHIR(t, s.fhirDo(t, "PUT", "/fhir/AuditEvent/"+id, admin, r.json(t)), 201, "AuditEvent")
	}
	n5 := trail.Event{ID: "n5", Stream: "patient/p1", Time: time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC), Type: "dicom:110110", Action: "R",
		Actor: trail.Actor{ID: "alice", Name: "alice native", Address: "10.0.0.9"}, Patient: "p1",
		Entities: []trail.Entity{{Type: "document", ID: "doc-9", Role: "object-role|3"}}}
	s.appendOne(t, n5)
}

// TestFHIRSearch: each search parameter alone, and some together, find
// exactly the events they describe; every answer is a valid searchset.
func TestFHIRSearch(t *testing.T) {
	s := start(t, withPrincipals(map[string]*server.Principal{
		"tok-r": {Name: "reader", Read: []string{"patient/*", "fhir/*"}},
	}))
	searchSeed(t, s)
	all := []string{"e1", "e2", "e3", "e4", "n5"}
	cases := []struct {
		query string
		want  []string
	}{
		{"", all},
		{"patient=Patient/p1", []string{"e1", "n5"}},
		{"patient=p2", []string{"e2"}},
		{"patient=http://h/fhir/Patient/p2", []string{"e2"}},
		{"patient:identifier=urn:oid:1.2.3|777", []string{"e3"}},
		{"patient.identifier=777", []string{"e3"}},
		{"patient.identifier=urn:oid:9|777", nil},
		{"agent=Practitioner/alice", []string{"e1", "e3"}},
		{"agent=alice", []string{"e1", "e3"}},
		{"agent:identifier=alice", []string{"e1", "e3", "n5"}},
		{"agent:identifier=urn:oid:9|alice", []string{"e1", "e3"}},
		{"agent:identifier=|alice", []string{"n5"}},
		{"entity=Observation/o1", []string{"e1"}},
		{"entity=Patient/p2", []string{"e2"}},
		{"entity-identifier=urn:oid:5|acc-1", []string{"e1"}},
		{"entity:identifier=acc-2", []string{"e2"}},
		{"entity:identifier=doc-9", []string{"n5"}},
		{"source=Device/ehr1", []string{"e1", "e3"}},
		{"source=Device/ehr2", []string{"e2", "e4"}},
		{"address=10.0.0", []string{"e1", "e2", "n5"}},
		{"address:exact=10.0.0.1", []string{"e1"}},
		{"address=ward", []string{"e3"}},
		{"entity-type=2", []string{"e1", "e2"}},
		{"entity-type=http://terminology.hl7.org/CodeSystem/audit-entity-type|1", []string{"e1", "e2", "e3", "n5"}},
		{"entity-type=document", []string{"n5"}},
		{"entity-role=4", []string{"e1", "e2"}},
		{"entity-role=http://terminology.hl7.org/CodeSystem/object-role|3", []string{"n5"}},
		{"outcome=4", []string{"e2"}},
		{"outcome=8,12", []string{"e3", "e4"}},
		{"outcome=http://hl7.org/fhir/audit-event-outcome|0", []string{"e1", "n5"}},
		{"type=http://dicom.nema.org/resources/ontology/DCM|110110", []string{"e1", "e2", "n5"}},
		{"type=110112", []string{"e3"}},
		{"type=http://x|", []string{"e4"}},
		{"subtype=search", []string{"e3"}},
		{"subtype=http://hl7.org/fhir/restful-interaction|read", []string{"e1"}},
		{"action=R", []string{"e1", "n5"}},
		{"action=C,U", []string{"e2", "e4"}},
		{"date=2026-01-05", []string{"e1", "e2", "n5"}},
		{"date=ge2026-01-06", []string{"e3"}},
		{"date=lt2026-01-05", []string{"e4"}},
		{"date=2026-01", all},
		{"date=2026", all}, // e4 is 2025-12-31T23:00-02:00, that is 2026-01-01T01:00Z
		{"date=gt2026-01-05T10:00Z", []string{"e2", "e3", "n5"}},
		{"date=le2026-01-05T10:00:00Z", []string{"e1", "e4"}},
		{"date=ne2026-01-05", []string{"e3", "e4"}},
		{"date=2026-01-01T01:00:00Z", []string{"e4"}},
		{"date=ge2026-01-05&date=lt2026-01-06", []string{"e1", "e2", "n5"}},
		{"agent-name=ALICE", []string{"e1", "n5"}},
		{"agent-name:exact=Alice%20Smith", []string{"e1"}},
		{"agent-name:exact=alice%20smith", nil},
		{"agent-role=http://snomed.info/sct|224535009", []string{"e1"}},
		{"altid=alice-alt", []string{"e1"}},
		{"entity-name=lab", []string{"e2"}},
		{"site=North", []string{"e2"}},
		{"_id=e2,e3", []string{"e2", "e3"}},
		{"_id=e2&action=U", []string{"e2"}},
		{"_id=nobody", nil},
		{"patient=Patient/p1&action=R&date=2026-01-05", []string{"e1", "n5"}},
		{"agent:identifier=alice&outcome=8", []string{"e3"}},
		{"type=110110&address=10.0.0.2&entity-role=4", []string{"e2"}},
		{"unknown-param=1&action=E", []string{"e3"}},
	}
	for _, c := range cases {
		t.Run(c.query, func(t *testing.T) {
			from := s.l.Size()
			b := wantBundle(t, s.fhirDo(t, "GET", "/fhir/AuditEvent?"+c.query, "tok-r", nil), 200)
			got := b.ids(t)
			slices.Sort(got)
			if !slices.Equal(got, c.want) {
				t.Errorf("%s found %v, want %v", c.query, got, c.want)
			}
			if b.Type != "searchset" || !strings.Contains(b.link("self"), "/fhir/AuditEvent?") || b.link("next") != "" {
				t.Errorf("links %+v", b.Link)
			}
			if rr := s.wantRead(t, from, "reader", "success", "GET /fhir/AuditEvent"); rr.Details.Count != len(c.want) {
				t.Errorf("read record count %d, want %d", rr.Details.Count, len(c.want))
			}
		})
	}
	// A search by patient identifier is recorded under the patient as its
	// events name it (HL7 CX for an OID system).
	from := s.l.Size()
	wantBundle(t, s.fhirDo(t, "GET", "/fhir/AuditEvent?patient.identifier=urn:oid:1.2.3|777", "tok-r", nil), 200)
	if rr := s.wantRead(t, from, "reader", "success", "GET /fhir/AuditEvent"); rr.Patient != "777^^^&1.2.3&ISO" {
		t.Errorf("read record names patient %q", rr.Patient)
	}
	from = s.l.Size()
	wantBundle(t, s.fhirDo(t, "GET", "/fhir/AuditEvent?patient=Patient/p1", "tok-r", nil), 200)
	if rr := s.wantRead(t, from, "reader", "success", "GET /fhir/AuditEvent"); rr.Patient != "p1" {
		t.Errorf("read record names patient %q", rr.Patient)
	}
	// The same through POST _search, form-encoded.
	r := s.fhirDo(t, "POST", "/fhir/AuditEvent/_search", "tok-r", []byte("action=C,U"), "Content-Type", "application/x-www-form-urlencoded")
	if got := wantBundle(t, r, 200).ids(t); len(got) != 2 {
		t.Errorf("POST _search found %v", got)
	}
	// Under Prefer: handling=strict an unknown parameter is an error; bad
	// values and modifiers always are.
	wantOutcome(t, s.fhirDo(t, "GET", "/fhir/AuditEvent?unknown-param=1", "tok-r", nil, "Prefer", "handling=strict"), 400, "unknown-param")
	for _, q := range []string{"date=sa2026", "date=yesterday", "_count=0", "_sort=type", "patient:missing=true", "action="} {
		wantOutcome(t, s.fhirDo(t, "GET", "/fhir/AuditEvent?"+q, "tok-r", nil), 400, "")
	}
}

// TestFHIRSearchPaging: following next links returns every matching event
// once, in date order (time, then index) either way, though they were
// stored in another order; a page holds at most _count entries.
func TestFHIRSearchPaging(t *testing.T) {
	// A reader of patients' streams: the admin would also find the records
	// of its own searches, which name the patient.
	s := start(t, withPrincipals(map[string]*server.Principal{"tok-r": {Name: "reader", Read: []string{"patient/*"}}}))
	const n = 23
	var want []string
	base := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	var evs []trail.Event
	for i := range n {
		want = append(want, fmt.Sprintf("pg-%02d", i))
	}
	for i := range n {
		// Stored out of time order: pg-k happened k minutes after base.
		k := i * 7 % n
		id := fmt.Sprintf("pg-%02d", k)
		r := newResource("pg", "alice", base.Add(time.Duration(k)*time.Minute).Format(time.RFC3339))
		wantFHIR(t, s.fhirDo(t, "PUT", "/fhir/AuditEvent/"+id, admin, r.json(t)), 201, "AuditEvent")
		// Other patients' events in between, which no page may return.
		ev := event("", "patient/other")
		ev.Patient = "other"
		evs = append(evs, ev)
	}
	s.appendBatch(t, evs...)
	for _, sort := range []string{"date", "-date"} {
		var got []string
		next := "/fhir/AuditEvent?patient=Patient/pg&_count=5&_sort=" + sort
		for pages := 0; next != ""; pages++ {
			if pages > n {
				t.Fatal("paging does not end")
			}
			b := wantBundle(t, s.fhirDo(t, "GET", next, "tok-r", nil), 200)
			ids := b.ids(t)
			if len(ids) > 5 {
				t.Fatalf("page of %d entries, _count=5", len(ids))
			}
			sorted := slices.Clone(ids)
			slices.Sort(sorted)
			if sort == "-date" {
				slices.Reverse(sorted)
			}
			if !slices.Equal(ids, sorted) {
				t.Errorf("page %v not in %s order", ids, sort)
			}
			got = append(got, ids...)
			next = ""
			if u := b.link("next"); u != "" {
				pu, err := url.Parse(u)
				if err != nil {
					t.Fatal(err)
				}
				next = pu.RequestURI()
			}
		}
		if sort == "-date" {
			slices.Reverse(got)
		}
		if !slices.Equal(got, want) {
			t.Errorf("_sort=%s paged through %v, want %v", sort, got, want)
		}
	}
}

// TestFHIRSearchBoundedPage: a search whose matches are rare among the
// events the indexes select answers pages of fewer than _count entries
// with a next link, and paging still finds every match once.
func TestFHIRSearchBoundedPage(t *testing.T) {
	s := start(t)
	var evs []trail.Event
	for i := range 12000 {
		ev := event(fmt.Sprintf("b-%05d", i), "patient/x")
		if i%4000 == 3999 {
			ev.Actor.Address = "10.9.9.9"
		}
		evs = append(evs, ev)
		if len(evs) == 5000 {
			s.appendBatch(t, evs...)
			evs = nil
		}
	}
	s.appendBatch(t, evs...)
	var got []string
	next, pages, short := "/fhir/AuditEvent?address=10.9.9.9&_count=2", 0, 0
	for ; next != ""; pages++ {
		b := wantBundle(t, s.fhirDo(t, "GET", next, admin, nil), 200)
		ids := b.ids(t)
		got = append(got, ids...)
		next = ""
		if u := b.link("next"); u != "" {
			if len(ids) < 2 {
				short++
			}
			pu, _ := url.Parse(u)
			next = pu.RequestURI()
		}
	}
	if want := []string{"b-11999", "b-07999", "b-03999"}; !slices.Equal(got, want) {
		t.Errorf("found %v, want %v", got, want)
	}
	if short == 0 {
		t.Errorf("no short page in %d pages: the work per page is not bounded", pages)
	}
}
