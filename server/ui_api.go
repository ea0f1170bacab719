package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/trailhq/trail"
)

// apiHandler is an API endpoint's handler, as the console calls it.
type apiHandler func(http.ResponseWriter, *http.Request, *Principal) *problem

// captured is the answer of an API handler run in-process.
type captured struct {
	h      http.Header
	status int
	body   bytes.Buffer
}

func (w *captured) Header() http.Header { return w.h }
func (w *captured) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(b)
}
func (w *captured) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

// apiGet runs the API's handler h for GET path?q as p, in this process:
// the grant check, the read rate, the read audit (the record names the
// API's route and the parameters, with the browser's address and user
// agent) are the API's own. It returns the body of a 200, or the problem
// the API would have answered.
func (c *console) apiGet(r *http.Request, p *Principal, h apiHandler, path string, q url.Values, pathValues map[string]string) ([]byte, *problem) {
	req := r.Clone(r.Context())
	req.Method = http.MethodGet
	req.URL = &url.URL{Path: path, RawQuery: q.Encode()}
	req.RequestURI = req.URL.RequestURI()
	req.Body, req.ContentLength = http.NoBody, 0
	req.Header = http.Header{"User-Agent": {r.UserAgent()}}
	for _, f := range []string{"X-Forwarded-For"} {
		if v := r.Header.Values(f); len(v) > 0 {
			req.Header[f] = v
		}
	}
	for k, v := range pathValues {
		req.SetPathValue(k, v)
	}
	w := &captured{h: http.Header{}}
	if pr := h(w, req, p); pr != nil {
		return nil, pr
	}
	if w.status != http.StatusOK {
		return nil, newProblem(w.status, "console", fmt.Sprintf("the API answered %d %s", w.status, strings.TrimSpace(w.body.String())))
	}
	return w.body.Bytes(), nil
}

// queryReply is GET /v1/events's answer.
type queryReply struct {
	Events []json.RawMessage `json:"events"`
	Next   string            `json:"next"`
}

// eventRow is a stored event as a table row shows it.
type eventRow struct {
	Index    uint64 `json:"index"`
	ID       string `json:"id"`
	Stream   string `json:"stream"`
	Seq      uint64 `json:"stream_seq"`
	Time     string `json:"time"`
	Recorded string `json:"recorded"`
	Type     string `json:"type"`
	Action   string `json:"action"`
	Outcome  string `json:"outcome"`
	Patient  string `json:"patient"`
	Purpose  string `json:"purpose"`
	Prev     string `json:"prev"`
	Actor    struct {
		ID   string `json:"id"`
		Name string `json:"name"`
		Role string `json:"role"`
	} `json:"actor"`
	Details json.RawMessage `json:"details"`
}

// actionNames spell out the action codes.
var actionNames = map[string]string{"C": "Create", "R": "Read", "U": "Update", "D": "Delete", "E": "Execute"}

// ActionName is the action spelled out.
func (e eventRow) ActionName() string {
	if n, ok := actionNames[e.Action]; ok {
		return n
	}
	return e.Action
}

// When is the event's time, shortened for a table (UTC).
func (e eventRow) When() string { return shortTime(e.Time) }

// Failed reports an outcome other than success.
func (e eventRow) Failed() bool { return e.Outcome != "" && e.Outcome != trail.OutcomeSuccess }

// shortTime writes an RFC 3339 time as "2026-12-07 10:15:02 UTC".
func shortTime(s string) string {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return s
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func parseRows(events []json.RawMessage) ([]eventRow, error) {
	rows := make([]eventRow, len(events))
	for i, ev := range events {
		if err := json.Unmarshal(ev, &rows[i]); err != nil {
			return nil, fmt.Errorf("event in answer: %w", err)
		}
	}
	return rows, nil
}

// searchFilters are the search form's fields.
var searchFilters = []string{"patient", "actor", "stream", "type", "action", "outcome"}

// searchData is the search page's own data.
type searchData struct {
	Form     map[string]string
	Ran      bool
	Rows     []eventRow
	NextURL  string
	Denied   string // the API's 403 detail
	Problem  string // any other failure
	Actions  []string
	Outcomes []string
}

const pageSize = 50

// search shows the search form and, once it is submitted, a page of
// events read through GET /v1/events.
func (c *console) search(w http.ResponseWriter, r *http.Request, s *session, p *Principal) {
	in := r.URL.Query()
	d := &searchData{Form: map[string]string{}, Actions: []string{"C", "R", "U", "D", "E"},
		Outcomes: []string{"success", "minor-failure", "serious-failure", "major-failure"}}
	for _, f := range append(searchFilters, "since", "until") {
		d.Form[f] = strings.TrimSpace(in.Get(f))
	}
	status := http.StatusOK
	if len(in) > 0 {
		d.Ran = true
		status = c.runSearch(r, p, in, d)
	}
	c.render(w, r, status, "search", &pageData{Title: "Search events", Nav: "search", Session: s, Page: d})
}

// runSearch reads one page of events for the form's filters.
func (c *console) runSearch(r *http.Request, p *Principal, in url.Values, d *searchData) int {
	q := url.Values{"limit": {strconv.Itoa(pageSize)}, "order": {"desc"}}
	for _, f := range searchFilters {
		if v := d.Form[f]; v != "" {
			q.Set(f, v)
		}
	}
	for _, f := range []string{"since", "until"} {
		if v := d.Form[f]; v != "" {
			t, err := parseFormTime(v)
			if err != nil {
				d.Problem = fmt.Sprintf("%q is not a time: use the date picker, or write 2026-12-07T09:30 (UTC)", v)
				return http.StatusBadRequest
			}
			q.Set(f, t)
		}
	}
	if a := in.Get("after"); a != "" {
		q.Set("after", a)
	}
	body, pr := c.apiGet(r, p, c.s.query, "/v1/events", q, nil)
	if pr != nil {
		c.problemState(pr, &d.Denied, &d.Problem)
		return pr.Status
	}
	var rep queryReply
	err := json.Unmarshal(body, &rep)
	if err == nil {
		d.Rows, err = parseRows(rep.Events)
	}
	if err != nil {
		d.Problem = "The server's answer could not be read: " + err.Error()
		return http.StatusInternalServerError
	}
	if rep.Next != "" {
		next := url.Values{}
		for k, v := range d.Form {
			if v != "" {
				next.Set(k, v)
			}
		}
		next.Set("after", rep.Next)
		d.NextURL = "/ui/search?" + next.Encode()
	}
	return http.StatusOK
}

// problemState sorts an API problem into a page's denied or error state.
func (c *console) problemState(pr *problem, denied, other *string) {
	if pr.Status == http.StatusForbidden {
		*denied = pr.Detail
		return
	}
	*other = fmt.Sprintf("%s (%d %s)", pr.Detail, pr.Status, http.StatusText(pr.Status))
}

// parseFormTime reads a datetime-local value (taken as UTC) or an RFC 3339
// time, and returns it as RFC 3339.
func parseFormTime(v string) (string, error) {
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", time.RFC3339Nano} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC().Format(time.RFC3339Nano), nil
		}
	}
	return "", fmt.Errorf("not a time: %q", v)
}

// eventData is the event page's own data.
type eventData struct {
	Index    string
	Row      eventRow
	Stored   string // the exact bytes, as text (a stored event is UTF-8)
	Pretty   string
	LeafHash string
	VKey     string // the verifier key the server serves (pinned on first use)
	Denied   string
	Problem  string
}

// event shows one stored event, its receipt, and the in-browser check of
// its inclusion in a signed checkpoint (static/verify.js).
func (c *console) event(w http.ResponseWriter, r *http.Request, s *session, p *Principal) {
	idx := r.PathValue("index")
	d := &eventData{Index: idx, VKey: c.s.l.VerifierKey()}
	status := http.StatusOK
	body, pr := c.apiGet(r, p, c.s.getEvent, "/v1/events/"+idx, url.Values{}, map[string]string{"index": idx})
	if pr != nil {
		c.problemState(pr, &d.Denied, &d.Problem)
		status = pr.Status
	} else if err := json.Unmarshal(body, &d.Row); err != nil {
		d.Problem, status = "The stored event could not be read: "+err.Error(), http.StatusInternalServerError
	} else {
		var pretty bytes.Buffer
		json.Indent(&pretty, body, "", "  ")
		d.Stored, d.Pretty, d.LeafHash = string(body), pretty.String(), trail.LeafHash(body).String()
	}
	c.render(w, r, status, "event", &pageData{Title: "Event " + idx, Nav: "search", Session: s, Page: d})
}

// proof answers the page's request for an inclusion proof with the API's
// own answer (GET /v1/events/{index}/proof, recorded as such).
func (c *console) proof(w http.ResponseWriter, r *http.Request, s *session, p *Principal) {
	idx := r.PathValue("index")
	q := url.Values{}
	if size := r.URL.Query().Get("size"); size != "" {
		q.Set("size", size)
	}
	body, pr := c.apiGet(r, p, c.s.inclusion, "/v1/events/"+idx+"/proof", q, map[string]string{"index": idx})
	if pr != nil {
		c.s.writeProblem(w, r, pr)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(body)
}
