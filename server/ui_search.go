package server

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/trailhq/trail"
)

// The search page: the API's filters as a form, one page of GET /v1/events
// at a time, newest first, the cursor in the next page's link.

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
	Live     string // the live view's query (ui_live.go), when the page can follow new events
	LiveOff  string // why it cannot, when that needs saying
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
	size := c.s.l.Size() // before the search: following starts after it, so no event falls between
	if len(in) > 0 {
		d.Ran = true
		status = c.runSearch(r, p, in, d)
	}
	if d.Ran && status == http.StatusOK && in.Get("after") == "" {
		d.Live, d.LiveOff = searchLive(d.Form, size)
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
	rows, after, status := c.readEvents(r, p, q, &d.Denied, &d.Problem)
	if status != http.StatusOK {
		return status
	}
	d.Rows = rows
	if after != "" {
		next := url.Values{}
		for k, v := range d.Form {
			if v != "" {
				next.Set(k, v)
			}
		}
		next.Set("after", after)
		d.NextURL = "/ui/search?" + next.Encode()
	}
	return http.StatusOK
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

// searchLive is the live view's query for the search's filters, or why the
// search cannot be followed.
func searchLive(form map[string]string, size uint64) (query, off string) {
	if form["since"] != "" || form["until"] != "" {
		return "", "Following new events is for searches without a time range."
	}
	if trail.IsReservedStream(form["stream"]) {
		return "", "Following leaves out Trail's own streams (trail/…): following writes read records there itself."
	}
	f := url.Values{}
	for _, k := range searchFilters {
		if v := form[k]; v != "" {
			f.Set(k, v)
		}
	}
	return liveQuery(f, size), ""
}
