package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server"
)

// auditRecord is the part of a read record the contract fixes.
type auditRecord struct {
	Type    string `json:"type"`
	Action  string `json:"action"`
	Outcome string `json:"outcome"`
	Actor   struct {
		ID string `json:"id"`
	} `json:"actor"`
	Patient string `json:"patient"`
	Purpose string `json:"purpose"`
	Details struct {
		Endpoint string            `json:"endpoint"`
		Params   map[string]string `json:"params"`
		Count    int               `json:"count"`
		Reason   string            `json:"reason"`
	} `json:"details"`
}

// record is a read record by actor: what it did, and what came of it.
func record(actor, outcome, patient, endpoint string, params map[string]string, count int) auditRecord {
	var r auditRecord
	r.Type, r.Action, r.Outcome, r.Patient = "audit-log.read", "R", outcome, patient
	r.Actor.ID = actor
	r.Details.Endpoint, r.Details.Params, r.Details.Count = endpoint, params, count
	return r
}

// auditTrail waits until stream holds at least n events, then returns all of
// them, read from the engine (reading through the API would add records).
func (s *testServer) auditTrail(t testing.TB, stream string, n int) ([]auditRecord, [][]byte) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		res, err := s.l.Query(context.Background(), trail.Query{Stream: stream, Limit: 1000})
		if err != nil {
			t.Fatalf("engine query %s: %v", stream, err)
		}
		if len(res.Events) >= n || time.Now().After(deadline) {
			recs := make([]auditRecord, len(res.Events))
			for i, e := range res.Events {
				if err := json.Unmarshal(e, &recs[i]); err != nil {
					t.Fatalf("%s event %s: %v", stream, e, err)
				}
			}
			return recs, res.Events
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestReadAudit: every read, allowed or refused with 403, is recorded in
// trail/access; 400s and 401s are not.
func TestReadAudit(t *testing.T) {
	t.Parallel()
	s := start(t, withPrincipals(grantPrincipals()))
	for i, st := range []string{"patient/1", "patient/1", "patient/2"} {
		e := event("", st)
		e.Patient = []string{"p1", "p1", "p2"}[i]
		s.appendOne(t, e)
	}

	if r := s.do(t, http.MethodGet, "/v1/events?patient=p1", clinicianToken, nil); r.Status != http.StatusOK {
		t.Fatalf("query: %v", r)
	}
	wantProblem(t, s.do(t, http.MethodGet, "/v1/events?stream=patient/2", clinicianToken, nil), http.StatusForbidden)
	if r := s.do(t, http.MethodGet, "/v1/events/0", clinicianToken, nil); r.Status != http.StatusOK {
		t.Fatalf("get: %v", r)
	}
	wantProblem(t, s.do(t, http.MethodGet, "/v1/events?limit=0", clinicianToken, nil), http.StatusBadRequest)
	wantProblem(t, s.do(t, http.MethodGet, "/v1/events", "trail_nobody", nil), http.StatusUnauthorized)

	want := []auditRecord{
		record("dr-grey", "success", "p1", "GET /v1/events", map[string]string{"patient": "p1"}, 2),
		record("dr-grey", "minor-failure", "2", "GET /v1/events", map[string]string{"stream": "patient/2"}, 0),
		// A read by index names the patient of the event's stream; the event
		// belongs to patient p1 too (its patient member), who gets a record
		// of its own (IHE BALP: one per patient).
		record("dr-grey", "success", "1", "GET /v1/events/{index}", nil, 1),
		record("dr-grey", "success", "p1", "GET /v1/events/{index}", nil, 1),
	}
	got, _ := s.auditTrail(t, "trail/access", len(want))
	if d := cmp.Diff(want, got, cmpopts.EquateEmpty()); d != "" {
		t.Errorf("trail/access (-want +got):\n%s", d)
	}
}

// TestBreakGlass: a break-glass principal reads beyond its grants with
// purpose=emergency and a reason; the read is recorded in trail/access and,
// with the same content, in trail/break-glass.
func TestBreakGlass(t *testing.T) {
	t.Parallel()
	ps := grantPrincipals()
	ps["trail_er"] = &server.Principal{Name: "er-doc", BreakGlass: true}
	s := start(t, withPrincipals(ps))
	e := event("bg-1", "patient/2")
	e.Patient = "p2"
	s.appendOne(t, e)

	const emergency = "/v1/events?stream=patient/2&purpose=emergency&reason=code+blue"
	r := s.do(t, http.MethodGet, emergency, "trail_er", nil)
	var page queryPage
	wantJSON(t, r, http.StatusOK, &page)
	if len(page.Events) != 1 {
		t.Errorf("emergency read: %d events, want 1", len(page.Events))
	}
	wantProblem(t, s.do(t, http.MethodGet, "/v1/events?stream=patient/2", "trail_er", nil), http.StatusForbidden)
	wantProblem(t, s.do(t, http.MethodGet, "/v1/events?stream=patient/2&purpose=emergency", "trail_er", nil), http.StatusBadRequest, "reason")
	wantProblem(t, s.do(t, http.MethodGet, "/v1/events?stream=patient/2&purpose=emergency&reason=", "trail_er", nil), http.StatusBadRequest, "reason")
	wantProblem(t, s.do(t, http.MethodGet, "/v1/events?purpose=emergency", admin, nil), http.StatusBadRequest, "reason")
	wantProblem(t, s.do(t, http.MethodGet, emergency, clinicianToken, nil), http.StatusForbidden)

	bg := record("er-doc", "success", "2", "GET /v1/events",
		map[string]string{"stream": "patient/2", "purpose": "emergency", "reason": "code blue"}, 1)
	bg.Purpose, bg.Details.Reason = "emergency", "code blue"
	glass, raw := s.auditTrail(t, "trail/break-glass", 1)
	if d := cmp.Diff([]auditRecord{bg}, glass, cmpopts.EquateEmpty()); d != "" {
		t.Errorf("trail/break-glass (-want +got):\n%s", d)
	}
	access, accessRaw := s.auditTrail(t, "trail/access", 3)
	if len(access) == 0 || len(raw) == 0 {
		t.Fatalf("trail/access has %d records, trail/break-glass %d", len(access), len(raw))
	}
	if d := cmp.Diff(bg, access[0], cmpopts.EquateEmpty()); d != "" {
		t.Errorf("trail/access record of the emergency read (-want +got):\n%s", d)
	}
	if d := cmp.Diff(content(t, accessRaw[0]), content(t, raw[0])); d != "" {
		t.Errorf("break-glass record differs from the access record (-access +break-glass):\n%s", d)
	}
}

// content returns the client fields of a stored event: what two records of
// one read share.
func content(t testing.TB, rec []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(rec, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "index", "stream", "stream_seq", "recorded", "salt", "time", "prev"} {
		delete(m, k)
	}
	return m
}
