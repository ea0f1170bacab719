package server_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/trailhq/trail/server"
)

// TestATNAFoundThroughFHIR: a DICOM audit message sent by syslog is found,
// as one event, through the native API and through a FHIR search by the
// patient's identifier (ITI-81's patient.identifier, in the urn:oid form
// of its HL7 CX identifier) and by the patient reference; the AuditEvent
// view carries the DICOM codes and is valid R4. A FHIR event about the same
// patient lands in the same stream and is found by the same searches.
func TestATNAFoundThroughFHIR(t *testing.T) {
	s := startSyslog(t)
	c := s.dial(t, server.TransportTCP)
	write(t, c, octet(rfc5424(sample(t, "110110-patient-record"))))
	c.Close()
	s.waitCount(t, server.TransportTCP, "stored", 1)

	const stream = "patient/1.3.6.1.4.1.21367.2005.3.7:12345"
	native := s.query(t, "stream="+url.QueryEscape(stream))
	if len(native) != 1 {
		t.Fatalf("GET /v1/events?stream=%s: %d events, want the message's one", stream, len(native))
	}
	var ev struct {
		ID, Type, Patient string
	}
	if err := json.Unmarshal(native[0], &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Type != "dicom:110110" || ev.Patient != "12345^^^&1.3.6.1.4.1.21367.2005.3.7&ISO" {
		t.Fatalf("stored event: type %q patient %q, want dicom:110110 and the CX identifier as sent", ev.Type, ev.Patient)
	}

	search := func(params string) bundleDoc {
		t.Helper()
		return wantBundle(t, s.fhirDo(t, http.MethodGet, "/fhir/AuditEvent?"+params, admin, nil), http.StatusOK)
	}
	// The admin also reads trail/access, whose records of the reads above
	// name the patient too (DICOM 110101): they are told apart by type.
	byType := func(b bundleDoc) map[string][]string {
		out := map[string][]string{}
		for _, e := range b.Entry {
			var ae struct {
				ID   string
				Type struct{ System, Code string }
			}
			json.Unmarshal(e.Resource, &ae)
			out[ae.Type.System+"|"+ae.Type.Code] = append(out[ae.Type.System+"|"+ae.Type.Code], ae.ID)
		}
		return out
	}
	const dcm = "http://dicom.nema.org/resources/ontology/DCM|"
	for _, params := range []string{
		"patient.identifier=" + url.QueryEscape("urn:oid:1.3.6.1.4.1.21367.2005.3.7|12345"),
		"patient.identifier=" + url.QueryEscape("urn:oid:1.3.6.1.4.1.21367.2005.3.7|12345") + "&type=" + url.QueryEscape(dcm+"110110"),
		"entity-identifier=" + url.QueryEscape("urn:oid:1.3.6.1.4.1.21367.2005.3.7|12345"),
	} {
		got := byType(search(params))
		if ids := got[dcm+"110110"]; len(ids) != 1 || ids[0] != ev.ID {
			t.Fatalf("FHIR search %s found %v, want the DICOM 110110 event %s", params, got, ev.ID)
		}
		for typ := range got {
			if typ != dcm+"110110" && typ != dcm+"110101" {
				t.Fatalf("FHIR search %s found events of type %s: %v", params, typ, got)
			}
		}
	}
	if got := byType(search("patient.identifier=" + url.QueryEscape("urn:oid:1.3.6.1.4.1.21367.2005.3.7|54321"))); len(got[dcm+"110110"]) != 0 {
		t.Fatalf("a search for another patient found %v", got)
	}

	// A FHIR client's event about the same patient.
	res := newResource("", "dr.house", "2026-12-07T09:15:02Z").addEntity(map[string]any{
		"what": map[string]any{"identifier": map[string]any{"system": "urn:oid:1.3.6.1.4.1.21367.2005.3.7", "value": "12345"}},
		"type": map[string]any{"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1"},
		"role": map[string]any{"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1"},
	})
	r := s.fhirDo(t, http.MethodPost, "/fhir/AuditEvent", admin, res.json(t))
	wantFHIR(t, r, http.StatusCreated, "AuditEvent")
	if got := s.query(t, "stream="+url.QueryEscape(stream)); len(got) != 2 {
		t.Fatalf("after the FHIR create, %s holds %d events, want the ATNA one and the FHIR one", stream, len(got))
	}
	got := byType(search("patient.identifier=" + url.QueryEscape("urn:oid:1.3.6.1.4.1.21367.2005.3.7|12345") + "&type=" + url.QueryEscape(dcm+"110110")))
	if ids := got[dcm+"110110"]; len(ids) != 2 || !strings.Contains(strings.Join(ids, ","), ev.ID) {
		t.Fatalf("FHIR search after the FHIR create found %v, want both events", got)
	}
}
