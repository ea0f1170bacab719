package server

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/trailhq/trail"
)

// maxLimit is the most events one page of GET /v1/events carries.
const maxLimit = 1000

var queryParams = []string{"stream", "patient", "actor", "type", "action", "outcome", "since", "until", "after", "limit", "order"}

// query serves GET /v1/events: filters, time bounds and cursor pagination.
// Results are limited to streams p may read.
func (s *Server) query(w http.ResponseWriter, r *http.Request, p *Principal) *problem {
	q, ps, pr := parseQuery(r)
	if pr != nil {
		return pr
	}
	rd, pr := s.newRead(r, p, "GET /v1/events", &ps)
	if pr != nil {
		return pr
	}
	rd.patient = q.Patient
	if q.Stream != "" {
		if !rd.canFiltered(q.Stream, q.Patient) {
			return rd.forbidFiltered(q.Stream)
		}
		rd.namePatient(q.Stream)
	}
	q.Readable, q.Scope = rd.readable(), rd.scope()
	if r.Context().Value(unreservedKey{}) != nil {
		q.Readable = unreservedOnly(q.Readable)
	}
	res, err := s.l.Query(r.Context(), q)
	if err != nil {
		return s.readProblem(err)
	}
	for _, e := range res.Events {
		if rd.own && !rd.canRecord(AccessStream, e) {
			// The query's own filters admit nothing else: never send it.
			return s.internal("query", fmt.Errorf("a read record not naming patient %q came back for its own principal", p.Patient))
		}
		rd.returned(e)
	}
	if pr := rd.allow(len(res.Events)); pr != nil {
		return pr
	}
	n := 32
	for _, e := range res.Events {
		n += len(e) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, `{"events":[`...)
	for i, e := range res.Events {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, e...)
	}
	b = append(b, `],"next":"`...)
	if res.More {
		b = strconv.AppendUint(b, res.Next, 10)
	}
	b = append(b, "\"}\n"...)
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
	return nil
}

// unreservedKey marks a query made for the console's timelines: it returns
// no events of Trail's own streams, which a reader of trail/access would
// otherwise get among a patient's events (and its read record count).
type unreservedKey struct{}

// unreservedOnly narrows a query's filter (nil: everything) to streams
// outside trail/….
func unreservedOnly(readable func(string) bool) func(string) bool {
	return func(stream string) bool {
		return !trail.IsReservedStream(stream) && (readable == nil || readable(stream))
	}
}

// parseQuery reads and checks the parameters of GET /v1/events.
func parseQuery(r *http.Request) (trail.Query, params, *problem) {
	ps := parseParams(r.URL.RawQuery, append(queryParams, purposeParams...)...)
	if ps.err != nil {
		return trail.Query{}, ps, ps.err
	}
	q, pr := queryOf(&ps)
	return q, ps, pr
}

// queryOf reads the query of GET /v1/events from its parameters.
func queryOf(ps *params) (trail.Query, *problem) {
	q := trail.Query{
		Stream: ps.str("stream"), Patient: ps.str("patient"), Actor: ps.str("actor"), Type: ps.str("type"),
		Action:  ps.oneOf("action", "C", "R", "U", "D", "E"),
		Outcome: ps.oneOf("outcome", trail.OutcomeSuccess, "minor-failure", "serious-failure", "major-failure"),
		Since:   ps.time("since"),
		Until:   ps.time("until"),
		Limit:   int(min(ps.uint("limit", 100), maxLimit+1)),
		Desc:    ps.oneOf("order", "asc", "desc") == "desc",
	}
	if ps.has("after") {
		after := ps.uint("after", 0)
		q.After = &after
	}
	if ps.err != nil {
		return q, ps.err
	}
	if q.Limit < 1 || q.Limit > maxLimit {
		return q, badRequest(fmt.Sprintf("query parameter limit=%q must be 1-%d", ps.str("limit"), maxLimit))
	}
	if q.Stream != "" {
		if _, pr := streamName(q.Stream); pr != nil {
			return q, pr
		}
	}
	for _, f := range []struct{ name, v string }{{"patient", q.Patient}, {"actor", q.Actor}, {"type", q.Type}} {
		if ps.has(f.name) && f.v == "" {
			return q, badRequest(fmt.Sprintf("query parameter %s is empty; leave it out to not filter by it", f.name))
		}
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && q.Since.After(q.Until) {
		return q, badRequest("since is after until (since is inclusive, until exclusive)")
	}
	return q, nil
}
