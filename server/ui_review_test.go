package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server"
)

// marks returns the marks stored in trail/review, oldest first.
func (e *uiEnv) marks(t testing.TB) []storedMark {
	t.Helper()
	res, err := e.l.Query(context.Background(), trail.Query{Stream: server.ReviewStream, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]storedMark, len(res.Events))
	for i, b := range res.Events {
		if err := json.Unmarshal(b, &out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// breakGlass returns the indexes of the records of trail/break-glass.
func (e *uiEnv) breakGlass(t testing.TB) []uint64 {
	t.Helper()
	res, err := e.l.Query(context.Background(), trail.Query{Stream: server.BreakGlassStream, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var out []uint64
	for _, b := range res.Events {
		i, _ := trail.RecordIndex(b)
		out = append(out, i)
	}
	return out
}

// TestConsoleReview: an emergency read shows on the review page as
// unreviewed; a reviewer marks it with a note and it moves behind the
// unreviewed ones, marked; the note is in trail/review under the
// reviewer's name. A blank note and a form without its CSRF token store
// nothing; nobody reviews their own emergency access; a principal without
// the grant is told which grant it lacks and is not offered the page.
func TestConsoleReview(t *testing.T) {
	e := startUI(t, server.ConsoleConfig{})
	mxAppend(t, e.l, mxEvent("patient/7", "7", "nurse-1"), mxEvent("patient/8", "8", "nurse-1"))
	for _, who := range []string{"er-doc", "er-reviewer", "er-doc"} {
		pt := map[string]string{"er-doc": "7", "er-reviewer": "8"}[who]
		if st := e.apiRead(t, who, "/v1/events?stream=patient/"+pt+"&purpose=emergency&reason=cardiac+arrest"); st != http.StatusOK {
			t.Fatalf("%s's emergency read: %d", who, st)
		}
	}
	bg := e.breakGlass(t)
	if len(bg) != 3 {
		t.Fatalf("%d break-glass records, want 3", len(bg))
	}

	b := e.browser(t)
	b.signIn(e.tokens["reviewer"])
	p := b.get("/ui/reviews")
	if p.status != http.StatusOK || !strings.Contains(p.body, "3 unreviewed") {
		t.Fatalf("review page: %d, want 3 unreviewed: %.2000s", p.status, p.body)
	}
	if !strings.Contains(p.body, `href="/ui/reviews" aria-current="page"`) {
		t.Errorf("the reviewer's navigation does not offer the review page")
	}
	// The newest first: the second er-doc read, then er-reviewer's, then
	// the first.
	order := func(p uiPage) []uint64 {
		var got []uint64
		for _, part := range strings.Split(p.body, `id="access-`)[1:] {
			var i uint64
			fmt.Sscanf(part, "%d", &i)
			if len(got) == 0 || got[len(got)-1] != i {
				got = append(got, i)
			}
		}
		return got
	}
	if got := order(p); fmt.Sprint(got) != fmt.Sprint([]uint64{bg[2], bg[1], bg[0]}) {
		t.Errorf("review page lists %v, want newest first %v", got, []uint64{bg[2], bg[1], bg[0]})
	}

	// A blank note: 400, the field says why, nothing stored.
	tok := csrf(t, p)
	p = b.post("/ui/reviews", url.Values{"csrf": {tok}, "index": {fmt.Sprint(bg[2])}, "note": {" \u200b "}})
	if p.status != http.StatusBadRequest || !strings.Contains(p.body, `aria-invalid="true"`) || !strings.Contains(p.body, "no visible text") {
		t.Errorf("blank note: %d, want 400 with the field marked: %.1500s", p.status, p.body)
	}
	// No CSRF token: 403, nothing stored.
	p = b.post("/ui/reviews", url.Values{"index": {fmt.Sprint(bg[2])}, "note": {"fine"}})
	if p.status != http.StatusForbidden {
		t.Errorf("review without the CSRF token: %d, want 403", p.status)
	}
	if m := e.marks(t); len(m) != 0 {
		t.Fatalf("refused reviews stored marks: %+v", m)
	}

	note := "Justified: <arrest> in the ER, confirmed with the attending"
	p = b.post("/ui/reviews", url.Values{"csrf": {tok}, "index": {fmt.Sprint(bg[2])}, "note": {note}})
	if p.status != http.StatusOK || p.url.Query().Get("done") != fmt.Sprint(bg[2]) || !strings.Contains(p.body, "2 unreviewed") {
		t.Fatalf("review: %d at %s, want the page with 2 unreviewed: %.1500s", p.status, p.url, p.body)
	}
	if !strings.Contains(p.body, html.EscapeString(note)) {
		t.Errorf("the page does not show the note, escaped")
	}
	if got := order(p); fmt.Sprint(got) != fmt.Sprint([]uint64{bg[1], bg[0], bg[2]}) {
		t.Errorf("after the review the page lists %v, want the unreviewed first %v", got, []uint64{bg[1], bg[0], bg[2]})
	}
	m := e.marks(t)
	if len(m) != 1 || m[0].Actor.ID != "reviewer" || m[0].Details.Note != note || m[0].Details.Index != bg[2] {
		t.Fatalf("trail/review holds %+v, want one mark of event %d by reviewer with the note", m, bg[2])
	}

	// er-reviewer may review er-doc's access, not its own.
	b2 := e.browser(t)
	b2.signIn(e.tokens["er-reviewer"])
	p = b2.get("/ui/reviews")
	if !strings.Contains(p.body, "your own emergency access") {
		t.Errorf("er-reviewer's page does not say which access is its own")
	}
	if strings.Count(p.body, `name="note"`) != 2 {
		t.Errorf("er-reviewer's page offers %d review forms, want 2 (not for its own)", strings.Count(p.body, `name="note"`))
	}
	p = b2.post("/ui/reviews", url.Values{"csrf": {csrf(t, p)}, "index": {fmt.Sprint(bg[1])}, "note": {"mine is fine"}})
	if p.status != http.StatusForbidden || !strings.Contains(p.body, "nobody reviews their own") {
		t.Errorf("own review: %d, want 403 saying why: %.1500s", p.status, p.body)
	}
	if m := e.marks(t); len(m) != 1 {
		t.Errorf("own review stored a mark: %+v", m)
	}

	// Without the grant: denied, naming it, and no link.
	b3 := e.browser(t)
	p = b3.signIn(e.tokens["dr-house"])
	if strings.Contains(p.body, `href="/ui/reviews"`) {
		t.Errorf("dr-house's navigation offers the review page")
	}
	p = b3.get("/ui/reviews")
	if p.status != http.StatusForbidden || !strings.Contains(p.body, "review grant") {
		t.Errorf("review page without the grant: %d: %.1500s", p.status, p.body)
	}
	p = b3.post("/ui/reviews", url.Values{"csrf": {csrf(t, p)}, "index": {fmt.Sprint(bg[0])}, "note": {"ok"}})
	if p.status != http.StatusForbidden || len(e.marks(t)) != 1 {
		t.Errorf("review without the grant: %d, marks %d", p.status, len(e.marks(t)))
	}
}

// TestConsoleMyRecord: a patient's own principal signs in to its record:
// its events and every read of them, nothing of another patient (not even
// one whose id starts the same); the Patient page for another patient
// shows nothing and its accesses are refused.
func TestConsoleMyRecord(t *testing.T) {
	e := startUI(t, server.ConsoleConfig{})
	mine := mxEvent("patient/7", "7", "nurse-mine")
	mine.Type = "lab-result.create"
	theirs := mxEvent("patient/70", "70", "nurse-theirs")
	theirs.Type = "prescription.create"
	mxAppend(t, e.l, mine, theirs)
	for _, path := range []string{"/v1/events?patient=7", "/v1/events?stream=patient/70"} {
		if st := e.apiRead(t, "dr-house", path); st != http.StatusOK {
			t.Fatalf("dr-house GET %s: %d", path, st)
		}
	}
	b := e.browser(t)
	p := b.signInTo(e.tokens["patient-7"], "/ui/me")
	if !strings.Contains(p.body, "My record") || !strings.Contains(p.body, "lab-result.create") || !strings.Contains(p.body, "dr-house") {
		t.Errorf("my record lacks its events or the clinician's read: %.3000s", p.body)
	}
	for _, leak := range []string{"prescription.create", "nurse-theirs", "patient/70", "=70"} {
		if strings.Contains(p.body, leak) {
			t.Errorf("patient 7's page shows %q", leak)
		}
	}
	if strings.Contains(p.body, `href="/ui/search"`) {
		t.Errorf("a patient's navigation offers the search page")
	}
	csv := b.get("/ui/patient/access.csv?patient=7")
	if csv.status != http.StatusOK || !strings.Contains(csv.body, "dr-house") || strings.Contains(csv.body, "=70") || strings.Contains(csv.body, "patient/70") {
		t.Errorf("patient 7's CSV: %d %s", csv.status, csv.body)
	}
	p = b.get("/ui/patient?patient=70")
	if strings.Contains(p.body, "prescription.create") || !strings.Contains(p.body, "Access denied") {
		t.Errorf("patient 7 opening patient 70: %d %.3000s", p.status, p.body)
	}
	if csv := b.get("/ui/patient/access.csv?patient=70"); csv.status != http.StatusForbidden {
		t.Errorf("patient 7 exporting patient 70's accesses: %d", csv.status)
	}
	// A clinician has no "my record".
	b2 := e.browser(t)
	b2.signIn(e.tokens["dr-house"])
	if p := b2.get("/ui/me"); p.status != http.StatusForbidden || !strings.Contains(p.body, "not a patient") {
		t.Errorf("dr-house's /ui/me: %d", p.status)
	}
}

// TestConsoleTimelineCountsOnlyEvents: the officer (who reads trail/access)
// opens a patient; the timeline's read record counts the patient's events,
// not the read records naming the patient, which are the list of accesses.
func TestConsoleTimelineCountsOnlyEvents(t *testing.T) {
	e := startUI(t, server.ConsoleConfig{})
	mxAppend(t, e.l, mxEvent("patient/7", "7", "nurse-1"), mxEvent("patient/7", "7", "nurse-2"))
	for range 3 {
		e.apiRead(t, "dr-house", "/v1/events?patient=7")
	}
	b := e.browser(t)
	b.signIn(e.tokens["officer"])
	if p := b.get("/ui/patient?patient=7"); p.status != http.StatusOK {
		t.Fatalf("officer's patient page: %d", p.status)
	}
	for _, r := range e.accessRecords(t, "7") {
		if r.Actor.ID == "officer" && r.Details.Params["stream"] == "" {
			if r.Details.Count != 2 {
				t.Errorf("the timeline's read record counts %d events, want the patient's 2", r.Details.Count)
			}
			return
		}
	}
	t.Fatalf("no record of the officer's timeline read")
}
