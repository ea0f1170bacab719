package server_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server"
)

// Tokens of the principals of the grant tests.
const (
	clinicianToken = "trail_clinician"
	patientToken   = "trail_patient1"
)

func grantPrincipals() map[string]*server.Principal {
	return map[string]*server.Principal{
		clinicianToken: {Name: "dr-grey", Read: []string{"patient/1", "ward/*"}, Append: []string{"patient/*"}},
		patientToken:   {Name: "patient-1", Read: []string{"patient/1"}},
	}
}

// TestGrants: a principal appends and reads only the streams it is granted;
// other filters than stream= silently leave out what it may not read.
func TestGrants(t *testing.T) {
	t.Parallel()
	s := start(t, withPrincipals(grantPrincipals()))
	streams := []string{"patient/1", "patient/2", "ward/7", "ward", "ward/7/bed/2", "patient/1"}
	var rcs []trail.Receipt
	for i, st := range streams {
		e := event(fmt.Sprintf("gr-%d", i), st)
		e.Patient = "p1"
		rcs = append(rcs, s.appendOne(t, e))
	}
	// readable by the clinician: patient/1 and everything below ward/.
	clinician := []uint64{0, 2, 4, 5}

	t.Run("append", func(t *testing.T) {
		size := s.l.Size()
		r := s.do(t, http.MethodPost, "/v1/events", clinicianToken, encode(t, event("gr-a1", "patient/9/labs")))
		wantReceipt(t, r, http.StatusCreated)
		size++
		for _, st := range []string{"patient", "ward/7", "auth/login"} {
			r := s.do(t, http.MethodPost, "/v1/events", clinicianToken, encode(t, event("gr-x", st)))
			wantProblem(t, r, http.StatusForbidden, "append", st)
		}
		r = s.do(t, http.MethodPost, "/v1/events", patientToken, encode(t, event("gr-x", "patient/1")))
		wantProblem(t, r, http.StatusForbidden, "append")
		r = s.do(t, http.MethodPost, "/v1/batch", clinicianToken, ndjson(t, event("gr-b1", "patient/3"), event("gr-b2", "ward/7")))
		wantProblem(t, r, http.StatusForbidden, "append", "ward/7")
		s.wantUnchanged(t, size)
	})

	t.Run("query", func(t *testing.T) {
		idx, _ := s.tryQueryAs(t, clinicianToken, url.Values{"patient": {"p1"}, "limit": {"1000"}})
		if d := cmp.Diff(clinician, idx); d != "" {
			t.Errorf("patient=p1 (-readable +got):\n%s", d)
		}
		var paged []uint64
		params := url.Values{"patient": {"p1"}, "limit": {"1"}, "order": {"desc"}}
		for range 20 {
			idx, next := s.tryQueryAs(t, clinicianToken, params)
			paged = append(paged, idx...)
			if next == "" {
				break
			}
			params.Set("after", next)
		}
		if d := cmp.Diff([]uint64{5, 4, 2, 0}, paged); d != "" {
			t.Errorf("patient=p1 desc in pages of 1 (-readable +got):\n%s", d)
		}
		idx, _ = s.tryQueryAs(t, patientToken, url.Values{})
		if d := cmp.Diff([]uint64{0, 5}, idx); d != "" {
			t.Errorf("patient's own view (-readable +got):\n%s", d)
		}
		idx, _ = s.tryQueryAs(t, clinicianToken, url.Values{"stream": {"ward/7"}})
		if d := cmp.Diff([]uint64{2}, idx, cmpopts.EquateEmpty()); d != "" {
			t.Errorf("stream=ward/7 (-readable +got):\n%s", d)
		}
		for _, st := range []string{"patient/2", "ward", "trail/access"} {
			r := s.do(t, http.MethodGet, "/v1/events?stream="+st, clinicianToken, nil)
			wantProblem(t, r, http.StatusForbidden, "read", st)
		}
	})

	t.Run("get, proof and stream head", func(t *testing.T) {
		for i, rc := range rcs {
			readable := i == 0 || i == 2 || i == 4 || i == 5
			paths := []string{
				fmt.Sprintf("/v1/events/%d", rc.Index),
				fmt.Sprintf("/v1/events/%d/proof?size=%d", rc.Index, len(rcs)),
				"/v1/streams/" + rc.Stream,
			}
			for _, path := range paths {
				r := s.do(t, http.MethodGet, path, clinicianToken, nil)
				if readable && r.Status != http.StatusOK {
					t.Errorf("%s (%s): %v, want 200", path, rc.Stream, r)
				}
				if !readable && strings.HasPrefix(path, "/v1/events/") {
					// By index: the stream is not named, so indexes cannot
					// be mapped to streams.
					wantProblem(t, r, http.StatusForbidden, "read", "the stream of event")
				} else if !readable {
					wantProblem(t, r, http.StatusForbidden, "read", rc.Stream)
				}
			}
		}
	})

	t.Run("tail", func(t *testing.T) {
		r := s.do(t, http.MethodGet, "/v1/tail?stream=patient/2", clinicianToken, nil)
		wantProblem(t, r, http.StatusForbidden, "read", "patient/2")
		c := s.openTailAs(t, clinicianToken, "?after=0")
		before := s.l.Size()
		s.appendOne(t, event("gr-t1", "patient/2"))
		s.appendOne(t, event("gr-t2", "ward/9"))
		s.wantEvents(t, c, 2, 4, 5, before+1)
	})

	t.Run("admin reads trail/", func(t *testing.T) {
		r := s.get(t, "/v1/events?stream=trail/break-glass")
		if r.Status != http.StatusOK {
			t.Errorf("admin query of trail/break-glass: %v, want 200", r)
		}
	})
}

// tryQueryAs is query with a token.
func (s *testServer) tryQueryAs(t testing.TB, token string, params url.Values) ([]uint64, string) {
	t.Helper()
	idx, next, err := s.tryQueryWith(token, params)
	if err != nil {
		if token == admin {
			token = "the admin"
		}
		t.Fatalf("as %s: %v", token, err)
	}
	return idx, next
}
