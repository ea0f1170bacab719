package server_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// TestFHIRTransaction: a transaction stores every entry or none; a bad
// entry is a 4xx OperationOutcome naming it.
func TestFHIRTransaction(t *testing.T) {
	s := start(t)
	ok := func(i int) []byte {
		return newResource(fmt.Sprintf("p%d", i), "alice", "2026-01-05T10:00:00Z").json(t)
	}
	size := s.l.Size()
	bad := newResource("p9", "alice", "2026-01-05T10:00:00Z").with("type", nil).json(t)
	wantOutcome(t, s.fhirDo(t, "POST", "/fhir", admin, bundleOf(t, "transaction",
		"POST", "AuditEvent", ok(1), "PUT", "AuditEvent/t-2", ok(2), "POST", "AuditEvent", bad, "POST", "AuditEvent", ok(4))),
		400, "Bundle.entry[2].resource.type")
	wantOutcome(t, s.fhirDo(t, "POST", "/fhir", admin, bundleOf(t, "transaction",
		"POST", "AuditEvent", ok(1), "DELETE", "AuditEvent/x", ok(2))), 400, "Bundle.entry[1].request")
	wantOutcome(t, s.fhirDo(t, "POST", "/fhir", admin, bundleOf(t, "transaction",
		"PUT", "AuditEvent/t-1", ok(1), "PUT", "AuditEvent/t-1", ok(2))), 409, "Bundle.entry[1]")
	wantOutcome(t, s.fhirDo(t, "POST", "/fhir", admin, bundleOf(t, "collection", "POST", "AuditEvent", ok(1))), 400, "Bundle.type")
	wantOutcome(t, s.fhirDo(t, "POST", "/fhir", admin, []byte(`{"resourceType":"Bundle","type":"transaction","entry":[]}`)), 400, "Bundle.entry")
	s.wantUnchanged(t, size)

	// A stored id with other content fails the whole transaction too.
	wantFHIR(t, s.fhirDo(t, "PUT", "/fhir/AuditEvent/t-9", admin, ok(9)), 201, "AuditEvent")
	size = s.l.Size()
	wantOutcome(t, s.fhirDo(t, "POST", "/fhir", admin, bundleOf(t, "transaction",
		"POST", "AuditEvent", ok(1), "PUT", "AuditEvent/t-9", ok(8))), 409, "Bundle.entry[1]")
	s.wantUnchanged(t, size)

	r := s.fhirDo(t, "POST", "/fhir", admin, bundleOf(t, "transaction",
		"POST", "AuditEvent", ok(1), "PUT", "AuditEvent/t-2", ok(2), "PUT", "AuditEvent/t-9", ok(9), "PUT", "AuditEvent/t-2", ok(2)))
	b := wantBundle(t, r, 200)
	if b.Type != "transaction-response" || len(b.Entry) != 4 {
		t.Fatalf("response %s", r.Body)
	}
	for i, want := range []string{"201 Created", "201 Created", "200 OK", "200 OK"} {
		e := b.Entry[i].Response
		if e.Status != want || !strings.HasPrefix(e.Location, "AuditEvent/") || !strings.HasSuffix(e.Location, "/_history/1") {
			t.Errorf("entry %d: %+v, want %s", i, e, want)
		}
	}
	if s.l.Size() != size+2 {
		t.Errorf("stored %d events, want 2", s.l.Size()-size)
	}
	id := strings.Split(b.Entry[0].Response.Location, "/")[1]
	got := s.fhirDo(t, "GET", "/fhir/AuditEvent/"+id, admin, nil)
	wantFHIR(t, got, 200, "AuditEvent")
}

// TestFHIRBatch: a batch stores what it can and answers each entry.
func TestFHIRBatch(t *testing.T) {
	s := start(t)
	wantFHIR(t, s.fhirDo(t, "PUT", "/fhir/AuditEvent/b-9", admin, newResource("p9", "a", "2026-01-05T10:00:00Z").json(t)), 201, "AuditEvent")
	size := s.l.Size()
	r := s.fhirDo(t, "POST", "/fhir", admin, bundleOf(t, "batch",
		"POST", "AuditEvent", newResource("p1", "a", "2026-01-05T10:00:00Z").json(t),
		"POST", "AuditEvent", newResource("p2", "a", "2026-01-05T10:00:00Z").with("recorded", "soon").json(t),
		"PUT", "AuditEvent/b-9", newResource("p9", "other", "2026-01-05T10:00:00Z").json(t),
		"PUT", "AuditEvent/b-3", newResource("p3", "a", "2026-01-05T10:00:00Z").json(t),
		"GET", "AuditEvent/b-3", newResource("p3", "a", "2026-01-05T10:00:00Z").json(t),
	))
	b := wantBundle(t, r, 200)
	if b.Type != "batch-response" || len(b.Entry) != 5 {
		t.Fatalf("response %s", r.Body)
	}
	for i, want := range []string{"201 Created", "400 Bad Request", "409 Conflict", "201 Created", "400 Bad Request"} {
		e := b.Entry[i].Response
		if e.Status != want {
			t.Errorf("entry %d: status %q, want %q", i, e.Status, want)
		}
		if strings.HasPrefix(want, "201") != (e.Location != "") || strings.HasPrefix(want, "4") != (len(e.Outcome) > 0) {
			t.Errorf("entry %d: %+v", i, e)
		}
	}
	var oo outcomeDoc
	json.Unmarshal(b.Entry[1].Response.Outcome, &oo)
	if len(oo.Issue) == 0 || len(oo.Issue[0].Expression) == 0 || oo.Issue[0].Expression[0] != "Bundle.entry[1].resource.recorded" {
		t.Errorf("entry 1 outcome %s", b.Entry[1].Response.Outcome)
	}
	if s.l.Size() != size+2 {
		t.Errorf("stored %d events, want 2", s.l.Size()-size)
	}
	wantFHIR(t, s.fhirDo(t, "GET", "/fhir/AuditEvent/b-3", admin, nil), 200, "AuditEvent")
}

// TestFHIRBundleLimits: a Bundle over the entry limit is 413, nothing
// stored.
func TestFHIRBundleLimits(t *testing.T) {
	s := start(t, func(st *setup) { st.server.MaxBatchEvents = 3 })
	size := s.l.Size()
	var es []any
	for i := range 4 {
		es = append(es, "POST", "AuditEvent", newResource(fmt.Sprintf("p%d", i), "a", "2026-01-05T10:00:00Z").json(t))
	}
	wantOutcome(t, s.fhirDo(t, "POST", "/fhir", admin, bundleOf(t, "batch", es...)), 413, "")
	s.wantUnchanged(t, size)
}
