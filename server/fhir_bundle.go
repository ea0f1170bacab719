package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/trailhq/trail/fhir"
)

// fhirBundle serves POST /fhir: a batch or transaction Bundle of POST
// AuditEvent and PUT AuditEvent/{id} entries (at most MaxBatchEvents
// entries and MaxBatchBytes bytes). A transaction is stored in one atomic
// batch, or not at all; a batch stores every entry it can and answers each
// entry's status.
func (s *Server) fhirBundle(w http.ResponseWriter, r *http.Request, p *Principal) *problem {
	if pr := s.beforeBody(w, p); pr != nil {
		return pr
	}
	body, pr := readBody(r, int64(s.cfg.MaxBatchBytes),
		fmt.Sprintf("Bundle over %d bytes; send at most %d bytes and %d entries", s.cfg.MaxBatchBytes, s.cfg.MaxBatchBytes, s.cfg.MaxBatchEvents))
	if pr != nil {
		return pr
	}
	bodyRead(w)
	var b fhir.Bundle
	if err := json.Unmarshal(body, &b); err != nil {
		return s.bundleInvalid(w, "Bundle", "the body is not a Bundle in JSON: "+err.Error())
	}
	if b.ResourceType != "Bundle" {
		return s.bundleInvalid(w, "Bundle.resourceType", fmt.Sprintf("is %q; POST /fhir takes a batch or transaction Bundle", b.ResourceType))
	}
	atomic := b.Type == "transaction"
	if !atomic && b.Type != "batch" {
		return s.bundleInvalid(w, "Bundle.type", fmt.Sprintf("is %q; POST /fhir takes a batch or a transaction", b.Type))
	}
	if len(b.Entry) == 0 {
		return s.bundleInvalid(w, "Bundle.entry", "the Bundle has no entries")
	}
	if len(b.Entry) > s.cfg.MaxBatchEvents {
		return newProblem(http.StatusRequestEntityTooLarge, "too_large",
			fmt.Sprintf("the Bundle has %d entries; at most %d: split it", len(b.Entry), s.cfg.MaxBatchEvents))
	}
	es := make([]*fhirEntry, len(b.Entry))
	for i, be := range b.Entry {
		es[i] = s.bundleEntry(r, be, p)
		if atomic && es[i].fail != nil {
			return s.entryFailed(w, i, es[i].fail)
		}
	}
	if i, fail := sameIDs(b.Entry, es); fail != nil {
		if atomic {
			return s.entryFailed(w, i, fail)
		}
		es[i].fail = fail
	}
	if blamed, pr := s.storeEntries(r, es, atomic); pr != nil {
		if i := indexOf(es, blamed); i >= 0 {
			return s.entryFailed(w, i, failProblem(pr))
		}
		return pr
	}
	out, err := bundleResponse(es, atomic)
	if err != nil {
		return s.internal("bundle response", err)
	}
	writeFHIR(w, http.StatusOK, out)
	return nil
}

// bundleEntry checks one entry's request and prepares its resource.
func (s *Server) bundleEntry(r *http.Request, be fhir.BundleEntry, p *Principal) *fhirEntry {
	bad := func(expr, detail string) *fhirEntry {
		return &fhirEntry{fail: &entryFail{status: http.StatusBadRequest, issues: []fhir.Issue{{Severity: fhir.SeverityError,
			Code: fhir.CodeInvalid, Diagnostics: detail, Expression: []string{expr}}}}}
	}
	if be.Request == nil {
		return bad("request", "missing: each entry needs request.method and request.url")
	}
	if len(be.Resource) == 0 {
		return bad("resource", "missing: each entry carries an AuditEvent")
	}
	path := strings.TrimPrefix(strings.TrimPrefix(be.Request.URL, fhirBase(r)), "/")
	path, _, _ = strings.Cut(path, "?")
	switch {
	case be.Request.Method == http.MethodPost && path == "AuditEvent":
		return s.prepareEntry(r.Context(), be.Resource, "", p)
	case be.Request.Method == http.MethodPut && strings.HasPrefix(path, "AuditEvent/") && !strings.Contains(path[len("AuditEvent/"):], "/"):
		id := path[len("AuditEvent/"):]
		if !validFHIRID(id) {
			return bad("request.url", fmt.Sprintf("%q: the id is not 1-64 of A-Z a-z 0-9 . -", id))
		}
		return s.prepareEntry(r.Context(), be.Resource, id, p)
	}
	return bad("request", fmt.Sprintf("%s %s: entries are POST AuditEvent or PUT AuditEvent/{id}", be.Request.Method, be.Request.URL))
}

func validFHIRID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// sameIDs finds a PUT whose id an earlier entry of the Bundle puts with
// other content: a conflict, named by its entry.
func sameIDs(bes []fhir.BundleEntry, es []*fhirEntry) (int, *entryFail) {
	first := map[string]int{}
	for i, e := range es {
		if e.fail != nil || e.putID == "" {
			continue
		}
		j, ok := first[e.putID]
		if !ok {
			first[e.putID] = i
			continue
		}
		if !fhir.SameResource(bes[j].Resource, bes[i].Resource) {
			return i, failProblem(newProblem(http.StatusConflict, "id_conflict",
				fmt.Sprintf("AuditEvent/%s is put twice with different content (entries %d and %d)", e.putID, j, i)))
		}
	}
	return -1, nil
}

func indexOf(es []*fhirEntry, e *fhirEntry) int {
	for i := range es {
		if es[i] == e {
			return i
		}
	}
	return -1
}

// bundleInvalid answers a Bundle that cannot be read.
func (s *Server) bundleInvalid(w http.ResponseWriter, expr, detail string) *problem {
	s.writeOutcome(w, http.StatusBadRequest, "fhir_invalid", []fhir.Issue{{Severity: fhir.SeverityError, Code: fhir.CodeInvalid,
		Diagnostics: detail, Expression: []string{expr}}})
	return nil
}

// entryFailed answers a transaction that failed at entry i: its status,
// and issues whose expressions name the entry. Nothing was stored.
func (s *Server) entryFailed(w http.ResponseWriter, i int, f *entryFail) *problem {
	issues := entryIssues(i, f)
	for j := range issues {
		issues[j].Diagnostics = fmt.Sprintf("entry %d: %s (nothing of the transaction was stored)", i, issues[j].Diagnostics)
	}
	s.writeOutcome(w, f.status, "fhir_transaction", issues)
	return nil
}

// entryIssues are an entry's issues with expressions in the Bundle:
// AuditEvent.type becomes Bundle.entry[i].resource.type.
func entryIssues(i int, f *entryFail) []fhir.Issue {
	prefix := fmt.Sprintf("Bundle.entry[%d]", i)
	if f.issues == nil {
		return []fhir.Issue{{Severity: fhir.SeverityError, Code: issueCode(f.status), Diagnostics: f.pr.Detail, Expression: []string{prefix}}}
	}
	out := make([]fhir.Issue, len(f.issues))
	for j, is := range f.issues {
		is.Expression = append([]string(nil), is.Expression...)
		for k, e := range is.Expression {
			if rest, ok := strings.CutPrefix(e, "AuditEvent"); ok {
				is.Expression[k] = prefix + ".resource" + rest
			} else {
				is.Expression[k] = prefix + "." + e
			}
		}
		out[j] = is
	}
	return out
}

// bundleResponse is the batch-response or transaction-response: each
// entry's status and location, or (in a batch) its OperationOutcome.
func bundleResponse(es []*fhirEntry, atomic bool) ([]byte, error) {
	typ := "batch-response"
	if atomic {
		typ = "transaction-response"
	}
	var buf bytes.Buffer
	buf.Grow(64 + len(es)*160)
	buf.WriteString(`{"resourceType":"Bundle","type":"` + typ + `","entry":[`)
	for i, e := range es {
		if i > 0 {
			buf.WriteByte(',')
		}
		var resp fhir.EntryResponse
		if e.fail != nil {
			resp.Status = fmt.Sprintf("%d %s", e.fail.status, http.StatusText(e.fail.status))
			oo, err := marshalCompact(fhir.NewOutcome(entryIssues(i, e.fail)...))
			if err != nil {
				return nil, err
			}
			resp.Outcome = oo
		} else {
			resp.Status = fmt.Sprintf("%d %s", e.status, http.StatusText(e.status))
			resp.Location = "AuditEvent/" + e.ev.ID + "/_history/1"
			resp.Etag = `W/"1"`
			resp.LastModified = e.recorded
		}
		b, err := marshalCompact(fhir.BundleEntry{Response: &resp})
		if err != nil {
			return nil, err
		}
		buf.Write(b)
	}
	buf.WriteString("]}")
	return buf.Bytes(), nil
}
