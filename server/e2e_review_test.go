package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server"
)

// Principals of the review tests, by token.
const (
	tokClinician = "tok-clinician" // dr-grey: break-glass
	tokOfficer   = "tok-officer"   // officer: review
	tokOfficer2  = "tok-officer2"  // officer-2: review
	tokBoth      = "tok-both"      // dr-who: break-glass and review
	tokClerk     = "tok-clerk"     // clerk: reads patient/*, no review
)

func reviewPrincipals() map[string]*server.Principal {
	return map[string]*server.Principal{
		tokClinician: {Name: "dr-grey", BreakGlass: true},
		tokOfficer:   {Name: "officer", Review: true},
		tokOfficer2:  {Name: "officer-2", Review: true},
		tokBoth:      {Name: "dr-who", BreakGlass: true, Review: true},
		tokClerk:     {Name: "clerk", Read: []string{"patient/*"}},
	}
}

// emergencyRead makes an emergency read of patient/<patient> with token and
// returns the index of its record in trail/break-glass.
func (s *testServer) emergencyRead(t testing.TB, token, patient string) uint64 {
	t.Helper()
	from := s.l.Size()
	r := s.do(t, http.MethodGet, "/v1/events?stream=patient/"+patient+"&purpose=emergency&reason=cardiac+arrest", token, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("emergency read: %v, want 200", r)
	}
	for i, end := from, s.l.Size(); i < end; i++ {
		if st, _ := trail.RecordStream(s.stored(t, i)); st == server.BreakGlassStream {
			return i
		}
	}
	t.Fatalf("emergency read left no record in %s", server.BreakGlassStream)
	return 0
}

// reviewBody is the JSON of POST /v1/reviews.
func reviewBody(index uint64, note string) []byte {
	b, _ := json.Marshal(map[string]any{"index": index, "note": note})
	return b
}

// storedMark is a mark of trail/review as stored.
type storedMark struct {
	ID      string `json:"id"`
	Stream  string `json:"stream"`
	Type    string `json:"type"`
	Action  string `json:"action"`
	Outcome string `json:"outcome"`
	Patient string `json:"patient"`
	Actor   struct {
		ID string `json:"id"`
	} `json:"actor"`
	Details struct {
		Index uint64 `json:"index"`
		ID    string `json:"id"`
		Note  string `json:"note"`
	} `json:"details"`
}

// TestReviewMarksBreakGlassRecord: a reviewer's mark is one record of
// trail/review naming the reviewer as actor, the reviewed record (index and
// id), its patient and the note; the review itself is not a read (nothing in
// trail/access); a second reviewer may add a mark of their own.
func TestReviewMarksBreakGlassRecord(t *testing.T) {
	s := start(t, withPrincipals(reviewPrincipals()))
	s.appendOne(t, event("", "patient/42"))
	bg := s.emergencyRead(t, tokClinician, "42")
	var bgRec struct {
		ID string `json:"id"`
	}
	json.Unmarshal(s.stored(t, bg), &bgRec)

	for _, rv := range []struct{ token, name, note string }{
		{tokOfficer, "officer", "justified: patient in cardiac arrest, ER"},
		{tokOfficer2, "officer-2", "agreed; asked dr-grey to note it in the chart ✓"},
	} {
		size := s.l.Size()
		rc := wantReceipt(t, s.do(t, http.MethodPost, "/v1/reviews", rv.token, reviewBody(bg, rv.note)), http.StatusCreated)
		if rc.Stream != server.ReviewStream || rc.Index != size {
			t.Errorf("receipt %+v: want stream %s at index %d", rc, server.ReviewStream, size)
		}
		if got := s.l.Size(); got != size+1 {
			t.Errorf("a review stored %d events, want its mark only (a review is not a read)", got-size)
		}
		var m storedMark
		if err := json.Unmarshal(s.stored(t, rc.Index), &m); err != nil {
			t.Fatal(err)
		}
		if m.Stream != server.ReviewStream || m.Type != "break-glass.review" || m.Action != "C" || m.Outcome != "success" ||
			m.Actor.ID != rv.name || m.Patient != "42" || m.ID != rc.ID ||
			m.Details.Index != bg || m.Details.ID != bgRec.ID || m.Details.Note != rv.note {
			t.Errorf("mark %s, want %s by %q of event %d (%s), patient 42, note %q", s.stored(t, rc.Index), server.ReviewStream, rv.name, bg, bgRec.ID, rv.note)
		}
	}
}

// TestReviewNeedsGrant: without the review grant (a reader, a break-glass
// clinician) a review is 403 naming the grant, and stores nothing; the
// admin has every grant.
func TestReviewNeedsGrant(t *testing.T) {
	s := start(t, withPrincipals(reviewPrincipals()))
	s.appendOne(t, event("", "patient/42"))
	bg := s.emergencyRead(t, tokClinician, "42")
	for _, tok := range []string{tokClerk, tokClinician} {
		size := s.l.Size()
		wantProblem(t, s.do(t, http.MethodPost, "/v1/reviews", tok, reviewBody(bg, "fine")), http.StatusForbidden, "review grant", "--review")
		s.wantUnchanged(t, size)
	}
	wantProblem(t, s.do(t, http.MethodPost, "/v1/reviews", "", reviewBody(bg, "fine")), http.StatusUnauthorized)
	wantReceipt(t, s.do(t, http.MethodPost, "/v1/reviews", admin, reviewBody(bg, "admin implies review")), http.StatusCreated)
}

// TestReviewNotOwn: a reviewer who also holds break-glass cannot review
// their own emergency access (403 saying why, nothing stored); another
// reviewer can.
func TestReviewNotOwn(t *testing.T) {
	s := start(t, withPrincipals(reviewPrincipals()))
	s.appendOne(t, event("", "patient/7"))
	own := s.emergencyRead(t, tokBoth, "7")
	size := s.l.Size()
	wantProblem(t, s.do(t, http.MethodPost, "/v1/reviews", tokBoth, reviewBody(own, "all fine, trust me")), http.StatusForbidden, "own emergency access")
	s.wantUnchanged(t, size)
	wantReceipt(t, s.do(t, http.MethodPost, "/v1/reviews", tokOfficer, reviewBody(own, "checked with the ward")), http.StatusCreated)
	// dr-who may review someone else's.
	other := s.emergencyRead(t, tokClinician, "7")
	wantReceipt(t, s.do(t, http.MethodPost, "/v1/reviews", tokBoth, reviewBody(other, "justified")), http.StatusCreated)
}

// TestReviewOnlyBreakGlassRecords: an event outside trail/break-glass (a
// patient's event, the read record in trail/access, a mark) is refused
// naming index; past the end of the log is 404; nothing is stored.
func TestReviewOnlyBreakGlassRecords(t *testing.T) {
	s := start(t, withPrincipals(reviewPrincipals()))
	pe := s.appendOne(t, event("", "patient/42"))
	bg := s.emergencyRead(t, tokClinician, "42")
	mark := wantReceipt(t, s.do(t, http.MethodPost, "/v1/reviews", tokOfficer, reviewBody(bg, "ok")), http.StatusCreated)
	var accessRec uint64
	for i := range s.l.Size() {
		if st, _ := trail.RecordStream(s.stored(t, i)); st == server.AccessStream {
			accessRec = i
		}
	}
	for _, i := range []uint64{pe.Index, accessRec, mark.Index} {
		size := s.l.Size()
		p := wantProblem(t, s.do(t, http.MethodPost, "/v1/reviews", tokOfficer, reviewBody(i, "ok")), http.StatusBadRequest,
			fmt.Sprintf("event %d is not an emergency access", i), server.BreakGlassStream)
		if len(p.Errors) != 1 || p.Errors[0].Field != "index" {
			t.Errorf("errors %+v, want one naming index", p.Errors)
		}
		if strings.Contains(p.Detail, "patient/42") || strings.Contains(p.Detail, server.AccessStream) {
			t.Errorf("detail %q names the stream of event %d", p.Detail, i)
		}
		s.wantUnchanged(t, size)
	}
	size := s.l.Size()
	wantProblem(t, s.do(t, http.MethodPost, "/v1/reviews", tokOfficer, reviewBody(size+5, "ok")), http.StatusNotFound, "no event")
	s.wantUnchanged(t, size)
}

// TestReviewBadBodies: every malformed body is 400 naming the field at
// fault, and stores nothing. The body cannot name the actor: unknown
// fields are refused.
func TestReviewBadBodies(t *testing.T) {
	s := start(t, withPrincipals(reviewPrincipals()))
	s.appendOne(t, event("", "patient/42"))
	bg := s.emergencyRead(t, tokClinician, "42")
	n := fmt.Sprint(bg)
	for _, tc := range []struct{ name, body, field string }{
		{"actor", `{"index":` + n + `,"note":"ok","actor":{"id":"officer-2"}}`, "actor"},
		{"unknown", `{"index":` + n + `,"note":"ok","reviewer":"x"}`, "reviewer"},
		{"no index", `{"note":"ok"}`, "index"},
		{"index text", `{"index":"` + n + `","note":"ok"}`, "index"},
		{"index negative", `{"index":-1,"note":"ok"}`, "index"},
		{"no note", `{"index":` + n + `}`, "note"},
		{"null note", `{"index":` + n + `,"note":null}`, "note"},
		{"empty note", `{"index":` + n + `,"note":""}`, "note"},
		{"blank note", `{"index":` + n + `,"note":" \t\u200b "}`, "note"},
		{"note not text", `{"index":` + n + `,"note":42}`, "note"},
		{"note too long", `{"index":` + n + `,"note":"` + strings.Repeat("é", 2049) + `"}`, "note"},
		{"note invalid UTF-8", `{"index":` + n + `,"note":"ok ` + "\xff" + `"}`, "note"},
		{"note lone surrogate", `{"index":` + n + `,"note":"ok \ud800"}`, "note"},
		{"note lone low surrogate", `{"index":` + n + `,"note":"ok \udc00 x"}`, "note"},
		{"note NUL", `{"index":` + n + `,"note":"ok \u0000"}`, "note"},
		{"not JSON", `index=` + n + `&note=ok`, "(body)"},
		{"two objects", `{"index":` + n + `,"note":"ok"} {}`, "(body)"},
		{"empty", ``, "(body)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			size := s.l.Size()
			p := wantProblem(t, s.do(t, http.MethodPost, "/v1/reviews", tokOfficer, []byte(tc.body)), http.StatusBadRequest, "nothing was stored")
			if len(p.Errors) != 1 || p.Errors[0].Field != tc.field {
				t.Errorf("errors %+v, want one naming %s", p.Errors, tc.field)
			}
			s.wantUnchanged(t, size)
		})
	}
	size := s.l.Size()
	huge := `{"index":` + n + `,"note":"` + strings.Repeat(`\u00e9`, 5000) + `"}`
	wantProblem(t, s.do(t, http.MethodPost, "/v1/reviews", tokOfficer, []byte(huge)), http.StatusRequestEntityTooLarge, "at most 4096 bytes")
	s.wantUnchanged(t, size)
	// The limits' edges are accepted: 4 KiB of note, a surrogate pair.
	for _, note := range []string{strings.Repeat("é", 2048), `ok \ud83d\ude00`} {
		body := `{"index":` + n + `,"note":"` + note + `"}`
		wantReceipt(t, s.do(t, http.MethodPost, "/v1/reviews", tokOfficer, []byte(body)), http.StatusCreated)
	}
}

// TestReviewerReads: the review grant opens trail/break-glass and
// trail/review and nothing else of trail/ (nor patients' streams); its reads
// are recorded as any read; an unfiltered query returns only those two
// streams.
func TestReviewerReads(t *testing.T) {
	s := start(t, withPrincipals(reviewPrincipals()))
	s.appendOne(t, event("", "patient/42"))
	bg := s.emergencyRead(t, tokClinician, "42")
	wantReceipt(t, s.do(t, http.MethodPost, "/v1/reviews", tokOfficer, reviewBody(bg, "ok")), http.StatusCreated)
	for _, st := range []string{server.BreakGlassStream, server.ReviewStream} {
		from := s.l.Size()
		r := s.do(t, http.MethodGet, "/v1/events?stream="+st, tokOfficer, nil)
		var page struct {
			Events []json.RawMessage `json:"events"`
			Next   string            `json:"next"`
		}
		wantJSON(t, r, http.StatusOK, &page)
		if len(page.Events) != 1 {
			t.Errorf("reviewer's query of %s: %d events, want 1", st, len(page.Events))
		}
		rec := s.wantRead(t, from, "officer", "success", "GET /v1/events")
		if rec.Details.Count != 1 {
			t.Errorf("read record of %s counts %d events, want 1", st, rec.Details.Count)
		}
	}
	from := s.l.Size()
	if r := s.do(t, http.MethodGet, fmt.Sprintf("/v1/events/%d", bg), tokOfficer, nil); r.Status != http.StatusOK || string(r.Body) != string(s.stored(t, bg)) {
		t.Errorf("reviewer's get of break-glass record %d: %v", bg, r)
	}
	s.wantRead(t, from, "officer", "success", "GET /v1/events/{index}")
	for _, st := range []string{server.AccessStream, "trail/other", "patient/42"} {
		from := s.l.Size()
		wantProblem(t, s.do(t, http.MethodGet, "/v1/events?stream="+st, tokOfficer, nil), http.StatusForbidden, "no read grant", st)
		s.wantRead(t, from, "officer", "minor-failure", "GET /v1/events")
	}
	var all struct {
		Events []json.RawMessage `json:"events"`
		Next   string            `json:"next"`
	}
	wantJSON(t, s.do(t, http.MethodGet, "/v1/events?limit=1000", tokOfficer, nil), http.StatusOK, &all)
	seen := map[string]int{}
	for _, e := range all.Events {
		st, _ := trail.RecordStream(e)
		seen[st]++
	}
	if len(seen) != 2 || seen[server.BreakGlassStream] != 1 || seen[server.ReviewStream] != 1 {
		t.Errorf("reviewer's unfiltered query returned streams %v, want one event each of %s and %s", seen, server.BreakGlassStream, server.ReviewStream)
	}
	// A clinician with break-glass still cannot open trail/break-glass.
	wantProblem(t, s.do(t, http.MethodGet, "/v1/events?stream="+server.BreakGlassStream+"&purpose=emergency&reason=x", tokClinician, nil), http.StatusForbidden)
}
