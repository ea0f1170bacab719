package server

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/fhir"
)

// Bounds of the work one search page does: the engine is asked for chunks
// of events its indexes select (patient, action, outcome, the caller's
// streams), and each is matched against the other parameters; a page stops
// after searchBudget events were looked at, with a next link, even if it
// holds fewer than _count entries.
const (
	searchChunk  = 256
	searchBudget = 5000
	maxSearchIDs = 100
)

// capabilityStatement is the CapabilityStatement of the FHIR API.
func capabilityStatement() ([]byte, error) {
	return fhir.CapabilityStatement("Trail", "2026-12-07")
}

// fhirSearch serves GET /fhir/AuditEvent and POST /fhir/AuditEvent/_search
// (IHE ITI-81): a searchset Bundle with self and next links. Only events
// of streams the caller may read are found; the read is recorded in
// trail/access like every read.
func (s *Server) fhirSearch(w http.ResponseWriter, r *http.Request, p *Principal) *problem {
	vals, pr := searchValues(r)
	if pr != nil {
		return pr
	}
	sr, issues := fhir.ParseSearch(vals)
	if len(sr.Ignored) > 0 && strictHandling(r) {
		for _, n := range sr.Ignored {
			issues = append(issues, fhir.Issue{Severity: fhir.SeverityError, Code: "not-supported",
				Diagnostics: fmt.Sprintf("unknown search parameter %q (Prefer: handling=strict)", n), Expression: []string{n}})
		}
	}
	if len(sr.IDs) > maxSearchIDs {
		issues = append(issues, fhir.Issue{Severity: fhir.SeverityError, Code: fhir.CodeValue,
			Diagnostics: fmt.Sprintf("_id names %d ids; at most %d", len(sr.IDs), maxSearchIDs), Expression: []string{"_id"}})
	}
	if len(issues) > 0 {
		s.writeOutcome(w, http.StatusBadRequest, "fhir_search", issues)
		return nil
	}
	ps, pr := fhirParams(vals)
	if pr != nil {
		return pr
	}
	route := routeFHIRSearch
	if r.Method == http.MethodPost {
		route = routeFHIRSearchP
	}
	rd, pr := s.newRead(r, p, route, ps)
	if pr != nil {
		return pr
	}
	rd.patient = sr.PatientNamed
	page, pr := s.searchPage(r, rd, sr)
	if pr != nil {
		return pr
	}
	for _, m := range page.matches {
		rd.returned(m.rec)
	}
	if pr := rd.allow(len(page.matches)); pr != nil {
		return pr
	}
	b, err := searchBundle(r, vals, page, s.viewOptions())
	if err != nil {
		return s.internal("search bundle", err)
	}
	writeFHIR(w, http.StatusOK, b)
	return nil
}

// searchValues are a search's parameters: the query string's, and for
// POST _search the form body's too.
func searchValues(r *http.Request) (url.Values, *problem) {
	vals, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, badRequest("malformed query string: " + err.Error())
	}
	if r.Method != http.MethodPost {
		return vals, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10+1))
	if err != nil || len(body) > 64<<10 {
		return nil, badRequest("the _search form is unreadable or over 64 KiB")
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, badRequest("malformed _search form: " + err.Error())
	}
	for k, vs := range form {
		vals[k] = append(vals[k], vs...)
	}
	return vals, nil
}

// strictHandling reports whether the client asked for Prefer:
// handling=strict.
func strictHandling(r *http.Request) bool {
	for _, v := range r.Header.Values("Prefer") {
		for _, part := range strings.Split(v, ",") {
			if strings.EqualFold(strings.ReplaceAll(strings.TrimSpace(part), " ", ""), "handling=strict") {
				return true
			}
		}
	}
	return false
}

// searchMatch is one event a search found.
type searchMatch struct {
	rec  []byte
	se   trail.StoredEvent
	ae   *fhir.AuditEvent
	time time.Time
}

// searchResult is one page of a search: its matches and, when more may
// follow, the cursor of the next page.
type searchResult struct {
	matches []searchMatch
	next    *uint64
}

// searchPage finds one page: through ids for _id, else through the engine's
// query in log order from the cursor, with a bounded amount of work.
func (s *Server) searchPage(r *http.Request, rd *read, sr *fhir.Search) (searchResult, *problem) {
	var res searchResult
	if sr.IDs != nil {
		return s.searchIDs(r, rd, sr)
	}
	q := trail.Query{Patient: sr.Patient, Action: sr.Action, Outcome: sr.Outcome, Desc: sr.Desc, After: sr.Cursor,
		Readable: rd.readable(), Scope: rd.scope()}
	opt := s.viewOptions()
	for looked := 0; looked < searchBudget; {
		q.Limit = min(searchChunk, searchBudget-looked)
		qr, err := s.l.Query(r.Context(), q)
		if err != nil {
			return res, s.readProblem(err)
		}
		for i, rec := range qr.Events {
			looked++
			m, ok, pr := matchRecord(rec, sr, opt)
			if pr != nil {
				return res, pr
			}
			last := m.se.Index
			if ok {
				res.matches = append(res.matches, m)
			}
			if len(res.matches) == sr.Count && (i < len(qr.Events)-1 || qr.More) {
				res.next = &last
				sortPage(res.matches, sr.Desc)
				return res, nil
			}
		}
		if !qr.More {
			break
		}
		q.After = &qr.Next
		if looked >= searchBudget {
			res.next = &qr.Next
		}
	}
	sortPage(res.matches, sr.Desc)
	return res, nil
}

// matchRecord parses a stored event and matches its AuditEvent.
func matchRecord(rec []byte, sr *fhir.Search, opt fhir.ViewOptions) (searchMatch, bool, *problem) {
	se, err := trail.ParseStored(rec)
	if err != nil {
		return searchMatch{}, false, newProblem(http.StatusInternalServerError, "internal", "stored event: "+err.Error())
	}
	ae, err := fhir.Parsed(&se, opt)
	if err != nil {
		return searchMatch{}, false, newProblem(http.StatusInternalServerError, "internal", err.Error())
	}
	t, _ := time.Parse(time.RFC3339Nano, ae.Recorded)
	m := searchMatch{rec: rec, se: se, ae: ae, time: t}
	return m, sr.Match(ae), nil
}

// searchIDs answers a search with _id: each id is looked up; events of
// streams the caller may not read are left out, as in any search.
func (s *Server) searchIDs(r *http.Request, rd *read, sr *fhir.Search) (searchResult, *problem) {
	var res searchResult
	opt := s.viewOptions()
	for _, id := range sr.IDs {
		_, rec, err := s.l.ReadID(r.Context(), id)
		if err != nil {
			if errors.Is(err, trail.ErrNotFound) {
				continue
			}
			return res, s.readProblem(err)
		}
		stream, err := trail.RecordStream(rec)
		if err != nil || !rd.can(stream) {
			continue
		}
		m, ok, pr := matchRecord(rec, sr, opt)
		if pr != nil {
			return res, pr
		}
		if ok && len(res.matches) < sr.Count {
			res.matches = append(res.matches, m)
		}
	}
	sortPage(res.matches, sr.Desc)
	return res, nil
}

// sortPage orders a page by time, then index (descending for -date).
func sortPage(ms []searchMatch, desc bool) {
	slices.SortStableFunc(ms, func(a, b searchMatch) int {
		c := a.time.Compare(b.time)
		if c == 0 {
			c = cmp.Compare(a.se.Index, b.se.Index)
		}
		if desc {
			return -c
		}
		return c
	})
}

// searchBundle writes the searchset Bundle of a page.
func searchBundle(r *http.Request, vals url.Values, page searchResult, opt fhir.ViewOptions) ([]byte, error) {
	base := fhirBase(r)
	self := url.Values{}
	for k, vs := range vals {
		self[k] = vs
	}
	b := fhir.Bundle{ResourceType: "Bundle", Type: "searchset",
		Link: []fhir.BundleLink{{Relation: "self", URL: base + "/AuditEvent?" + self.Encode()}}}
	if page.next != nil {
		self.Set(fhir.ParamCursor, strconv.FormatUint(*page.next, 10))
		b.Link = append(b.Link, fhir.BundleLink{Relation: "next", URL: base + "/AuditEvent?" + self.Encode()})
	}
	for _, m := range page.matches {
		view, err := fhir.View(&m.se, opt)
		if err != nil {
			return nil, err
		}
		b.Entry = append(b.Entry, fhir.BundleEntry{FullURL: base + "/AuditEvent/" + m.se.ID, Resource: view,
			Search: &fhir.EntrySearch{Mode: "match"}})
	}
	return marshalCompact(b)
}
