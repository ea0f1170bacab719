package server

import (
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
	rec []byte
	se  trail.StoredEvent
	ae  *fhir.AuditEvent
	key fhir.SortKey
}

// searchResult is one page of a search: its matches and, when more may
// follow, the cursor of the next page (an index in log order, or a key in
// date order).
type searchResult struct {
	matches []searchMatch
	next    *uint64
	nextKey *fhir.SortKey
}

// searchPage finds one page. A search whose candidates (the events the
// engine's indexes select for it among the caller's streams: by patient,
// action, outcome) number at most searchBudget is answered exactly: its
// matches in date order (time, then index), the page after the cursor's
// key. A larger one is paged in log order from the cursor's index, each
// page in date order, looking at no more than searchBudget events per
// page: a page may then hold fewer than _count entries and still have a
// next link.
func (s *Server) searchPage(r *http.Request, rd *read, sr *fhir.Search) (searchResult, *problem) {
	if sr.IDs != nil {
		return s.searchIDs(r, rd, sr)
	}
	if sr.Cursor == nil {
		all, next, pr := s.scan(r, rd, sr, nil, 0)
		if pr != nil {
			return searchResult{}, pr
		}
		if next == nil {
			return exactPage(all, sr), nil
		}
		if sr.SortCursor != nil {
			return searchResult{}, badRequest(fmt.Sprintf("the search now selects more than %d events, more than when its first page was answered; search again", searchBudget))
		}
	}
	ms, next, pr := s.scan(r, rd, sr, sr.Cursor, sr.Count)
	sortPage(ms, sr.Desc)
	return searchResult{matches: ms, next: next}, pr
}

// scan reads candidates in log order after the cursor and matches them,
// until it has want matches (0: no limit), has looked at searchBudget
// events, or has read them all. next is where the following scan starts,
// nil when no candidate is left.
func (s *Server) scan(r *http.Request, rd *read, sr *fhir.Search, after *uint64, want int) ([]searchMatch, *uint64, *problem) {
	var ms []searchMatch
	q := trail.Query{Patient: sr.Patient, Action: sr.Action, Outcome: sr.Outcome, Desc: sr.Desc, After: after,
		Readable: rd.readable(), Scope: rd.scope()}
	opt := s.viewOptions()
	for looked := 0; ; {
		q.Limit = min(searchChunk, searchBudget-looked)
		qr, err := s.l.Query(r.Context(), q)
		if err != nil {
			return nil, nil, s.readProblem(err)
		}
		for i, rec := range qr.Events {
			looked++
			m, ok, pr := matchRecord(rec, sr, opt)
			if pr != nil {
				return nil, nil, pr
			}
			if ok {
				ms = append(ms, m)
			}
			if len(ms) == want && (i < len(qr.Events)-1 || qr.More) {
				last := m.se.Index
				return ms, &last, nil
			}
		}
		if !qr.More {
			return ms, nil, nil
		}
		if looked >= searchBudget {
			return ms, &qr.Next, nil
		}
		q.After = &qr.Next
	}
}

// exactPage is the page of a search whose matches are all known: in date
// order, after the cursor's key.
func exactPage(all []searchMatch, sr *fhir.Search) searchResult {
	sortPage(all, sr.Desc)
	if c := sr.SortCursor; c != nil {
		i := 0
		for i < len(all) && (!sr.Desc && all[i].key.Compare(*c) <= 0 || sr.Desc && all[i].key.Compare(*c) >= 0) {
			i++
		}
		all = all[i:]
	}
	var res searchResult
	if len(all) > sr.Count {
		k := all[sr.Count-1].key
		res.nextKey = &k
		all = all[:sr.Count]
	}
	res.matches = all
	return res
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
	m := searchMatch{rec: rec, se: se, ae: ae, key: fhir.SortKey{Time: t.UnixNano(), Index: se.Index}}
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
	slices.SortFunc(ms, func(a, b searchMatch) int {
		c := a.key.Compare(b.key)
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
	if page.next != nil || page.nextKey != nil {
		if page.next != nil {
			self.Set(fhir.ParamCursor, strconv.FormatUint(*page.next, 10))
		} else {
			self.Set(fhir.ParamCursor, page.nextKey.String())
		}
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
