package server_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server"
)

// A patient's own principal reads its patient's streams and the read records
// naming its patient, nothing else: not another patient's streams (patient/1
// must not open patient/10 or patient/1.1), not the read records of another
// patient, not trail/access as a whole, not Trail's other streams.

const (
	tokPatient1  = "tok-patient-1"  // patient's own principal of patient 1
	tokPatient10 = "tok-patient-10" // of patient 10, whose id starts as patient 1's
	tokDoctor    = "tok-doctor"     // reads patient/*
	tokPrivacy   = "tok-privacy"    // reads trail/access
)

func patientPrincipals() map[string]*server.Principal {
	return map[string]*server.Principal{
		tokPatient1:  {Name: "patient:1", Patient: "1"},
		tokPatient10: {Name: "patient:10", Patient: "10"},
		tokDoctor:    {Name: "dr-house", Read: []string{"patient/*", "ward/*"}, BreakGlass: true},
		tokPrivacy:   {Name: "privacy-officer", Read: []string{server.AccessStream}},
	}
}

// patientOwnStream reports whether stream belongs to patient id's own reads.
func patientOwnStream(stream, id string) bool {
	return stream == "patient/"+id || strings.HasPrefix(stream, "patient/"+id+"/")
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// storedHead is what the tests look at of a stored event.
type storedHead struct {
	Stream  string `json:"stream"`
	Patient string `json:"patient"`
}

func head(t testing.TB, rec []byte) storedHead {
	t.Helper()
	var h storedHead
	if err := json.Unmarshal(rec, &h); err != nil {
		t.Fatalf("stored event %s: %v", rec, err)
	}
	return h
}

// pagesOf reads every page of GET /v1/events?q as token, in log order.
func (s *testServer) pagesOf(t testing.TB, token string, q url.Values) [][]byte {
	t.Helper()
	var all [][]byte
	q.Set("limit", "7")
	for {
		r := s.do(t, http.MethodGet, "/v1/events?"+q.Encode(), token, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("GET /v1/events?%s: %v", q.Encode(), r)
		}
		var rep struct {
			Events []json.RawMessage `json:"events"`
			Next   string            `json:"next"`
		}
		if err := json.Unmarshal(r.Body, &rep); err != nil {
			t.Fatalf("query answer: %v", err)
		}
		for _, e := range rep.Events {
			all = append(all, e)
		}
		if rep.Next == "" {
			return all
		}
		q.Set("after", rep.Next)
	}
}

// TestPatientPrincipalReadsOnlyItsOwn drives clinicians' reads of random
// patients (by patient, by stream, broad queries that fan out into
// per-patient records, reads by index, emergency reads) and then checks
// every way a patient's own principal reads against what the log holds.
func TestPatientPrincipalReadsOnlyItsOwn(t *testing.T) {
	for seed := range uint64(3) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			s := start(t, withPrincipals(patientPrincipals()))
			rng := rand.New(rand.NewPCG(seed, 7))
			patients := []string{"1", "10", "1.1", "2", "11"}
			var evs []trail.Event
			for i := range 60 {
				pt := patients[rng.IntN(len(patients))]
				e := event(fmt.Sprintf("e%d-%d", seed, i), "patient/"+pt)
				switch rng.IntN(4) {
				case 0:
					e.Stream += "/labs"
				case 1:
					e.Stream = "ward/3" // another stream naming the patient
				}
				e.Patient = pt
				evs = append(evs, e)
			}
			s.appendBatch(t, evs...)
			for range 25 {
				pt := patients[rng.IntN(len(patients))]
				var path string
				switch rng.IntN(5) {
				case 0:
					path = "/v1/events?patient=" + pt
				case 1:
					path = "/v1/events?stream=patient/" + pt
				case 2:
					path = "/v1/events?type=" + evs[0].Type // every patient's: one record per patient
				case 3:
					path = fmt.Sprintf("/v1/events/%d", rng.IntN(len(evs)))
				case 4:
					path = "/v1/events?patient=" + pt + "&purpose=emergency&reason=code+blue"
				}
				if r := s.do(t, http.MethodGet, path, tokDoctor, nil); r.Status != http.StatusOK {
					t.Fatalf("doctor GET %s: %v", path, r)
				}
			}
			size := s.l.Size()
			// What the log holds: patient 1's own events and the read
			// records naming patient 1, up to now.
			wantOwn, wantAccess := 0, map[string]bool{}
			for i := range size {
				rec := s.stored(t, i)
				h := head(t, rec)
				switch {
				case patientOwnStream(h.Stream, "1"):
					wantOwn++
				case h.Stream == server.AccessStream && h.Patient == "1":
					wantAccess[string(rec)] = true
				}
			}
			if len(wantAccess) == 0 {
				t.Fatalf("no read record names patient 1: the reads did not cover it")
			}

			// Everything it may see without a filter: its own streams only.
			own := s.pagesOf(t, tokPatient1, url.Values{"until": {"2100-01-01T00:00:00Z"}})
			for _, rec := range own {
				if h := head(t, rec); !patientOwnStream(h.Stream, "1") {
					t.Fatalf("patient 1's unfiltered query returned an event of %s (patient %q)", h.Stream, h.Patient)
				}
			}
			if len(own) != wantOwn {
				t.Errorf("patient 1's unfiltered query returned %d events, want its %d", len(own), wantOwn)
			}

			// The read records naming it: all of them, and no other.
			got := s.pagesOf(t, tokPatient1, url.Values{"stream": {server.AccessStream}, "patient": {"1"}})
			seen := 0
			for _, rec := range got {
				h := head(t, rec)
				if h.Stream != server.AccessStream || h.Patient != "1" {
					t.Fatalf("patient 1's read of its read records returned %s patient %q", h.Stream, h.Patient)
				}
				if wantAccess[string(rec)] {
					seen++
				}
			}
			if seen != len(wantAccess) {
				t.Errorf("patient 1 found %d of the %d read records naming it", seen, len(wantAccess))
			}
			// Descending too, with another principal's filters.
			desc := s.pagesOf(t, tokPatient1, url.Values{"stream": {server.AccessStream}, "patient": {"1"}, "order": {"desc"}, "actor": {"dr-house"}})
			for _, rec := range desc {
				if h := head(t, rec); h.Patient != "1" {
					t.Fatalf("descending read of its records returned patient %q", h.Patient)
				}
			}

			// Refused: other patients, the whole of trail/access, Trail's
			// other streams, a stream head, a tail of trail/access.
			for _, path := range []string{
				"/v1/events?stream=" + server.AccessStream,
				"/v1/events?stream=" + server.AccessStream + "&patient=10",
				"/v1/events?stream=" + server.AccessStream + "&patient=1.1",
				"/v1/events?stream=" + server.AccessStream + "&patient=",
				"/v1/events?stream=patient/10",
				"/v1/events?stream=patient/1.1",
				"/v1/events?stream=ward/3&patient=1",
				"/v1/events?stream=" + server.BreakGlassStream + "&patient=1",
				"/v1/streams/" + server.AccessStream,
				"/v1/tail?stream=" + server.AccessStream,
			} {
				r := s.do(t, http.MethodGet, path, tokPatient1, nil)
				if r.Status != http.StatusForbidden && r.Status != http.StatusBadRequest {
					t.Errorf("patient 1 GET %s: %v, want 403", path, r)
				}
			}
			r := s.do(t, http.MethodGet, "/v1/events?stream="+server.AccessStream, tokPatient1, nil)
			wantProblem(t, r, http.StatusForbidden, "stream=trail/access&patient=1")

			// By index: a read record naming patient 1 and its proof, yes;
			// one naming another patient, or none, no.
			checked := map[string]bool{}
			for i := range size {
				rec := s.stored(t, i)
				h := head(t, rec)
				kind := "other"
				switch {
				case patientOwnStream(h.Stream, "1"):
					kind = "own"
				case h.Stream == server.AccessStream && h.Patient == "1":
					kind = "own-access"
				case h.Stream == server.AccessStream:
					kind = "access"
				}
				if checked[kind] && rng.IntN(4) != 0 {
					continue
				}
				checked[kind] = true
				r := s.do(t, http.MethodGet, fmt.Sprintf("/v1/events/%d", i), tokPatient1, nil)
				want := http.StatusForbidden
				if kind == "own" || kind == "own-access" {
					want = http.StatusOK
				}
				if r.Status != want {
					t.Errorf("patient 1 GET /v1/events/%d (%s %s, patient %q): %v, want %d", i, kind, h.Stream, h.Patient, r, want)
				}
				if r.Status == http.StatusOK && string(r.Body) != string(rec) {
					t.Errorf("patient 1 GET /v1/events/%d: not the stored bytes", i)
				}
			}
			for _, k := range []string{"own", "own-access", "access", "other"} {
				if !checked[k] {
					t.Errorf("no event of kind %s was read by index", k)
				}
			}

			// Through FHIR: its own streams' events of patient 1, none of
			// another patient's, none of another stream naming it.
			var wantFHIR []string
			for _, e := range evs {
				if patientOwnStream(e.Stream, "1") {
					wantFHIR = append(wantFHIR, e.ID)
				}
			}
			b := wantBundle(t, s.fhirDo(t, "GET", "/fhir/AuditEvent?patient=Patient/1&_count=100", tokPatient1, nil), 200)
			if got := b.ids(t); fmt.Sprint(sorted(got)) != fmt.Sprint(sorted(wantFHIR)) {
				t.Errorf("patient 1's FHIR search returned %v, want %v", sorted(got), sorted(wantFHIR))
			}
			for _, q := range []string{"patient=Patient/10", "patient=Patient/1.1", "_count=100"} {
				for _, id := range wantBundle(t, s.fhirDo(t, "GET", "/fhir/AuditEvent?"+q, tokPatient1, nil), 200).ids(t) {
					if !slices.Contains(wantFHIR, id) {
						t.Errorf("patient 1's FHIR search %s returned %s, not its own", q, id)
					}
				}
			}

			// The other patient, whose id starts as this one's, sees none
			// of patient 1's.
			for _, rec := range s.pagesOf(t, tokPatient10, url.Values{}) {
				if h := head(t, rec); !patientOwnStream(h.Stream, "10") {
					t.Fatalf("patient 10's query returned %s", h.Stream)
				}
			}
			for _, rec := range s.pagesOf(t, tokPatient10, url.Values{"stream": {server.AccessStream}, "patient": {"10"}}) {
				if h := head(t, rec); h.Patient != "10" {
					t.Fatalf("patient 10's read records returned patient %q", h.Patient)
				}
			}
		})
	}
}

// TestPatientReadsAreRecorded: a patient's own reads are recorded like any
// read, naming its patient, and a clinician's grant of patient/* does not
// open trail/access.
func TestPatientReadsAreRecorded(t *testing.T) {
	s := start(t, withPrincipals(patientPrincipals()))
	e := event("p1", "patient/1")
	e.Patient = "1"
	s.appendOne(t, e)
	from := s.l.Size()
	if r := s.do(t, http.MethodGet, "/v1/events?stream="+server.AccessStream+"&patient=1", tokPatient1, nil); r.Status != http.StatusOK {
		t.Fatalf("patient's read of its read records: %v", r)
	}
	rd := s.wantRead(t, from, "patient:1", trail.OutcomeSuccess, "GET /v1/events")
	if rd.Patient != "1" {
		t.Errorf("the patient's read names patient %q, want 1", rd.Patient)
	}
	from = s.l.Size()
	r := s.do(t, http.MethodGet, "/v1/events?stream="+server.AccessStream+"&patient=1", tokDoctor, nil)
	wantProblem(t, r, http.StatusForbidden, "dr-house")
	s.wantRead(t, from, "dr-house", trail.OutcomeMinorFailure, "GET /v1/events")
	// The privacy officer reads them all.
	if r := s.do(t, http.MethodGet, "/v1/events?stream="+server.AccessStream, tokPrivacy, nil); r.Status != http.StatusOK {
		t.Fatalf("privacy officer's read of trail/access: %v", r)
	}
}
