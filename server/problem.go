package server

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// problem is an RFC 9457 problem detail. Line is set for batch errors;
// Errors lists every problem of a refused event.
type problem struct {
	Type   string         `json:"type"`
	Title  string         `json:"title"`
	Status int            `json:"status"`
	Detail string         `json:"detail"`
	Line   int            `json:"line,omitempty"`
	Errors []fieldProblem `json:"errors,omitempty"`

	retryAfter time.Duration
	reason     string // metrics label for rejected requests
}

func (p *problem) Error() string { return p.Detail }

// fieldProblem is one problem of a refused event: the field to blame, as a
// dotted path ("actor.id", "entities[2].id", "details.notes[0]", "(event)"
// for the whole event), and what is wrong with it.
type fieldProblem struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

func newProblem(status int, reason, detail string) *problem {
	return &problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail, reason: reason}
}

func badRequest(detail string) *problem {
	return newProblem(http.StatusBadRequest, "bad_request", detail)
}

func notFound(detail string) *problem { return newProblem(http.StatusNotFound, "not_found", detail) }

// writeProblem answers p as application/problem+json.
func (s *Server) writeProblem(w http.ResponseWriter, r *http.Request, p *problem) {
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	if p.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(max(1, int((p.retryAfter+time.Second-1)/time.Second))))
	}
	if p.Status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="trail"`)
	}
	s.metrics.rejected.WithLabelValues(p.reason).Inc()
	if p.Status >= 500 {
		s.log.Warn("request failed", "method", r.Method, "path", r.URL.Path, "status", p.Status, "detail", p.Detail)
	}
	w.WriteHeader(p.Status)
	b, _ := json.Marshal(p)
	w.Write(append(b, '\n'))
}

// writeJSON answers v as JSON with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encode response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
