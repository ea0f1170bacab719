package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/trailhq/trail"
)

// Stored events as the console's tables show them.

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

// readEvents reads one page of GET /v1/events?q as p through the API's own
// handler (r may carry console-only options in its context). A refusal or
// an answer that cannot be read is put in the page's denied or problem
// state; status is what the page answers with.
func (c *console) readEvents(r *http.Request, p *Principal, q url.Values, denied, problem *string) (rows []eventRow, next string, status int) {
	body, pr := c.apiGet(r, p, c.s.query, "/v1/events", q, nil)
	if pr != nil {
		c.problemState(pr, denied, problem)
		return nil, "", pr.Status
	}
	var rep queryReply
	err := json.Unmarshal(body, &rep)
	if err == nil {
		rows, err = parseRows(rep.Events)
	}
	if err != nil {
		*problem = "The server's answer could not be read: " + err.Error()
		return nil, "", http.StatusInternalServerError
	}
	return rows, rep.Next, http.StatusOK
}
