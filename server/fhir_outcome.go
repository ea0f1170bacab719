package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/trailhq/trail/fhir"
)

// FHIR answers are application/fhir+json; errors are OperationOutcomes.
const fhirJSON = "application/fhir+json; charset=utf-8"

// asOutcome makes every problem+json answer of h an OperationOutcome with
// the same status and headers, so that the checks /fhir shares with /v1
// (authentication, rate limits, grants, the read audit, the engine's
// errors) answer in FHIR's language.
func asOutcome(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ow := &outcomeWriter{ResponseWriter: w}
		h.ServeHTTP(ow, r)
		ow.finish()
	})
}

// outcomeWriter holds back a problem+json answer to rewrite it.
type outcomeWriter struct {
	http.ResponseWriter
	status  int
	problem *bytes.Buffer
}

func (w *outcomeWriter) WriteHeader(code int) {
	if w.problem == nil && w.status == 0 && strings.HasPrefix(w.Header().Get("Content-Type"), "application/problem+json") {
		w.status, w.problem = code, &bytes.Buffer{}
		return
	}
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *outcomeWriter) Write(b []byte) (int, error) {
	if w.problem != nil {
		return w.problem.Write(b)
	}
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the real writer.
func (w *outcomeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// finish writes the held-back problem as an OperationOutcome.
func (w *outcomeWriter) finish() {
	if w.problem == nil {
		return
	}
	var p problem
	json.Unmarshal(w.problem.Bytes(), &p)
	oo := outcomeOf(w.status, p)
	w.Header().Set("Content-Type", fhirJSON)
	w.ResponseWriter.WriteHeader(w.status)
	b, _ := json.Marshal(oo)
	w.ResponseWriter.Write(append(b, '\n'))
}

// outcomeOf turns a problem into an OperationOutcome: one issue per field
// problem, or one for the whole.
func outcomeOf(status int, p problem) fhir.OperationOutcome {
	code := issueCode(status)
	if len(p.Errors) == 0 {
		return fhir.NewOutcome(fhir.Issue{Severity: fhir.SeverityError, Code: code, Diagnostics: p.Detail})
	}
	var issues []fhir.Issue
	for _, e := range p.Errors {
		issues = append(issues, fhir.Issue{Severity: fhir.SeverityError, Code: code, Diagnostics: e.Field + ": " + e.Detail})
	}
	issues[0].Diagnostics = p.Detail
	return fhir.NewOutcome(issues...)
}

// issueCode is the OperationOutcome issue code of an HTTP status.
func issueCode(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return "login"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusNotFound:
		return "not-found"
	case http.StatusConflict:
		return "conflict"
	case http.StatusRequestEntityTooLarge:
		return "too-long"
	case http.StatusTooManyRequests:
		return "throttled"
	case http.StatusNotAcceptable, http.StatusUnsupportedMediaType, http.StatusMethodNotAllowed:
		return "not-supported"
	case http.StatusRequestTimeout:
		return "timeout"
	case http.StatusServiceUnavailable:
		return "transient"
	}
	if status >= 500 {
		return "exception"
	}
	return "invalid"
}

// writeOutcome answers issues as an OperationOutcome with the status.
func (s *Server) writeOutcome(w http.ResponseWriter, status int, reason string, issues []fhir.Issue) {
	s.metrics.rejected.WithLabelValues(reason).Inc()
	w.Header().Set("Content-Type", fhirJSON)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	b, _ := json.Marshal(fhir.NewOutcome(issues...))
	w.Write(append(b, '\n'))
}

// writeFHIR answers a resource (JSON) with the status.
func writeFHIR(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", fhirJSON)
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}
