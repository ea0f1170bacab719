package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/trailhq/trail"
)

// The event page: the stored bytes as the API returns them, formatted for
// reading and verbatim, the receipt, and the material verify.js checks in
// the browser.

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
