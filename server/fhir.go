package server

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/fhir"
)

// Routes of the FHIR API, also the names of their metrics and the
// endpoints read records name.
const (
	routeFHIRMetadata = "GET /fhir/metadata"
	routeFHIRCreate   = "POST /fhir/AuditEvent"
	routeFHIRUpdate   = "PUT /fhir/AuditEvent/{id}"
	routeFHIRRead     = "GET /fhir/AuditEvent/{id}"
	routeFHIRVRead    = "GET /fhir/AuditEvent/{id}/_history/{vid}"
	routeFHIRSearch   = "GET /fhir/AuditEvent"
	routeFHIRSearchP  = "POST /fhir/AuditEvent/_search"
	routeFHIRBundle   = "POST /fhir"
)

// fhirRoutes registers the FHIR R4 API under /fhir. Its checks are those of
// /v1 (tokens, grants, rate limits, the read audit); its answers and errors
// are FHIR resources.
func (s *Server) fhirRoutes() {
	route := func(pattern string, h func(http.ResponseWriter, *http.Request, *Principal) *problem) {
		s.handle(pattern, s.instrument(pattern, asOutcome(s.authenticated(s.fhirFormat(h)))))
	}
	route(routeFHIRMetadata, s.fhirMetadata)
	route(routeFHIRCreate, s.fhirCreate)
	route(routeFHIRUpdate, s.fhirUpdate)
	route(routeFHIRRead, s.fhirRead)
	route(routeFHIRVRead, s.fhirRead)
	route(routeFHIRSearch, s.fhirSearch)
	route(routeFHIRSearchP, s.fhirSearch)
	route(routeFHIRBundle, s.fhirBundle)
	none := func(w http.ResponseWriter, r *http.Request, p *Principal) *problem {
		return notFound("no such FHIR interaction: " + r.Method + " " + r.URL.Path + " (Trail serves AuditEvent: see /fhir/metadata)")
	}
	route("/fhir", none)
	route("/fhir/", none)
}

// fhirFormat refuses formats other than JSON: _format and, for a body,
// Content-Type.
func (s *Server) fhirFormat(h func(http.ResponseWriter, *http.Request, *Principal) *problem) func(http.ResponseWriter, *http.Request, *Principal) *problem {
	return func(w http.ResponseWriter, r *http.Request, p *Principal) *problem {
		if f := r.URL.Query().Get(fhir.ParamFormat); f != "" && !jsonFormat(f) {
			return newProblem(http.StatusNotAcceptable, "fhir_format", fmt.Sprintf("_format=%q: Trail answers FHIR in JSON only (_format=json or application/fhir+json)", f))
		}
		if ct := r.Header.Get("Content-Type"); r.Method != http.MethodGet && ct != "" {
			mt, _, _ := mime.ParseMediaType(ct)
			form := mt == "application/x-www-form-urlencoded" && strings.HasSuffix(r.URL.Path, "/_search")
			if !jsonFormat(mt) && !form {
				return newProblem(http.StatusUnsupportedMediaType, "fhir_format", fmt.Sprintf("Content-Type %q: send application/fhir+json", ct))
			}
		}
		return h(w, r, p)
	}
}

// jsonFormat reports whether a _format or media type names JSON. A "+"
// left unescaped in a query string reads as a space, so
// _format=application/fhir+json arrives as "application/fhir json".
func jsonFormat(f string) bool {
	switch strings.ReplaceAll(f, " ", "+") {
	case "json", "application/fhir+json", "application/json", "application/json+fhir":
		return true
	}
	return false
}

// fhirBase is the base URL of the FHIR API as the client reached it.
func fhirBase(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + "/fhir"
}

// viewOptions are the options of every AuditEvent view this server
// answers: Trail's own id (its checkpoint origin) observes events without a
// source.
func (s *Server) viewOptions() fhir.ViewOptions {
	return fhir.ViewOptions{Observer: s.l.Checkpoint().Origin}
}

// fhirMetadata serves the CapabilityStatement.
func (s *Server) fhirMetadata(w http.ResponseWriter, r *http.Request, p *Principal) *problem {
	b, err := capabilityStatement()
	if err != nil {
		return s.internal("capability statement", err)
	}
	writeFHIR(w, http.StatusOK, b)
	return nil
}

// fhirCreate serves POST /fhir/AuditEvent: the IHE FHIR feed. Trail
// assigns the id (an id in the resource is ignored, as R4 create asks).
func (s *Server) fhirCreate(w http.ResponseWriter, r *http.Request, p *Principal) *problem {
	return s.fhirStoreOne(w, r, p, "")
}

// fhirUpdate serves PUT /fhir/AuditEvent/{id}: create with the client's
// id, 200 when the same resource is stored under it, 409 when another is.
func (s *Server) fhirUpdate(w http.ResponseWriter, r *http.Request, p *Principal) *problem {
	return s.fhirStoreOne(w, r, p, r.PathValue("id"))
}

// fhirStoreOne stores one resource sent alone.
func (s *Server) fhirStoreOne(w http.ResponseWriter, r *http.Request, p *Principal, id string) *problem {
	if pr := s.beforeBody(w, p); pr != nil {
		return pr
	}
	body, pr := readBody(r, fhir.MaxResourceSize+maxPadding, fmt.Sprintf("resource over %d bytes; an AuditEvent is at most 64 KiB as sent", fhir.MaxResourceSize))
	if pr != nil {
		return pr
	}
	bodyRead(w)
	e := s.prepareEntry(r.Context(), body, id, p)
	if e.fail == nil {
		s.storeEntries(r, []*fhirEntry{e}, false)
	}
	if e.fail != nil {
		if e.fail.issues != nil {
			s.writeOutcome(w, e.fail.status, "fhir_invalid", e.fail.issues)
			return nil
		}
		return e.fail.pr
	}
	view, err := fhir.View(&trail.StoredEvent{Event: e.ev, Recorded: e.recorded}, s.viewOptions())
	if err != nil {
		return s.internal("AuditEvent view", err)
	}
	w.Header().Set("Location", fhirBase(r)+"/AuditEvent/"+e.ev.ID+"/_history/1")
	w.Header().Set("ETag", `W/"1"`)
	writeFHIR(w, e.status, view)
	return nil
}

// fhirEntry is one resource on its way to the log.
type fhirEntry struct {
	ev       trail.Event
	putID    string // the id of a PUT ("" for a create)
	body     []byte
	status   int    // 201 stored, 200 stored before
	recorded string // Trail's recorded time of the stored event
	fail     *entryFail
	stored   bool // found stored before: not sent to the engine
}

// entryFail is why an entry was not stored: issues of the resource, or a
// problem of the request (grant, conflict, engine).
type entryFail struct {
	status int
	issues []fhir.Issue
	pr     *problem
}

func failProblem(pr *problem) *entryFail { return &entryFail{status: pr.Status, pr: pr} }

// prepareEntry decodes and checks one resource: its content, the
// principal's append grant, and for a PUT, what is stored under its id.
func (s *Server) prepareEntry(ctx context.Context, body []byte, putID string, p *Principal) *fhirEntry {
	e := &fhirEntry{putID: putID, body: body, status: http.StatusCreated}
	ev, err := fhir.Decode(body)
	if err != nil {
		var ie *fhir.InvalidError
		errors.As(err, &ie)
		status := http.StatusBadRequest
		if errors.Is(err, fhir.ErrTooLarge) {
			status = http.StatusRequestEntityTooLarge
		}
		e.fail = &entryFail{status: status, issues: ie.Issues}
		return e
	}
	if putID != "" {
		if rid := fhir.ResourceID(body); rid != "" && rid != putID {
			e.fail = &entryFail{status: http.StatusBadRequest, issues: []fhir.Issue{{Severity: fhir.SeverityError, Code: fhir.CodeInvalid,
				Diagnostics: fmt.Sprintf("the resource's id %q is not the id in the URL, %q", rid, putID), Expression: []string{"AuditEvent.id"}}}}
			return e
		}
		ev.ID = putID
	}
	e.ev = ev
	if pr := s.canAppend(p, ev.Stream, 0); pr != nil {
		e.fail = failProblem(pr)
		return e
	}
	if putID != "" {
		s.checkStored(ctx, e)
	}
	return e
}

// checkStored looks up a PUT's id: the same resource stored under it makes
// the entry a 200 (nothing more is stored), another one a 409.
func (s *Server) checkStored(ctx context.Context, e *fhirEntry) {
	_, rec, err := s.l.ReadID(ctx, e.putID)
	if errors.Is(err, trail.ErrNotFound) {
		return
	}
	if err != nil {
		e.fail = failProblem(s.readProblem(err))
		return
	}
	se, err := trail.ParseStored(rec)
	if err != nil {
		e.fail = failProblem(s.internal("stored event", err))
		return
	}
	view, err := fhir.View(&se, s.viewOptions())
	if err != nil {
		e.fail = failProblem(s.internal("AuditEvent view", err))
		return
	}
	if !fhir.SameResource(view, e.body) {
		e.fail = failProblem(newProblem(http.StatusConflict, "id_conflict",
			fmt.Sprintf("AuditEvent/%s is stored with different content; use a new id for a new event", e.putID)))
		return
	}
	e.stored, e.status, e.recorded = true, http.StatusOK, se.Recorded
}

// storeEntries stores the entries that have no failure in one atomic
// batch. With atomic (a transaction), a refusal of the engine fails them
// all: it returns the entry the engine blamed (nil for none) and the
// problem, and marks no entry. Otherwise (a batch, or one resource) the
// entry blamed alone fails and the others are tried again.
func (s *Server) storeEntries(r *http.Request, es []*fhirEntry, atomic bool) (*fhirEntry, *problem) {
	for {
		var todo []*fhirEntry
		var evs []trail.Event
		for _, e := range es {
			if e.fail == nil && !e.stored {
				todo = append(todo, e)
				evs = append(evs, e.ev)
			}
		}
		if len(evs) == 0 {
			return nil, nil
		}
		bad, pr := s.logEntries(r, todo, evs)
		switch {
		case pr == nil:
			return nil, nil
		case atomic && bad >= 0:
			return todo[bad], pr
		case atomic:
			return nil, pr
		case bad >= 0:
			todo[bad].fail = failProblem(pr)
		default:
			for _, e := range todo {
				e.fail = failProblem(pr)
			}
			return nil, nil
		}
	}
}

// logEntries appends evs atomically; on failure it returns the entry the
// engine blamed (-1 for none) and the problem.
func (s *Server) logEntries(r *http.Request, todo []*fhirEntry, evs []trail.Event) (int, *problem) {
	ctx, cancel := s.queueContext(r)
	b, err := s.l.LogBatch(ctx, evs)
	cancel()
	if err != nil {
		return -1, s.engineProblem(err, 0)
	}
	rcs, err := b.Wait(r.Context())
	if err != nil {
		var be *trail.BatchError
		if errors.As(err, &be) && be.Index >= 0 && be.Index < len(todo) {
			return be.Index, s.engineProblem(be.Err, 0)
		}
		return -1, s.engineProblem(err, 0)
	}
	dups := b.Duplicates()
	for i, e := range todo {
		e.ev.ID, e.recorded = rcs[i].ID, rcs[i].Recorded
		if dups[i] {
			e.status = http.StatusOK
			// The engine compares events, not the resources they came
			// from: a resource stored meanwhile under this id with other
			// unmapped content is a conflict.
			e.putID = rcs[i].ID
			s.checkStored(r.Context(), e)
		}
	}
	s.metrics.appended.Add(float64(len(rcs)))
	return -1, nil
}

// fhirRead serves GET /fhir/AuditEvent/{id} (and its only version,
// _history/1), recorded in trail/access like every read.
func (s *Server) fhirRead(w http.ResponseWriter, r *http.Request, p *Principal) *problem {
	vals := r.URL.Query()
	ps, pr := fhirParams(vals)
	if pr != nil {
		return pr
	}
	id := r.PathValue("id")
	route := routeFHIRRead
	if r.PathValue("vid") != "" {
		route = routeFHIRVRead
	}
	rd, pr := s.newRead(r, p, route, ps)
	if pr != nil {
		return pr
	}
	i, rec, err := s.l.ReadID(r.Context(), id)
	if err == nil && r.PathValue("vid") != "" && r.PathValue("vid") != "1" {
		err = trail.ErrNotFound // events have one version
	}
	if errors.Is(err, trail.ErrNotFound) {
		if pr := rd.allow(0); pr != nil {
			return pr
		}
		return notFound(fmt.Sprintf("no AuditEvent/%s", id))
	}
	if err != nil {
		return s.readProblem(err)
	}
	rec, pr = s.readEvent(rd.withIndex(i), i)
	if pr != nil {
		return pr
	}
	se, err := trail.ParseStored(rec)
	if err != nil {
		return s.internal("stored event", err)
	}
	view, err := fhir.View(&se, s.viewOptions())
	if err != nil {
		return s.internal("AuditEvent view", err)
	}
	if pr := rd.allow(1); pr != nil {
		return pr
	}
	w.Header().Set("ETag", `W/"1"`)
	writeFHIR(w, http.StatusOK, view)
	return nil
}

// fhirParams checks the query parameters of a FHIR read as every read's
// are checked (UTF-8, no NUL, bounded lengths, so the read record can name
// them), without refusing unknown or repeated ones: FHIR ignores the
// former and ANDs the latter. A repeated parameter's values are recorded
// joined by " & ".
func fhirParams(vals url.Values) (*params, *problem) {
	if len(vals) > maxFHIRParams {
		return nil, badRequest(fmt.Sprintf("%d query parameters; a FHIR search takes at most %d", len(vals), maxFHIRParams))
	}
	joined := url.Values{}
	for k, vs := range vals {
		if len(vs) > maxFHIRParams {
			return nil, badRequest(fmt.Sprintf("query parameter %q is given %d times; at most %d", k, len(vs), maxFHIRParams))
		}
		joined.Set(k, strings.Join(vs, " & "))
	}
	ps := parseParams(joined.Encode(), keys(joined)...)
	if ps.err != nil {
		return nil, ps.err
	}
	return &ps, nil
}

// maxFHIRParams bounds the parameters of a FHIR read.
const maxFHIRParams = 32

func keys(v url.Values) []string {
	ks := make([]string, 0, len(v))
	for k := range v {
		ks = append(ks, k)
	}
	return ks
}
