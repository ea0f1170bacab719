package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server"
)

// TestReadRecordRole: a principal's role in the tokens file (dr-house:
// physician) is the actor.role of every read record of its reads; a
// principal without one (er-doc) has no actor.role, in trail/access nor in
// trail/break-glass. The patient page's "who accessed" table and the CSV
// show the role.
func TestReadRecordRole(t *testing.T) {
	e := startUI(t, server.ConsoleConfig{})
	mxAppend(t, e.l, mxEvent("patient/role-1", "role-1", "nurse-1"))
	for _, r := range []struct{ who, path string }{
		{"dr-house", "/v1/events?patient=role-1&purpose=treatment"},
		{"er-doc", "/v1/events?patient=role-1&purpose=emergency&reason=unconscious"},
		{"dr-house", "/v1/events?stream=patient/role-1"},
	} {
		if st := e.apiRead(t, r.who, r.path); st != http.StatusOK {
			t.Fatalf("%s GET %s: %d", r.who, r.path, st)
		}
	}
	res, err := e.l.Query(context.Background(), trail.Query{Stream: server.AccessStream, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	bg, err := e.l.Query(context.Background(), trail.Query{Stream: server.BreakGlassStream, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Events) != 3 || len(bg.Events) != 1 {
		t.Fatalf("%d read records and %d emergency copies, want 3 and 1", len(res.Events), len(bg.Events))
	}
	for _, b := range append(res.Events, bg.Events...) {
		r := parseUIRecord(t, b)
		want := map[string]string{"dr-house": "physician"}[r.Actor.ID]
		if r.Actor.Role != want {
			t.Errorf("read record of %s has actor.role %q, want %q: %s", r.Actor.ID, r.Actor.Role, want, b)
		}
		if want == "" && strings.Contains(string(b), `"role"`) {
			t.Errorf("read record of %s, who has no role, names one: %s", r.Actor.ID, b)
		}
	}

	b := e.browser(t)
	b.signIn(e.tokens["officer"])
	p := b.get("/ui/patient?patient=role-1")
	if n := strings.Count(p.body, `<td data-label="Role">physician</td>`); p.status != http.StatusOK || n != 2 {
		t.Errorf("who accessed patient role-1: %d rows show the role physician, want dr-house's 2: %.4000s", n, p.body)
	}
	csv := b.get("/ui/patient/access.csv?patient=role-1")
	if csv.status != http.StatusOK || strings.Count(csv.body, ",dr-house,physician,") != 2 || !strings.Contains(csv.body, ",er-doc,,emergency,") {
		t.Errorf("CSV of patient role-1: %d\n%s\nwant dr-house's 2 rows with role physician, er-doc's without", csv.status, csv.body)
	}
}
