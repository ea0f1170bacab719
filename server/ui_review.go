package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// The review page: emergency (break-glass) accesses, unreviewed first, each
// with its marks and a form to add one. It reads trail/break-glass and
// trail/review through GET /v1/events as the session's principal (so the
// review grant decides, and the reads are recorded), and marks through
// POST /v1/reviews's handler: the mark's actor is the signed-in reviewer,
// and nobody reviews their own emergency access.

// reviewPage is how many emergency accesses the page lists at a time.
const reviewPage = 100

// maxMarkPages bounds the pages of marks (1,000 each) the page reads to
// find which of its accesses are reviewed.
const maxMarkPages = 20

// reviewRow is one emergency access as the page shows it.
type reviewRow struct {
	Index   uint64
	Access  accessRow
	Patient string
	Own     bool // the signed-in reviewer's own emergency access
	Marks   []markRow
}

// markRow is one review mark of an access.
type markRow struct {
	Date, Reviewer, Note string
}

// reviewsData is the review page's own data.
type reviewsData struct {
	Rows       []reviewRow
	Unreviewed int
	NextURL    string
	Denied     string
	Problem    string
	Partial    bool   // marks older than maxMarkPages pages were not read
	Done       string // the index just marked, after a review
	FormError  string // why the review just sent was refused
	FormIndex  uint64
	FormNote   string
	NoteLimit  int
	ReviewName string
}

// reviews lists emergency accesses, newest first with unreviewed ones ahead
// of reviewed ones, and a form to mark each.
func (c *console) reviews(w http.ResponseWriter, r *http.Request, s *session, p *Principal) {
	d := &reviewsData{Done: r.URL.Query().Get("done")}
	status := c.loadReviews(r, p, d)
	c.render(w, r, status, "reviews", &pageData{Title: "Emergency access review", Nav: "reviews", Session: s, Page: d})
}

func (c *console) loadReviews(r *http.Request, p *Principal, d *reviewsData) int {
	d.NoteLimit, d.ReviewName = maxReviewNote, p.Name
	q := url.Values{"stream": {BreakGlassStream}, "order": {"desc"}, "limit": {strconv.Itoa(reviewPage)}}
	if a := r.URL.Query().Get("after"); a != "" {
		q.Set("after", a)
	}
	evs, after, status := c.readEvents(r, p, q, &d.Denied, &d.Problem)
	if status != http.StatusOK {
		if status == http.StatusForbidden && !p.CanReview() {
			d.Denied += ". Reviewing emergency accesses needs the review grant (trail token create --review)."
		}
		return status
	}
	if after != "" {
		d.NextURL = "/ui/reviews?" + url.Values{"after": {after}}.Encode()
	}
	if len(evs) == 0 {
		return http.StatusOK
	}
	// Marks come after the access they review: reading trail/review
	// newest first down to the oldest access listed finds them all.
	oldest := evs[len(evs)-1].Index
	marks, partial, pr := c.marksSince(r, p, oldest)
	if pr != nil {
		c.problemState(pr, &d.Denied, &d.Problem)
		return pr.Status
	}
	d.Partial = partial
	// Unreviewed ones first, each group newest first.
	var reviewed []reviewRow
	for _, e := range evs {
		a, _ := accessOf(e)
		a.Emergency = true
		row := reviewRow{Index: e.Index, Access: a, Patient: e.Patient, Own: e.Actor.ID == p.Name, Marks: marks[e.Index]}
		if len(row.Marks) > 0 {
			reviewed = append(reviewed, row)
			continue
		}
		d.Rows = append(d.Rows, row)
		d.Unreviewed++
	}
	d.Rows = append(d.Rows, reviewed...)
	return http.StatusOK
}

// marksSince reads the marks of trail/review made after index from,
// newest first, by the access each names; partial is set when there were
// more than maxMarkPages pages of them.
func (c *console) marksSince(r *http.Request, p *Principal, from uint64) (map[uint64][]markRow, bool, *problem) {
	marks := map[uint64][]markRow{}
	q := url.Values{"stream": {ReviewStream}, "type": {reviewType}, "order": {"desc"}, "limit": {strconv.Itoa(maxLimit)}}
	for range maxMarkPages {
		body, pr := c.apiGet(r, p, c.s.query, "/v1/events", q, nil)
		if pr != nil {
			return nil, false, pr
		}
		var rep struct {
			Events []struct {
				Index   uint64              `json:"index"`
				Time    string              `json:"time"`
				Actor   struct{ ID string } `json:"actor"`
				Details reviewDetails       `json:"details"`
			} `json:"events"`
			Next string `json:"next"`
		}
		if err := json.Unmarshal(body, &rep); err != nil {
			return nil, false, c.s.internal("console: review marks", err)
		}
		for _, e := range rep.Events {
			if e.Index < from {
				return marks, false, nil
			}
			// Newest first: a record's marks are listed oldest first.
			m := markRow{Date: e.Time, Reviewer: e.Actor.ID, Note: e.Details.Note}
			marks[e.Details.Index] = append([]markRow{m}, marks[e.Details.Index]...)
		}
		if rep.Next == "" {
			return marks, false, nil
		}
		q.Set("after", rep.Next)
	}
	return marks, true, nil
}

// postReview marks an emergency access reviewed through POST /v1/reviews's
// handler, as the session's principal.
func (c *console) postReview(w http.ResponseWriter, r *http.Request, s *session, p *Principal) {
	r.Body = http.MaxBytesReader(w, r.Body, maxReviewBody+1024)
	if !sameString(s.csrf, r.PostFormValue(csrfField)) {
		c.forbidden(w, r)
		return
	}
	d := &reviewsData{FormNote: r.PostFormValue("note")}
	index, err := strconv.ParseUint(strings.TrimSpace(r.PostFormValue("index")), 10, 64)
	var pr *problem
	if err != nil {
		pr = badRequest("the form names no emergency access to review; reload the page and try again")
	} else {
		d.FormIndex = index
		body, _ := json.Marshal(map[string]any{"index": index, "note": d.FormNote})
		pr = c.apiPost(r, p, c.s.review, "/v1/reviews", body)
	}
	if pr == nil {
		http.Redirect(w, r, "/ui/reviews?"+url.Values{"done": {strconv.FormatUint(index, 10)}}.Encode(), http.StatusSeeOther)
		return
	}
	d.FormError = pr.Detail
	status := c.loadReviews(r, p, d)
	c.render(w, r, max(status, pr.Status), "reviews", &pageData{Title: "Emergency access review", Nav: "reviews", Session: s, Page: d})
}

// apiPost runs the API's handler h for POST path with a JSON body as p, in
// this process; it returns the problem the API would have answered, if any.
func (c *console) apiPost(r *http.Request, p *Principal, h apiHandler, path string, body []byte) *problem {
	req := r.Clone(r.Context())
	req.Method = http.MethodPost
	req.URL = &url.URL{Path: path}
	req.RequestURI = path
	req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	req.Header = http.Header{"User-Agent": {r.UserAgent()}, "Content-Type": {"application/json"}}
	if v := r.Header.Values("X-Forwarded-For"); len(v) > 0 {
		req.Header["X-Forwarded-For"] = v
	}
	w := &captured{h: http.Header{}}
	if pr := h(w, req, p); pr != nil {
		return pr
	}
	if w.status/100 != 2 {
		return newProblem(w.status, "console", fmt.Sprintf("the API answered %d %s", w.status, strings.TrimSpace(w.body.String())))
	}
	return nil
}
