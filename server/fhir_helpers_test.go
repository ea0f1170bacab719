package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/trailhq/trail/internal/fhirschema"
)

// fhirDo sends a FHIR request; hdr are extra headers (name, value, …).
func (s *testServer) fhirDo(t testing.TB, method, path, token string, body []byte, hdr ...string) reply {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, s.ts.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token == admin {
		token = string(s.tok)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// wantFHIR checks that r has the status, is application/fhir+json and is a
// valid R4 resource of type typ (the official schema decides).
func wantFHIR(t testing.TB, r reply, status int, typ string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
	if mt := mediaType(r.Header); mt != "application/fhir+json" {
		t.Fatalf("Content-Type %q, want application/fhir+json", r.Header.Get("Content-Type"))
	}
	fhirschema.Load(t).Check(t, typ, r.Body)
}

// outcomeDoc is an OperationOutcome as sent.
type outcomeDoc struct {
	Issue []struct {
		Severity, Code, Diagnostics string
		Expression                  []string
	}
}

// wantOutcome checks that r is a valid OperationOutcome with the status
// and, when expr is given, an issue at that expression.
func wantOutcome(t testing.TB, r reply, status int, expr string) outcomeDoc {
	t.Helper()
	wantFHIR(t, r, status, "OperationOutcome")
	var oo outcomeDoc
	json.Unmarshal(r.Body, &oo)
	if len(oo.Issue) == 0 {
		t.Fatalf("no issue: %s", r.Body)
	}
	if expr == "" {
		return oo
	}
	for _, is := range oo.Issue {
		for _, e := range is.Expression {
			if e == expr {
				return oo
			}
		}
	}
	t.Fatalf("no issue at %s: %s", expr, r.Body)
	return oo
}

// resource is an AuditEvent as a map, to build variants from.
type resource map[string]any

// newResource returns a valid AuditEvent: a read of patient pt (none when
// ""), by agent, at time, with the extra members given.
func newResource(pt, agent, time string) resource {
	yes := true
	r := resource{
		"resourceType": "AuditEvent",
		"type":         map[string]any{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110110"},
		"action":       "R",
		"recorded":     time,
		"agent": []any{map[string]any{"who": map[string]any{"reference": "Practitioner/" + agent,
			"identifier": map[string]any{"system": "urn:oid:9", "value": agent}}, "requestor": yes}},
		"source": map[string]any{"observer": map[string]any{"reference": "Device/ehr1"}},
		"entity": []any{},
	}
	if pt != "" {
		r.addEntity(map[string]any{"what": map[string]any{"reference": "Patient/" + pt},
			"type": map[string]any{"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1"},
			"role": map[string]any{"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1"}})
	}
	return r
}

func (r resource) addEntity(e map[string]any) resource {
	r["entity"] = append(r["entity"].([]any), e)
	return r
}

func (r resource) with(k string, v any) resource {
	c := resource{}
	for kk, vv := range r {
		c[kk] = vv
	}
	if v == nil {
		delete(c, k)
	} else {
		c[k] = v
	}
	return c
}

func (r resource) json(t testing.TB) []byte {
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// bundleOf returns a batch or transaction Bundle of entries, each a
// method, a url and a resource (JSON).
func bundleOf(t testing.TB, typ string, entries ...any) []byte {
	var es []map[string]any
	for i := 0; i+3 <= len(entries); i += 3 {
		es = append(es, map[string]any{"request": map[string]any{"method": entries[i], "url": entries[i+1]},
			"resource": json.RawMessage(entries[i+2].([]byte))})
	}
	b, _ := json.Marshal(map[string]any{"resourceType": "Bundle", "type": typ, "entry": es})
	return b
}

// bundleDoc is a Bundle as sent.
type bundleDoc struct {
	Type  string
	Link  []struct{ Relation, URL string }
	Entry []struct {
		FullURL  string
		Resource json.RawMessage
		Response struct {
			Status, Location string
			Outcome          json.RawMessage
		}
	}
}

func (b bundleDoc) link(rel string) string {
	for _, l := range b.Link {
		if l.Relation == rel {
			return l.URL
		}
	}
	return ""
}

// ids are the ids of a searchset's resources.
func (b bundleDoc) ids(t testing.TB) []string {
	var out []string
	for _, e := range b.Entry {
		var r struct{ ID string }
		json.Unmarshal(e.Resource, &r)
		if !strings.HasSuffix(e.FullURL, "/fhir/AuditEvent/"+r.ID) {
			t.Errorf("fullUrl %q for id %q", e.FullURL, r.ID)
		}
		out = append(out, r.ID)
	}
	return out
}

func wantBundle(t testing.TB, r reply, status int) bundleDoc {
	t.Helper()
	wantFHIR(t, r, status, "Bundle")
	var b bundleDoc
	json.Unmarshal(r.Body, &b)
	return b
}
