package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/trailhq/trail"
)

// Emergency access review: a principal with the review grant marks a record
// of trail/break-glass reviewed, with a note (POST /v1/reviews). The mark is
// an event of trail/review whose actor is the reviewer as authenticated —
// the body has no field that could name another — so the review is itself
// part of the trail. Nobody reviews their own emergency access.
//
// A record may be reviewed more than once: each review is a new mark with
// its own note (a second reviewer's opinion, a follow-up after asking the
// clinician), as an append-only trail adds and never amends. A record is
// reviewed when it has at least one mark (the console's review page).
//
// A review is not a read: it leaves no record in trail/access. It reads the
// break-glass record it names only to check it, and answers nothing of it
// but its receipt.

// Review marks.
const (
	reviewType   = "break-glass.review"
	reviewAction = "C" // a new mark is created; the reviewed record is never changed
	routeReviews = "POST /v1/reviews"
	// maxReviewNote bounds a note, as UTF-8 bytes.
	maxReviewNote = 4 << 10
	// maxReviewBody bounds the body of POST /v1/reviews: a note escaped
	// with \uXXXX throughout takes six bytes a byte, plus the index.
	maxReviewBody = 6*maxReviewNote + 256
)

// reviewRequest is the body of POST /v1/reviews.
type reviewRequest struct {
	Index *uint64         `json:"index"`
	Note  json.RawMessage `json:"note"`
}

// reviewDetails is the details member of a mark in trail/review.
type reviewDetails struct {
	Index uint64 `json:"index"` // the reviewed record's index in the log
	ID    string `json:"id"`    // the reviewed record's id
	Note  string `json:"note"`
}

// breakGlassFields are the members of a break-glass record a review needs.
type breakGlassFields struct {
	ID      string `json:"id"`
	Stream  string `json:"stream"`
	Patient string `json:"patient"`
	Actor   struct {
		ID string `json:"id"`
	} `json:"actor"`
}

// review serves POST /v1/reviews: 201 with the mark's receipt.
func (s *Server) review(w http.ResponseWriter, r *http.Request, p *Principal) *problem {
	if !p.CanReview() {
		return newProblem(http.StatusForbidden, "forbidden",
			fmt.Sprintf("principal %q has no review grant: reviewing emergency accesses needs it (trail token create --review)", p.Name))
	}
	if pr := s.policyRefusal(p); pr != nil {
		return pr
	}
	// As for appends, the body must arrive within BodyTimeout.
	if err := http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.cfg.BodyTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return s.internal("set body deadline", err)
	}
	body, pr := readBody(r, maxReviewBody, fmt.Sprintf("review body over %d bytes; a note is at most %d bytes", maxReviewBody, maxReviewNote))
	if pr != nil {
		return pr
	}
	bodyRead(w)
	index, note, pr := parseReview(body)
	if pr != nil {
		return pr
	}
	bg, pr := s.breakGlassRecord(index)
	if pr != nil {
		return pr
	}
	if bg.Actor.ID == p.Name {
		return newProblem(http.StatusForbidden, "own_review",
			fmt.Sprintf("event %d is principal %q's own emergency access: nobody reviews their own; another reviewer must", index, p.Name))
	}
	ev := trail.Event{
		Stream: ReviewStream, Type: reviewType, Action: reviewAction, Outcome: trail.OutcomeSuccess,
		Actor:   trail.Actor{ID: p.Name, Address: s.cfg.TrustedProxies.ClientAddr(r), UserAgent: userAgent(r)},
		Patient: bg.Patient,
	}
	var err error
	if ev.Details, err = marshalCompact(reviewDetails{Index: index, ID: bg.ID, Note: note}); err != nil {
		return s.internal("encode review", err)
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.QueueWait+auditWait)
	defer cancel()
	rcs, err := s.l.AppendReserved(ctx, []trail.Event{ev})
	if err != nil {
		return s.engineProblem(err, 0)
	}
	writeJSON(w, http.StatusCreated, rcs[0])
	return nil
}

// parseReview reads {"index": N, "note": "…"}: unknown fields, a missing
// index, and a note that is missing, blank, over maxReviewNote bytes or not
// a string an event may hold are 400s naming the field.
func parseReview(body []byte) (uint64, string, *problem) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var req reviewRequest
	err := dec.Decode(&req)
	if err == nil && dec.More() {
		err = errors.New("data after the JSON object")
	}
	if err != nil {
		return 0, "", reviewProblem(decodeField(err), "want one JSON object {\"index\": N, \"note\": \"…\"} and nothing else: "+err.Error())
	}
	if req.Index == nil {
		return 0, "", reviewProblem("index", "index is required: the index of the trail/break-glass record reviewed")
	}
	if len(req.Note) == 0 || bytes.Equal(req.Note, []byte("null")) {
		return 0, "", reviewProblem("note", "note is required: say what the review found")
	}
	note, why := jsonText(req.Note)
	switch {
	case why != "":
		return 0, "", reviewProblem("note", "note "+why)
	case !hasVisible(note):
		return 0, "", reviewProblem("note", "note has no visible text: say what the review found")
	case len(note) > maxReviewNote:
		return 0, "", reviewProblem("note", fmt.Sprintf("note is %d bytes; at most %d", len(note), maxReviewNote))
	}
	return *req.Index, note, nil
}

// decodeField names the field a decoding error is about: an unknown one, or
// one of the wrong type; "(body)" otherwise.
func decodeField(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return te.Field
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if uq, err := strconv.Unquote(f); err == nil {
			return uq
		}
	}
	return "(body)"
}

// reviewProblem is a 400 naming the field at fault.
func reviewProblem(field, detail string) *problem {
	pr := badRequest(detail + " (nothing was stored)")
	pr.Errors = []fieldProblem{{Field: field, Detail: detail}}
	return pr
}

// jsonText decodes a JSON string an event may hold, or says why it cannot:
// not a string, invalid UTF-8, a lone surrogate escape or NUL (which
// encoding/json would silently turn into U+FFFD, or keep).
func jsonText(raw json.RawMessage) (string, string) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", "must be a JSON string"
	}
	if !utf8.Valid(raw) {
		return "", "is not valid UTF-8"
	}
	for i := 1; i < len(raw)-1; i++ {
		if raw[i] != '\\' {
			continue
		}
		i++
		if raw[i] != 'u' || i+4 >= len(raw) {
			continue
		}
		c, _ := strconv.ParseUint(string(raw[i+1:i+5]), 16, 16)
		switch {
		case c == 0:
			return "", "holds NUL (\\u0000)"
		case 0xDC00 <= c && c <= 0xDFFF:
			return "", "holds a lone surrogate escape"
		case 0xD800 <= c && c <= 0xDBFF:
			if i+10 >= len(raw) || raw[i+5] != '\\' || raw[i+6] != 'u' {
				return "", "holds a lone surrogate escape"
			}
			lo, _ := strconv.ParseUint(string(raw[i+7:i+11]), 16, 16)
			if lo < 0xDC00 || lo > 0xDFFF {
				return "", "holds a lone surrogate escape"
			}
			i += 6
		}
		i += 4
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", "must be a JSON string"
	}
	return s, ""
}

// breakGlassRecord reads the record a review names: it must be in
// trail/break-glass (400 otherwise, without saying which stream it is in,
// so that reviewing cannot map the log's streams; 404 past the end).
func (s *Server) breakGlassRecord(index uint64) (breakGlassFields, *problem) {
	var f breakGlassFields
	rec, err := s.l.Read(index)
	if errors.Is(err, trail.ErrNotFound) {
		return f, notFound(fmt.Sprintf("no event %d: the log has %d events; name a record of %s", index, s.l.Size(), BreakGlassStream))
	}
	if err != nil {
		return f, s.readProblem(err)
	}
	if err := json.Unmarshal(rec, &f); err != nil {
		return f, s.internal("read break-glass record", err)
	}
	if f.Stream != BreakGlassStream {
		pr := reviewProblem("index", fmt.Sprintf("event %d is not an emergency access: only records of %s are reviewed", index, BreakGlassStream))
		return f, pr
	}
	return f, nil
}
